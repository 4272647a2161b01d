"""``batch.group_by``: requests merge only when the envelope fields named there are equal, so a field that
applies to the whole request (TikTok's ``test_event_code``) never leaks onto, or drops off, other events."""

import pytest

from sdk.connector import Connector
from sdk.request import VendorRequest
from sdk.spec.model import DestinationSpec

SPEC = {
    "spec_version": 2,
    "name": "bulk",
    "display_name": "Bulk",
    "event_types": ["track"],
    "endpoints": {
        "events": {
            "url": "https://bulk.example/v1/events",
            "batch": {"max_events": 10, "lists": {"data": None}, "group_by": ["test_code", "meta.source"]},
        },
        "wrapped": {
            "url": "https://bulk.example/v1/ops",
            "batch": {"max_events": 10, "wrap": "ops", "group_by": ["mode"]},
        },
    },
    "mappings": {
        "track": {
            "cases": [
                {
                    "when": {"of": "event", "eq": "op"},
                    "endpoint": "wrapped",
                    "body": {"id": "messageId", "mode": "properties.mode"},
                },
                {
                    "endpoint": "events",
                    "body": {
                        "test_code": "properties.test",
                        "meta": {"source": "properties.source"},
                        "data": {"array": [{"object": {"id": "messageId"}}]},
                    },
                },
            ]
        }
    },
    "batching": {"enabled": True, "max_events": 10},
}


@pytest.fixture(scope="module")
def bulk():
    return Connector(DestinationSpec.model_validate(SPEC))


def _requests(conn, props, event="e"):
    out = []
    for i, p in enumerate(props):
        (r,) = conn.transform({"type": "track", "event": event, "messageId": f"m{i}", "properties": p}, {})
        out.append(VendorRequest.from_wire(r.to_wire()))
    return out


def test_requests_with_different_envelope_values_stay_apart(bulk):
    reqs = _requests(bulk, [{}, {"test": "T1"}, {}, {"test": "T1"}, {"test": "T2"}])
    merged = bulk.batch(reqs, {})
    assert [idx for idx, _ in merged] == [[0, 2], [1, 3], [4]]
    by_jobs = {tuple(idx): r.json_body for idx, r in merged}
    assert by_jobs[(0, 2)] == {"meta": {}, "data": [{"id": "m0"}, {"id": "m2"}]}
    assert by_jobs[(1, 3)] == {"test_code": "T1", "meta": {}, "data": [{"id": "m1"}, {"id": "m3"}]}


def test_nested_group_by_paths_are_compared(bulk):
    reqs = _requests(bulk, [{"source": "web"}, {"source": "app"}, {"source": "web"}])
    assert [idx for idx, _ in bulk.batch(reqs, {})] == [[0, 2], [1]]


def test_group_by_reads_the_mapped_body_even_when_the_endpoint_wraps_it(bulk):
    reqs = _requests(bulk, [{"mode": "a"}, {"mode": "b"}, {"mode": "a"}], event="op")
    merged = bulk.batch(reqs, {})
    assert [idx for idx, _ in merged] == [[0, 2], [1]]
    assert merged[0][1].json_body == {"ops": [{"id": "m0", "mode": "a"}, {"id": "m2", "mode": "a"}]}
