"""Batching is total: no event, however deep or odd, makes merging fail for the other requests, and the
first request's body (shared with the event) is never modified by a merge."""

from __future__ import annotations

import sys

from sdk.batching import merge_requests
from sdk.request import VendorRequest
from sdk.spec.model import Batching

BATCHING = Batching(enabled=True, max_events=10, list_path="events")


def req(i: int, props: object = None) -> VendorRequest:
    return VendorRequest(url="https://x.io/batch", json={"api_key": "k", "events": [{"i": i, "p": props}]})


def nested(depth: int) -> dict:
    root: dict = {}
    cur = root
    for _ in range(depth):
        cur["a"] = {}
        cur = cur["a"]
    return root


def test_events_nested_far_beyond_the_recursion_limit_merge_without_recursing():
    # Deeper than Python can copy or encode recursively (copy.deepcopy failed here at ~600-950).
    depth = sys.getrecursionlimit() * 3
    reqs = [req(0, nested(depth)), req(1), req(2)]
    out = merge_requests(reqs, BATCHING)
    # Every input is in exactly one output, in order; the deep one cannot be encoded, so it goes alone.
    assert sorted(i for idx, _ in out for i in idx) == [0, 1, 2]
    assert [idx for idx, _ in out] == [[0], [1, 2]]
    assert out[1][1].json_body["events"] == [{"i": 1, "p": None}, {"i": 2, "p": None}]


def test_moderately_deep_events_still_merge():
    deep = nested(300)
    out = merge_requests([req(0, deep), req(1, deep)], BATCHING)
    assert [idx for idx, _ in out] == [[0, 1]]
    assert out[0][1].json_body["events"][0]["p"] is deep  # shared, not copied


def test_merging_never_modifies_the_first_request():
    first = req(0)
    before = first.json_body["events"]
    out = merge_requests([first, req(1)], BATCHING)
    assert out[0][1].json_body["events"] == [{"i": 0, "p": None}, {"i": 1, "p": None}]
    assert first.json_body["events"] is before and before == [{"i": 0, "p": None}]


def test_a_request_whose_headers_cannot_be_keyed_goes_alone():
    odd = VendorRequest(url="https://x.io/batch", params={"p": nested(5000)}, json={"events": [{"i": 9}]})
    out = merge_requests([req(0), odd, req(1)], BATCHING)
    assert sorted(tuple(idx) for idx, _ in out) == [(0, 2), (1,)]
