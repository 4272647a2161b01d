"""``batch.hoist``: keys moved out of each wrapped body into the envelope ({api_key, batch: [...]}, PostHog's
batch format), and only bodies with equal values for them merge.

Expectations are written by hand from the field's description in sdk/spec/model.py and PostHog's batch
format (https://posthog.com/docs/api/capture, "Batch events").
"""

import pytest
from pydantic import ValidationError

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.spec.model import DestinationSpec

SPEC = {
    "spec_version": 2,
    "name": "demo",
    "display_name": "Demo",
    "settings": {"type": "object", "properties": {"key": {"type": "string"}}},
    "event_types": ["track"],
    "endpoints": {
        "capture": {
            "url": "https://api.demo.io/batch/",
            "batch": {"max_events": 2, "wrap": "batch", "hoist": ["api_key"]},
        }
    },
    "mappings": {"track": {"endpoint": "capture", "body": {"api_key": "settings.key", "event": "event"}}},
    "batching": {"enabled": True, "max_events": 10},
}


def _requests(conn, events, key):
    ctx = TransformContext.at("2024-05-01T12:00:00Z")
    out = []
    for e in events:
        out += conn.transform({"type": "track", "event": e}, {"key": key}, ctx)
    return out


def test_a_single_body_goes_out_wrapped_with_the_key_in_the_envelope():
    conn = Connector(DestinationSpec.model_validate(SPEC))
    [(idx, req)] = conn.batch(_requests(conn, ["a"], "k1"), {"key": "k1"})
    assert idx == [0]
    assert req.json_body == {"api_key": "k1", "batch": [{"event": "a"}]}
    assert list(req.json_body) == ["api_key", "batch"]


def test_merged_bodies_share_one_envelope_within_max_events():
    conn = Connector(DestinationSpec.model_validate(SPEC))
    out = conn.batch(_requests(conn, ["a", "b", "c"], "k1"), {"key": "k1"})
    assert [i for i, _ in out] == [[0, 1], [2]]
    assert out[0][1].json_body == {"api_key": "k1", "batch": [{"event": "a"}, {"event": "b"}]}
    assert out[1][1].json_body == {"api_key": "k1", "batch": [{"event": "c"}]}


def test_bodies_with_different_hoisted_values_never_merge():
    conn = Connector(DestinationSpec.model_validate(SPEC))
    reqs = _requests(conn, ["a"], "k1") + _requests(conn, ["b"], "k2")
    out = conn.batch(reqs, {"key": "k1"})
    assert [r.json_body["api_key"] for _, r in out] == ["k1", "k2"]


def test_hoist_needs_wrap():
    bad = {
        **SPEC,
        "endpoints": {"capture": {"url": "https://x.io/", "batch": {"max_events": 2, "hoist": ["k"]}}},
    }
    with pytest.raises(ValidationError, match="hoist needs `wrap`"):
        DestinationSpec.model_validate(bad)
