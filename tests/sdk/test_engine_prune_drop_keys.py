"""``prune`` and ``drop_keys``: custom parameters cleaned the way vendors want them, without a per-key loop
in the spec (GA4: no empty values, no reserved prefixes).

Expectations are written by hand from the formats' descriptions in ``sdk/mapping/formats.py``.
"""

import pytest
from mini_spec import mini_connector

from sdk.context import TransformContext
from sdk.errors import InstrumentationError
from sdk.mapping import formats


def test_prune_drops_null_empty_text_and_empty_containers_but_keeps_false_and_zero():
    value = {"a": None, "b": "", "c": {}, "d": [], "e": 0, "f": False, "g": " ", "h": {"x": None}}
    assert formats.prune(value) == {"e": 0, "f": False, "g": " ", "h": {"x": None}}
    assert formats.prune([None, "", [], 1]) == [1]
    assert formats.prune("text") == "text"


def test_drop_keys_removes_matching_keys_only():
    value = {"ga_session": 1, "google_id": 2, "firebase_x": 3, "plan": "pro", "my_ga_id": 4}
    assert formats.drop_keys(value, "^(firebase_|ga_|google_)") == {"plan": "pro", "my_ga_id": 4}
    assert formats.drop_keys(["ga_x"], "^ga_") == ["ga_x"]  # not an object: unchanged


def test_drop_keys_with_a_bad_pattern_is_a_format_error():
    with pytest.raises(formats.FormatError, match="regular expression"):
        formats.drop_keys({"a": 1}, "(")


def test_flatten_prune_and_drop_keys_in_a_spec():
    body = {"params": {"rest": "properties", "format": [{"flatten": "_"}, "prune", {"drop_keys": "^ga_"}]}}
    conn = mini_connector("track", {"body": body})
    event = {
        "type": "track",
        "event": "Viewed",
        "properties": {"a": {"b": [1, None, {}], "c": ""}, "ga_x": 1, "d": [], "e": False},
    }
    (req,) = conn.transform(event, {}, TransformContext.at("2024-05-01T12:00:00Z"))
    assert req.json_body == {"params": {"a_b_0": 1, "e": False}}
    assert event["properties"]["d"] == []  # the event is untouched


def test_bad_pattern_in_a_spec_names_the_field():
    conn = mini_connector("track", {"body": {"p": {"from": "properties", "format": {"drop_keys": "["}}}})
    with pytest.raises(InstrumentationError, match="drop_keys"):
        conn.transform(
            {"type": "track", "properties": {"a": 1}}, {}, TransformContext.at("2024-05-01T12:00:00Z")
        )
