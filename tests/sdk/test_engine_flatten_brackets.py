"""``flatten('.', 'brackets')``: nested custom properties as JavaScript-style keys (``products[0].sku``),
the shape ad platforms such as the Meta Pixel's custom data take for nested values. Expectations written
by hand from the format's description."""

from sdk.mapping import formats


def test_flatten_brackets_uses_dots_for_objects_and_brackets_for_list_positions():
    value = {
        "products": [{"id": "p1", "tags": ["a"]}, {"id": "p2"}],
        "cart": {"total": 3},
        "empty": [],
        "n": 1,
    }
    assert formats.flatten(value, [".", "brackets"]) == {
        "products[0].id": "p1",
        "products[0].tags[0]": "a",
        "products[1].id": "p2",
        "cart.total": 3,
        "empty": [],
        "n": 1,
    }
    assert formats.flatten(["x"], [".", "brackets"]) == ["x"]  # not an object: unchanged
