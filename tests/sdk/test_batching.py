"""Batch merging keeps order, respects limits, and never merges different routes."""

import pytest

from sdk.batching import merge_requests
from sdk.connector import Connector
from sdk.request import VendorRequest
from sdk.spec.model import Batching, DestinationSpec


def req(i, url="https://x.io/batch"):
    return VendorRequest(url=url, json={"api_key": "k", "events": [{"i": i}]})


def test_merges_in_order_up_to_max_events():
    reqs = [req(i) for i in range(5)]
    out = merge_requests(reqs, Batching(enabled=True, max_events=2, list_path="events"))
    assert [idx for idx, _ in out] == [[0, 1], [2, 3], [4]]
    assert out[0][1].json_body == {"api_key": "k", "events": [{"i": 0}, {"i": 1}]}


def test_different_urls_do_not_merge():
    reqs = [req(0), req(1, "https://y.io"), req(2)]
    out = merge_requests(reqs, Batching(enabled=True, max_events=10, list_path="events"))
    assert sorted(tuple(i) for i, _ in out) == [(0, 2), (1,)]


def test_byte_limit():
    reqs = [req(i) for i in range(4)]
    one = len(reqs[0].body_bytes())
    out = merge_requests(reqs, Batching(enabled=True, max_events=100, max_bytes=one * 2, list_path="events"))
    assert all(len(i) <= 2 for i, _ in out)


def test_disabled_is_identity():
    reqs = [req(i) for i in range(3)]
    assert [i for i, _ in merge_requests(reqs, Batching())] == [[0], [1], [2]]


# -- endpoint-level rules (the spec's `endpoints.<name>.batch`) ----------------------------------------------


ENDPOINT_SPEC = {
    "spec_version": 2,
    "name": "bulk",
    "display_name": "Bulk",
    "event_types": ["track", "group"],
    "endpoints": {
        "track": {
            "url": "https://bulk.example/v1/track",
            "batch": {"max_events": 10, "lists": {"events": 3, "purchases": None}, "merged_endpoint": "bulk"},
        },
        "bulk": {"url": "https://bulk.example/v1/bulk"},
        "objects": {"url": "https://bulk.example/v2/objects", "batch": {"wrap": "ops", "max_events": 2}},
    },
    "mappings": {
        "track": {
            "endpoint": "track",
            "body": {"events": {"from": "properties.events"}, "key": {"value": "k"}},
        },
        "group": {"endpoint": "objects", "body": {"id": {"from": "groupId"}}},
    },
    "batching": {"enabled": True, "max_events": 10},
}


@pytest.fixture(scope="module")
def bulk():
    return Connector(DestinationSpec.model_validate(ENDPOINT_SPEC))


def _stored(reqs):
    """As the router sees them: read back from the queue, without the endpoint tag."""
    return [VendorRequest.from_wire(r.to_wire()) for r in reqs]


def test_per_list_cap_closes_a_batch_and_merged_uploads_change_url(bulk):
    reqs = [
        bulk.transform({"type": "track", "userId": "u", "properties": {"events": [i, i]}}, {})[0]
        for i in range(3)
    ]
    for batch in (bulk.batch(reqs, {}), bulk.batch(_stored(reqs), {})):
        assert [idx for idx, _ in batch] == [[0], [1], [2]]  # 2 + 2 events would pass the cap of 3
    small = [
        bulk.transform({"type": "track", "userId": "u", "properties": {"events": [i]}}, {})[0]
        for i in range(4)
    ]
    out = bulk.batch(_stored(small), {})
    assert [idx for idx, _ in out] == [[0, 1, 2], [3]]
    assert out[0][1].url == "https://bulk.example/v1/bulk" and out[0][1].json_body == {
        "events": [0, 1, 2],
        "key": "k",
    }
    assert out[1][1].url == "https://bulk.example/v1/track"  # a lone request stays where it was mapped


def test_wrap_applies_to_lone_and_merged_requests(bulk):
    reqs = _stored([bulk.transform({"type": "group", "userId": "u", "groupId": g}, {})[0] for g in "abc"])
    out = bulk.batch(reqs, {})
    assert [(idx, r.json_body) for idx, r in out] == [
        ([0, 1], {"ops": [{"id": "a"}, {"id": "b"}]}),
        ([2], {"ops": [{"id": "c"}]}),
    ]


def test_endpoint_batch_needs_batching_enabled():
    bad = dict(ENDPOINT_SPEC, batching={"enabled": False})
    with pytest.raises(ValueError, match="batching.enabled is false"):
        DestinationSpec.model_validate(bad)


def test_endpoint_batch_cannot_exceed_the_claim_bound():
    bad = dict(ENDPOINT_SPEC, batching={"enabled": True, "max_events": 5})
    with pytest.raises(ValueError, match="exceeds batching.max_events"):
        DestinationSpec.model_validate(bad)
