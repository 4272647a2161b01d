"""End to end with the real client libraries from PyPI, unchanged, pointed at a real ``sluice up``.

What this proves: a Segment-compatible app can switch its ``host`` to Sluice and every event reaches the
destination exactly once, in per-user order. 100 users, 5,000 events: half sent by
``segment-analytics-python``, half by ``rudder-sdk-python`` (which gzips its bodies), through the gateway,
the Postgres queue, the processor and the router, to a real HTTP sink on loopback.
"""

from __future__ import annotations

import time

import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient
from support.pipeline_proc import SluiceProcess, webhook_config
from support.sink import Sink, message_id_counts, order_violations

USERS_PER_CLIENT = 50
EVENTS_PER_USER = 50  # 2 clients x 50 users x 50 events = 5,000 events


def _drive(client, prefix: str, errors: list) -> set[str]:
    """Send EVENTS_PER_USER events for each user, interleaving users like real traffic; return messageIds."""
    ids: set[str] = set()
    for seq in range(1, EVENTS_PER_USER + 1):
        for u in range(USERS_PER_CLIENT):
            user = f"{prefix}-user-{u:03d}"
            mid = f"{prefix}-{u:03d}-{seq:04d}"
            if seq == 1:
                client.identify(user, {"plan": "free", "seq": seq}, message_id=mid)
                # identify has traits, not properties: keep seq findable for the order check below
            elif seq % 10 == 0:
                client.page(user, category="docs", name="Pricing", properties={"seq": seq}, message_id=mid)
            else:
                client.track(user, "Item Viewed", {"seq": seq, "item": f"sku-{seq % 7}"}, message_id=mid)
            ids.add(mid)
    client.flush()
    client.join()
    return ids


@pytest.mark.timeout(300)
def test_segment_and_rudder_clients_deliver_every_event_once_in_order(pg_dsn, tmp_path, measurement):
    with Sink() as sink:
        cfg = webhook_config({"e2e-webhook": sink.url("/hook")}, write_key="e2e-write-key")
        # production mode: no --allow-uncertified, so the certified webhook connector is what runs
        with SluiceProcess(cfg, tmp_path / "sluice", database_url=pg_dsn, extra_args=[]) as sluice:
            errors: list = []

            def on_error(exc, batch):
                errors.append((repr(exc), len(batch)))

            seg = SegmentClient(
                "e2e-write-key",
                host=sluice.url,
                on_error=on_error,
                max_queue_size=20000,
                upload_size=100,
                thread=1,
                sync_mode=False,
                gzip=False,
                max_retries=3,
            )
            rud = RudderClient(
                "e2e-write-key",
                host=sluice.url,
                on_error=on_error,
                max_queue_size=20000,
                upload_size=100,
                thread=1,
                sync_mode=False,
                gzip=True,
                max_retries=3,
            )
            t0 = time.monotonic()
            sent = _drive(seg, "seg", errors) | _drive(rud, "rud", errors)
            t_sent = time.monotonic() - t0
            assert len(sent) == 2 * USERS_PER_CLIENT * EVENTS_PER_USER == 5000
            assert errors == [], f"the client libraries reported errors: {errors[:5]}"

            missing = sink.wait_for_message_ids(sent, timeout=180, path="/hook")
            t_done = time.monotonic() - t0
            time.sleep(2)  # let any late duplicate show up before counting
            delivered = sink.delivered_events("/hook")

    counts = message_id_counts(delivered)
    dups = {m: c for m, c in counts.items() if c > 1}
    # identify carries seq in traits; copy it to properties for the order check
    for e in delivered:
        if e.get("type") == "identify":
            e.setdefault("properties", {})["seq"] = (e.get("traits") or {}).get("seq")
    violations = order_violations(delivered)
    users = {e.get("userId") for e in delivered}
    measurement(
        f"[e2e] events sent={len(sent)} users={len(users)} delivered={len(delivered)} "
        f"unique={len(counts)} duplicates={sum(c - 1 for c in dups.values())} "
        f"order_violations={len(violations)} clients_done_s={t_sent:.1f} all_delivered_s={t_done:.1f} "
        f"rate={len(sent) / t_done:.0f} ev/s"
    )
    assert not missing, f"{len(missing)} events never reached the sink, e.g. {sorted(missing)[:5]}"
    assert set(counts) == sent, "the sink received events nobody sent"
    assert dups == {}, f"events delivered more than once: {list(dups.items())[:5]}"
    assert len(users) == 100
    assert violations == [], f"per-user order broken: {violations[:5]}"
    # the gateway enriched what the clients sent
    sample = delivered[0]
    assert sample.get("receivedAt") and sample.get("messageId")
    assert {e["type"] for e in delivered} == {"identify", "track", "page"}
