"""Batch merging keeps order, respects limits, and never merges different routes."""

from sdk.batching import merge_requests
from sdk.request import VendorRequest
from sdk.spec.model import Batching


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
