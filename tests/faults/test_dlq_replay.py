"""Fault: a destination answers 400 for some events; they land in the dead-letter store; after the fix,
``sluice dlq replay`` delivers them.

Promises under test: a 4xx (other than 408/429) aborts at once instead of retrying forever and never
blocks the user's later events; the dead letter keeps the last request, response status and reason, is
visible with plain SQL and with ``sluice dlq list/show``; replay re-enqueues in the original order and
marks the dead letters as replayed.
"""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest
from support.pipeline_proc import SluiceProcess, webhook_config
from support.sink import Sink, message_id_counts

USERS = 10
PER_USER = 10
POISON_SEQS = (3, 7)  # for the first 5 users: 10 poisoned events, two per user to check replay order


def _events() -> list[dict]:
    out = []
    for seq in range(1, PER_USER + 1):
        for u in range(USERS):
            poison = u < 5 and seq in POISON_SEQS
            out.append(
                {
                    "type": "track",
                    "event": "Order Completed",
                    "userId": f"dlq-user-{u}",
                    "messageId": f"dlq-{u}-{seq:02d}",
                    "properties": {"seq": seq, "poison": poison},
                }
            )
    return out


def _is_poison(path: str, body) -> bool:
    return isinstance(body, dict) and bool((body.get("properties") or {}).get("poison"))


def _dead_letters(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT id, destination, user_key, message_id, last_status, reason, last_request IS NOT NULL,"
            " replayed_at IS NOT NULL FROM dead_letters ORDER BY id"
        ).fetchall()


@pytest.mark.timeout(180)
def test_400s_go_to_dead_letters_and_replay_delivers_after_fix(pg_dsn, tmp_path, measurement):
    events = _events()
    poison_ids = {e["messageId"] for e in events if e["properties"]["poison"]}
    good_ids = {e["messageId"] for e in events} - poison_ids
    with Sink() as sink:
        rule = sink.respond(400, match=_is_poison, body='{"error":"field price must be a number"}')
        cfg = webhook_config({"dlq-webhook": sink.url("/hook")}, write_key="dlq-key")
        with SluiceProcess(cfg, tmp_path / "sluice", database_url=pg_dsn) as sluice:
            r = httpx.post(f"{sluice.url}/v1/batch", json={"batch": events}, auth=("dlq-key", ""), timeout=30)
            assert r.status_code == 200, r.text

            missing_good = sink.wait_for_message_ids(good_ids, timeout=60, path="/hook")
            deadline = time.monotonic() + 60
            while len(_dead_letters(pg_dsn)) < len(poison_ids) and time.monotonic() < deadline:
                time.sleep(0.2)
            dead = _dead_letters(pg_dsn)
            poison_attempts = sum(1 for a in sink.attempts if _is_poison(a.path, a.body))

            listed = sluice.cli("dlq", "list", "--json")
            shown = sluice.cli("dlq", "show", str(dead[0][0])) if dead else None

            sink.clear(rule)  # "the fix": the vendor now accepts those events
            t_replay = time.monotonic()
            replayed = sluice.cli("dlq", "replay", "--destination", "dlq-webhook")
            missing_poison = sink.wait_for_message_ids(poison_ids, timeout=60, path="/hook")
            replay_s = time.monotonic() - t_replay
            time.sleep(1)
            dead_after = _dead_letters(pg_dsn)
            listed_after = sluice.cli("dlq", "list", "--json")

    delivered = sink.delivered_events("/hook")
    counts = message_id_counts(delivered)
    measurement(
        f"[dlq] events={len(events)} poisoned={len(poison_ids)} dead_letters={len(dead)} "
        f"attempts_on_poisoned_before_fix={poison_attempts} good_missing={len(missing_good)} "
        f"replay_exit={replayed.returncode} replayed_delivered={len(poison_ids) - len(missing_poison)} "
        f"replay_to_delivered_s={replay_s:.2f} duplicates={sum(c - 1 for c in counts.values() if c > 1)}"
    )
    assert not missing_good, f"good events were blocked by the 400s: {sorted(missing_good)[:5]}"
    assert {d[3] for d in dead} == poison_ids, f"dead letters {[d[3] for d in dead]} != poisoned events"
    assert all(d[1] == "dlq-webhook" and d[4] == 400 and d[5] and d[6] for d in dead), dead
    assert poison_attempts == len(poison_ids), "a 400 must abort at once, not be retried"

    assert listed.returncode == 0, listed.stderr + listed.stdout
    for mid in poison_ids:
        assert mid in listed.stdout, f"`sluice dlq list --json` does not show {mid}"
    assert shown is not None and shown.returncode == 0 and dead[0][3] in shown.stdout, shown

    assert replayed.returncode == 0, replayed.stderr + replayed.stdout
    assert not missing_poison, f"replay did not deliver {sorted(missing_poison)}"
    assert all(c == 1 for c in counts.values()), "an event was delivered twice"
    assert all(d[7] for d in dead_after), "dead letters not marked as replayed"
    assert listed_after.returncode == 0
    assert not any(mid in listed_after.stdout for mid in poison_ids), "replayed letters still listed"

    # replay keeps the original order per user: seq 3 before seq 7
    order = [e["messageId"] for e in delivered if e["messageId"] in poison_ids]
    for u in range(5):
        assert order.index(f"dlq-{u}-03") < order.index(f"dlq-{u}-07"), order
