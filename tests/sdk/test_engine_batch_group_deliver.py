"""Endpoint batch rules ``group_by`` (merge only requests whose body names the same thing, e.g. Klaviyo's
list of a subscription job) and ``deliver_to`` (every request, single or merged, goes to a bulk endpoint,
e.g. Iterable's trackBulk, which the vendor asks for so that events keep their order).

Expectations are written by hand from the option descriptions in ``sdk/spec/model.py``.
"""

import pytest
from pydantic import ValidationError

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import SpecError
from sdk.spec.model import DestinationSpec

NOW = TransformContext.at("2024-05-01T12:00:00Z")


def _spec(endpoints, mappings, event_types=("track",)):
    return {
        "spec_version": 2,
        "name": "demo",
        "display_name": "Demo",
        "event_types": list(event_types),
        "batching": {"enabled": True, "max_events": 100},
        "endpoints": endpoints,
        "mappings": mappings,
    }


def _deliver(conn, events, config=None):
    reqs = []
    for e in events:
        reqs += conn.transform(e, config or {}, NOW)
    return conn.batch(reqs, config or {})


SUBSCRIBE = _spec(
    {
        "sub": {
            "url": "https://x.example/subs",
            "batch": {"max_events": 2, "lists": {"data.profiles": 2}, "group_by": ["data.list"]},
        }
    },
    {
        "group": {
            "endpoint": "sub",
            "body": {"data.list": "groupId", "data.profiles": [{"email": "traits.email"}]},
        }
    },
    event_types=("group",),
)


def test_group_by_merges_only_requests_naming_the_same_list_and_keeps_order():
    conn = Connector(DestinationSpec.model_validate(SUBSCRIBE))
    events = [
        {"type": "group", "groupId": g, "traits": {"email": f"{i}@x.io"}}
        for i, g in enumerate(["a", "b", "a", "a", "b"])
    ]
    out = _deliver(conn, events)
    assert [(idx, r.json_body) for idx, r in out] == [
        ([0, 2], {"data": {"list": "a", "profiles": [{"email": "0@x.io"}, {"email": "2@x.io"}]}}),
        ([1, 4], {"data": {"list": "b", "profiles": [{"email": "1@x.io"}, {"email": "4@x.io"}]}}),
        ([3], {"data": {"list": "a", "profiles": [{"email": "3@x.io"}]}}),
    ]


def test_group_by_treats_a_missing_value_as_its_own_group():
    conn = Connector(DestinationSpec.model_validate(SUBSCRIBE))
    out = _deliver(
        conn,
        [
            {"type": "group", "traits": {"email": "n@x.io"}},
            {"type": "group", "groupId": "a", "traits": {"email": "a@x.io"}},
        ],
    )
    assert [idx for idx, _ in out] == [[0], [1]]


TRACK = _spec(
    {
        "track": {
            "url": "https://x.example/track",
            "batch": {"max_events": 3, "wrap": "events", "deliver_to": "bulk"},
        },
        "bulk": {"url": "https://x.example/bulk"},
    },
    {"track": {"endpoint": "track", "body": {"name": "event"}}},
)


def test_deliver_to_sends_single_and_merged_requests_to_the_bulk_endpoint_in_the_envelope():
    conn = Connector(DestinationSpec.model_validate(TRACK))
    (single,) = conn.transform({"type": "track", "event": "A"}, {}, NOW)
    assert single.url == "https://x.example/track" and single.json_body == {"name": "A"}  # as transformed
    out = _deliver(conn, [{"type": "track", "event": n} for n in "ABCD"])
    assert [(idx, r.url, r.json_body) for idx, r in out] == [
        ([0, 1, 2], "https://x.example/bulk", {"events": [{"name": "A"}, {"name": "B"}, {"name": "C"}]}),
        ([3], "https://x.example/bulk", {"events": [{"name": "D"}]}),
    ]
    assert {r.endpoint for _, r in out} == {"bulk"}  # checked against the bulk endpoint's vendor contract


def test_deliver_to_must_name_an_endpoint_and_excludes_merged_endpoint():
    bad = _spec(
        {"t": {"url": "https://x.example/t", "batch": {"deliver_to": "nope"}}},
        {"track": {"endpoint": "t", "body": {}}},
    )
    with pytest.raises(ValidationError, match="deliver_to 'nope' is not defined"):
        DestinationSpec.model_validate(bad)
    both = _spec(
        {
            "t": {"url": "https://x.example/t", "batch": {"deliver_to": "b", "merged_endpoint": "b"}},
            "b": {"url": "https://x.example/b"},
        },
        {"track": {"endpoint": "t", "body": {}}},
    )
    with pytest.raises(ValidationError, match="not both"):
        DestinationSpec.model_validate(both)


def test_deliver_to_an_endpoint_whose_url_depends_on_the_event_is_refused():
    spec = _spec(
        {
            "t": {"url": "https://x.example/t", "batch": {"deliver_to": "b"}},
            "b": {"url": "https://x.example/{{ userId }}"},
        },
        {"track": {"endpoint": "t", "body": {}}},
    )
    conn = Connector(DestinationSpec.model_validate(spec))
    with pytest.raises(SpecError, match="URL depends on the event"):
        _deliver(conn, [{"type": "track", "userId": "u"}])
