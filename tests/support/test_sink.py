"""The vendor stand-in must itself be right, or every pipeline test built on it proves nothing."""

from __future__ import annotations

import gzip
import json
import time

import httpx

from support.sink import Sink, message_id_counts, order_violations


def test_records_deliveries_and_applies_rules_by_match_and_time():
    with Sink() as sink, httpx.Client() as c:
        sink.respond(400, match=lambda path, body: isinstance(body, dict) and body.get("bad"))
        temp = sink.respond(
            503, seconds=0.3, match=lambda path, body: path == "/down", headers={"Retry-After": "1"}
        )
        assert c.post(sink.url("/hook"), json={"messageId": "a"}).status_code == 200
        assert c.post(sink.url("/hook"), json={"messageId": "b", "bad": True}).status_code == 400
        r = c.post(sink.url("/down"), json={"messageId": "c"})
        assert (r.status_code, r.headers["retry-after"]) == (503, "1")
        time.sleep(0.35)
        assert c.post(sink.url("/down"), json={"messageId": "c"}).status_code == 200, "timed rule must expire"
        body = gzip.compress(json.dumps([{"messageId": "d"}, {"messageId": "e"}]).encode())
        gz = c.post(sink.url("/hook?x=1"), content=body, headers={"Content-Encoding": "gzip"})
        assert gz.status_code == 200
        sink.clear()
        assert c.post(sink.url("/hook"), json={"messageId": "f", "bad": True}).status_code == 200
        assert temp.status == 503

    assert [e["messageId"] for e in sink.delivered_events("/hook")] == ["a", "d", "e", "f"]
    assert [e["messageId"] for e in sink.delivered_events("/down")] == ["c"]
    assert sink.attempt_count() == 7
    assert not sink.wait_for_message_ids({"a", "f"}, timeout=0.1, path="/hook")
    assert sink.wait_for_message_ids({"zzz"}, timeout=0.1) == {"zzz"}


def test_order_and_duplicate_helpers():
    evs = [
        {"messageId": "1", "userId": "u", "properties": {"seq": 1}},
        {"messageId": "2", "userId": "u", "properties": {"seq": 2}},
        {"messageId": "1", "userId": "u", "properties": {"seq": 1}},  # redelivery: a duplicate, not disorder
        {"messageId": "3", "userId": "v", "properties": {"seq": 2}},
        {"messageId": "4", "userId": "v", "properties": {"seq": 1}},
    ]
    assert order_violations(evs) == ["v: seq 1 after 2"]
    assert message_id_counts(evs)["1"] == 2
