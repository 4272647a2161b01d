"""Router: a vendor's partial batch failure is attributed to the jobs it names (issue 7, item 2).

Amplitude documents (HTTP V2 API, "400 Bad Request") that a rejected batch lists the offending events by
their index in ``events`` under ``events_with_invalid_fields``; the others are to be sent again. The answer
below is written from that documentation, not from Sluice's output: index 2 of a five-event batch is bad.
"""

from __future__ import annotations

from pipeline_helpers import pipeline_config, send, sql, wait_until

from pipeline.router import sender as sender_module


def _five_user_batch(path, body):
    if not path.split("?")[0].endswith("/batch") or not isinstance(body, dict):
        return False
    return len(body.get("events") or []) == 5


def test_only_the_event_the_vendor_names_is_dead_lettered(start_pipeline, sink, pg_dsn):
    sink.respond(
        400,
        match=_five_user_batch,
        times=1,
        body='{"code":400,"error":"Request missing required field",'
        '"events_with_invalid_fields":{"time":[2]},"missing_field":null}',
    )
    dest = {
        "name": "amp",
        "integration": "amplitude",
        "config": {"apiKey": "amp-test-key-0001"},
        "base_url": sink.url(),
        "retry": {"initial_s": 0.2, "max_backoff_s": 0.5, "max_age_s": 600, "min_attempts": 3, "jitter": 0},
    }
    p = start_pipeline(pipeline_config([dest]))
    events = [
        {"type": "track", "userId": f"u{i}", "event": "Step", "messageId": f"m{i}", "properties": {"i": i}}
        for i in range(5)
    ]
    send(p, events)
    wait_until(
        lambda: (
            len(
                dict(
                    sql(
                        pg_dsn,
                        "SELECT message_id, state FROM delivery_jobs WHERE state IN ('succeeded','aborted')",
                    )
                )
            )
            == 5
        ),
        timeout=60,
    )
    states = dict(sql(pg_dsn, "SELECT message_id, state FROM delivery_jobs"))
    assert states == {
        "m0": "succeeded",
        "m1": "succeeded",
        "m2": "aborted",
        "m3": "succeeded",
        "m4": "succeeded",
    }
    ((mid, reason, last_request),) = sql(pg_dsn, "SELECT message_id, reason, last_request FROM dead_letters")
    assert mid == "m2" and "Amplitude" in reason
    assert "amp-test-key-0001" not in str(last_request)  # the stored request is redacted
    # The four others went out again (in a batch without m2) and were accepted.
    resent = [e for a in sink.deliveries for e in a.body["events"]]
    assert sorted(e["user_id"] for e in resent) == ["u0", "u1", "u3", "u4"]


def test_rank_orders_outcomes_from_harmless_to_final():
    out = sender_module.Outcome
    ranks = [sender_module._rank(o) for o in (out.SUCCESS, out.THROTTLE, out.RETRY, out.ABORT)]
    assert ranks == sorted(ranks) and len(set(ranks)) == 4
