"""``flatten_indexed``: one flat level of properties the way JavaScript paths read them (Klaviyo's
``flattenProperties``): nested keys joined by dots, objects inside lists as ``key[i]``, plain lists kept.

Expectations are written by hand from the format's description in ``sdk/mapping/formats.py``.
"""

import pytest
from mini_spec import mini_connector

from sdk.context import TransformContext
from sdk.mapping import formats


def test_nested_objects_join_with_dots_and_plain_lists_stay_lists():
    value = {"friend": {"age": 25, "names": {"first": "Ada", "last": "L"}}, "tags": ["a", "b"], "n": 1}
    assert formats.flatten_indexed(value) == {
        "friend.age": 25,
        "friend.names.first": "Ada",
        "friend.names.last": "L",
        "tags": ["a", "b"],
        "n": 1,
    }


def test_objects_inside_lists_are_indexed_like_javascript_paths():
    value = {"items": [{"sku": "a", "dims": {"w": 2}}, {"sku": "b"}], "grid": [[1, 2], [3]]}
    assert formats.flatten_indexed(value) == {
        "items[0].sku": "a",
        "items[0].dims.w": 2,
        "items[1].sku": "b",
        "grid[0]": [1, 2],
        "grid[1]": [3],
    }


def test_empty_containers_and_non_objects_pass():
    assert formats.flatten_indexed({"e": {}, "l": []}) == {"e": {}, "l": []}
    assert formats.flatten_indexed(["x"]) == ["x"]
    assert formats.flatten_indexed("text") == "text"


def test_custom_separator():
    assert formats.flatten_indexed({"a": {"b": [{"c": 1}]}}, "_") == {"a_b[0]_c": 1}


def test_too_deep_is_a_format_error():
    deep: dict = {}
    node = deep
    for _ in range(70):
        node["k"] = {}
        node = node["k"]
    node["k"] = 1
    with pytest.raises(formats.FormatError, match="64 levels"):
        formats.flatten_indexed(deep)


def test_in_a_spec_with_rest():
    body = {
        "object": {
            "value": "properties.revenue",
            "props": {"rest": "properties", "format": ["flatten_indexed"]},
        }
    }
    conn = mini_connector("track", {"body": body})
    event = {"type": "track", "event": "Paid", "properties": {"revenue": 3, "cart": {"items": [{"id": 1}]}}}
    (req,) = conn.transform(event, {}, TransformContext.at("2024-05-01T12:00:00Z"))
    assert req.json_body == {"value": 3, "props": {"cart.items[0].id": 1}}
