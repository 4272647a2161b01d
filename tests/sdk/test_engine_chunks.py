"""The `chunks` format: a list cut into lists of at most N elements, for vendors that cap an array per
request (Braze takes at most 75 purchases in one /users/track call)."""

from __future__ import annotations

import pytest
from mini_spec import NOW, mini_connector

from sdk.errors import InstrumentationError
from sdk.mapping import formats


def test_cuts_in_order_with_a_shorter_last_chunk() -> None:
    assert formats.chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert formats.chunks([1, 2], 5) == [[1, 2]]
    assert formats.chunks([], 3) == []


def test_non_lists_pass_and_the_input_is_not_changed() -> None:
    assert formats.chunks("abc", 2) == "abc"
    original = [{"a": 1}, {"b": 2}, {"c": 3}]
    out = formats.chunks(original, 2)
    assert original == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert out[0] is not original


@pytest.mark.parametrize("size", [0, -1, 1.5, "2", None, True])
def test_size_must_be_a_positive_whole_number(size) -> None:
    with pytest.raises(formats.FormatError, match="whole number"):
        formats.chunks([1, 2], size)


def _connector(size: int = 3):
    mapping = {
        "each": f"properties.items | chunks({size})",
        "body": {"head": {"value": True, "when": {"of": "index", "eq": 0}}, "items": "item"},
    }
    return mini_connector("track", mapping)


@pytest.mark.usefixtures("both_engines")
def test_one_request_per_chunk_through_request_each() -> None:
    event = {"type": "track", "properties": {"items": list(range(7))}}
    reqs = _connector().transform(event, {}, NOW)
    assert [r.json_body for r in reqs] == [
        {"head": True, "items": [0, 1, 2]},
        {"items": [3, 4, 5]},
        {"items": [6]},
    ]
    assert event["properties"]["items"] == list(range(7))


def test_a_bad_size_in_a_spec_is_an_error_naming_the_field() -> None:
    with pytest.raises(InstrumentationError, match="chunks"):
        _connector(0).transform({"type": "track", "properties": {"items": [1]}}, {}, NOW)
