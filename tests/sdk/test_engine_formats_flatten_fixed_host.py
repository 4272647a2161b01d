"""Formats added for Heap, Adobe Analytics and PostHog: ``flatten('.', 'brackets')`` (JavaScript-style list
positions), ``fixed`` (prices with exactly N decimals) and ``url('host_port')`` (a browser's location.host).

Expectations are written by hand from the formats' descriptions in sdk/mapping/formats.py.
"""

import pytest

from sdk.mapping import formats


def test_flatten_with_brackets_writes_list_positions_javascript_style():
    value = {"Location": {"City": "LA"}, "hobbies": ["Music", {"kind": "Run"}], "empty": [], "n": None}
    assert formats.flatten(value, [".", "brackets"]) == {
        "Location.City": "LA",
        "hobbies[0]": "Music",
        "hobbies[1].kind": "Run",
        "empty": [],
        "n": None,
    }
    # Without the style, lists keep dotted positions (the existing meaning).
    assert formats.flatten({"a": [1]}, ".") == {"a.0": 1}
    assert formats.flatten({"a": [1]}) == {"a.0": 1}


def test_flatten_refuses_an_unknown_list_style():
    with pytest.raises(formats.FormatError, match="brackets"):
        formats.flatten({"a": [1]}, [".", "parens"])


@pytest.mark.parametrize(
    "value, n, want",
    [
        (14, 2, "14.00"),
        (13.49 * 11, 2, "148.39"),
        ("3.45", 2, "3.45"),
        (3.45 * 2, 2, "6.90"),
        (2.5, 0, "2"),
        (7, None, "7.00"),
    ],
)
def test_fixed_writes_exactly_n_decimals(value, n, want):
    assert formats.fixed(value, n) == want


def test_fixed_refuses_text_that_is_no_number():
    with pytest.raises(formats.FormatError):
        formats.fixed("lots", 2)


@pytest.mark.parametrize(
    "url, want",
    [
        ("http://localhost:1112/Rectified.html", "localhost:1112"),
        ("https://Docs.Example.com/a?b=1", "docs.example.com"),
        ("https://shop.example:443/", "shop.example"),
        ("http://shop.example:8443/", "shop.example:8443"),
        ("not a url", None),
    ],
)
def test_url_host_port_is_the_host_with_a_port_the_url_gives(url, want):
    assert formats.url_part(url, "host_port") == want
