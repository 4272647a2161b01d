"""Processor: fan-out, the integrations object, filters, dedupe, mapping errors as dead letters."""

from __future__ import annotations

import pytest
from pipeline_helpers import TEST_INTEGRATIONS, pipeline_config, send, sql, track, wait_until, webhook

from pipeline.processor.routing import integration_enabled


def test_integration_enabled_rules():
    names = ["hook-a", "webhook", "Webhook", "WEBHOOK", "http"]
    assert integration_enabled(None, names)
    assert integration_enabled({}, names)
    assert not integration_enabled({"All": False}, names)
    assert integration_enabled({"All": False, "webhook": True}, names)
    assert integration_enabled({"all": False, "HTTP": {"someOption": 1}}, names)  # options object = on
    assert not integration_enabled({"All": True, "Hook-A": False}, names)  # case-insensitive instance name
    assert integration_enabled({"All": True, "Amplitude": False}, names)


def test_fan_out_honours_integrations_and_filters(start_pipeline, sink, pg_dsn):
    cfg = pipeline_config(
        [
            webhook("hook-a", sink.url("/a")),
            webhook("hook-b", sink.url("/b"), filters={"event_types": ["track"], "events": ["Wanted"]}),
        ]
    )
    p = start_pipeline(cfg)
    events = [
        {"type": "track", "userId": "u1", "event": "Wanted", "messageId": "m1"},  # a, b
        {"type": "track", "userId": "u1", "event": "Other", "messageId": "m2"},  # a
        {"type": "identify", "userId": "u1", "messageId": "m3"},  # a
        {
            "type": "track",
            "userId": "u1",
            "event": "Wanted",
            "messageId": "m4",
            "integrations": {"hook-a": False},
        },  # b
        {
            "type": "track",
            "userId": "u1",
            "event": "Wanted",
            "messageId": "m5",
            "integrations": {"All": False},
        },  # none
        {
            "type": "track",
            "userId": "u1",
            "event": "Wanted",
            "messageId": "m6",
            "integrations": {"All": False, "Webhook": True},
        },  # a, b
    ]
    send(p, events)
    wait_until(lambda: sink.delivered_count("/a") >= 4 and sink.delivered_count("/b") >= 3)
    wait_until(
        lambda: sql(pg_dsn, "SELECT count(*) FROM delivery_jobs WHERE state <> 'succeeded'")[0][0] == 0
    )
    a = [e["messageId"] for e in sink.delivered_events("/a")]
    b = [e["messageId"] for e in sink.delivered_events("/b")]
    assert a == ["m1", "m2", "m3", "m6"]
    assert b == ["m1", "m4", "m6"]
    # One delivery job per (event, destination), inspectable with SQL.
    jobs = sql(pg_dsn, "SELECT destination, message_id, user_key FROM delivery_jobs ORDER BY id")
    assert [(d, m) for d, m, _ in jobs if d == "hook-b"] == [
        ("hook-b", "m1"),
        ("hook-b", "m4"),
        ("hook-b", "m6"),
    ]
    assert {u for _, _, u in jobs} == {"u1"}


def test_duplicates_by_message_id_are_dropped(start_pipeline, sink, pg_dsn):
    p = start_pipeline(pipeline_config([webhook("hook", sink.url())]))
    send(p, [track("u1", 1), track("u1", 2), track("u1", 1)])  # duplicate inside one request
    send(p, [track("u1", 2), track("u1", 3)])  # duplicate across requests
    wait_until(lambda: sink.delivered_count() >= 3)
    wait_until(lambda: sql(pg_dsn, "SELECT last_id FROM processor_cursor")[0][0] == 5)
    assert [e["messageId"] for e in sink.delivered_events()] == ["u1-1", "u1-2", "u1-3"]
    assert sql(pg_dsn, "SELECT count(*) FROM delivery_jobs")[0][0] == 3
    assert sql(pg_dsn, "SELECT count(DISTINCT message_id) FROM dedupe_keys")[0][0] == 3


def test_dedupe_window_zero_keeps_duplicates(start_pipeline, sink, pg_dsn):
    p = start_pipeline(pipeline_config([webhook("hook", sink.url())], processor={"dedupe_window_s": 0}))
    send(p, [track("u1", 1), track("u1", 1)])
    wait_until(lambda: sink.delivered_count() >= 2)
    assert [e["messageId"] for e in sink.delivered_events()] == ["u1-1", "u1-1"]


def test_mapping_errors_become_dead_letters_with_their_reason(start_pipeline, sink, pg_dsn):
    dest = {"name": "strict", "integration": "strictbox", "config": {"url": sink.url("/strict")}}
    p = start_pipeline(pipeline_config([dest]), integrations_root=TEST_INTEGRATIONS)
    send(
        p,
        [
            track("u1", 1, revenue=5),
            track("u1", 2),  # no revenue: required field missing
            {"type": "page", "userId": "u1", "name": "Home", "messageId": "pg"},  # unsupported type
            track("u1", 3, revenue=7),
        ],
    )
    wait_until(lambda: sink.delivered_count("/strict") >= 2)
    rows = wait_until(
        lambda: (
            sql(
                pg_dsn,
                "SELECT stage, destination, user_key, message_id, reason, event "
                "FROM dead_letters ORDER BY id",
            )
            if len(sql(pg_dsn, "SELECT id FROM dead_letters")) == 2
            else None
        )
    )
    (s1, d1, u1, m1, r1, e1), (s2, _, _, m2, r2, _) = rows
    assert (s1, d1, u1, m1) == ("transform", "strict", "u1", "u1-2")
    assert "revenue" in r1 and r1.startswith("instrumentation_error")
    assert e1["properties"] == {"seq": 2}
    assert (s2, m2) == ("transform", "pg") and r2.startswith("unsupported_event_type")
    assert [e["seq"] for e in sink.delivered_events("/strict")] == [1, 3]


@pytest.mark.parametrize("alias", ["Strict Box", "strictbox_alias", "STRICTBOX"])
def test_integrations_object_matches_display_name_and_alias(start_pipeline, sink, pg_dsn, alias):
    dest = {"name": "strict", "integration": "strictbox", "config": {"url": sink.url("/strict")}}
    p = start_pipeline(pipeline_config([dest]), integrations_root=TEST_INTEGRATIONS)
    send(
        p,
        [
            {**track("u1", 1, revenue=1), "integrations": {"All": False, alias: True}},
            {**track("u1", 2, revenue=1), "integrations": {alias: False}},
            track("u1", 3, revenue=1),
        ],
    )
    wait_until(lambda: sql(pg_dsn, "SELECT last_id FROM processor_cursor")[0][0] == 3)
    wait_until(lambda: sink.delivered_count("/strict") >= 2)
    assert sorted(e["seq"] for e in sink.delivered_events("/strict")) == [1, 3]
