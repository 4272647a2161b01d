"""``flatten('.', 'json')``: traits as the fields of a key-value store's hash, which hold text only, so a
list is kept whole as JSON text and nothing empty becomes a field. Expectations written by hand from the
format's description."""

import pytest

from sdk.mapping import formats


def test_flatten_json_keeps_lists_whole_as_json_text_and_drops_nulls_and_empty_objects():
    value = {
        "address": {"city": "Paris", "geo": {"lat": 48.8}, "extra": {}},
        "tags": ["a", "b"],
        "orders": [{"id": 1}],
        "none": None,
        "blank": "",
        "n": 0,
    }
    assert formats.flatten(value, [".", "json"]) == {
        "address.city": "Paris",
        "address.geo.lat": 48.8,
        "tags": '["a","b"]',
        "orders": '[{"id":1}]',
        "blank": "",  # an empty text is a value, kept
        "n": 0,
    }


def test_flatten_json_uses_the_separator_and_leaves_non_objects_alone():
    assert formats.flatten({"a": {"b": [1]}}, ["_", "json"]) == {"a_b": "[1]"}
    assert formats.flatten("x", [".", "json"]) == "x"


def test_flatten_refuses_an_unknown_list_style():
    with pytest.raises(formats.FormatError, match="'brackets', 'json'"):
        formats.flatten({"a": 1}, [".", "csv"])
