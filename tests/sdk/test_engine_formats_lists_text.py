"""Formats `last`, `tail`, `pairs` and `squish`, and the full version from `user_agent`.

Expectations are written from the formats' documented meaning, not captured from their output.
"""

import pytest
from mini_spec import mini_connector

from sdk.context import TransformContext
from sdk.mapping import formats


@pytest.mark.parametrize(
    ("value", "expected"),
    [(["a", "b", "c"], "c"), ([], None), ("text", "text"), ({"a": 1}, {"a": 1})],
)
def test_last_is_the_last_element_of_a_list(value, expected):
    assert formats.last(value) == expected


@pytest.mark.parametrize(
    ("value", "n", "expected"),
    [
        ("1662363980287-168cf720-6227-4b56-a98e-c49bdc7279e9", 36, "168cf720-6227-4b56-a98e-c49bdc7279e9"),
        ("short", 36, "short"),
        ([1, 2, 3, 4], 2, [3, 4]),
        ("abc", 0, ""),
        (42, 1, 42),  # not text or a list: passes
    ],
)
def test_tail_keeps_the_last_n(value, n, expected):
    assert formats.tail(value, n) == expected


def test_pairs_lists_an_object_and_explodes_list_values():
    obj = {"company": ["acme", "globex"], "team": "red"}
    assert formats.pairs(obj) == [
        {"key": "company", "value": ["acme", "globex"]},
        {"key": "team", "value": "red"},
    ]
    assert formats.pairs(obj, "explode") == [
        {"key": "company", "value": "acme"},
        {"key": "company", "value": "globex"},
        {"key": "team", "value": "red"},
    ]
    assert formats.pairs("not an object") == []
    with pytest.raises(formats.FormatError):
        formats.pairs(obj, "sideways")


def test_user_agent_version_keeps_every_part_the_agent_states():
    chrome = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_2) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/79.0.3945.117 Safari/537.36"
    )
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
    assert formats.user_agent(chrome, "browser_version") == "79.0.3945.117"
    assert formats.user_agent(chrome, "browser_major") == "79"
    assert formats.user_agent(firefox, "browser_version") == "125.0"


def test_pairs_drive_one_request_per_element():
    mapping = {"each": "traits | pairs('explode')", "body": {"key": "item.key", "id": "item.value"}}
    conn = mini_connector("group", mapping)
    event = {"type": "group", "traits": {"company": ["a", "b"], "team": "t"}}
    reqs = conn.transform(event, {}, TransformContext.at("2024-05-01T00:00:00Z", seed="s"))
    assert [r.json_body for r in reqs] == [
        {"key": "company", "id": "a"},
        {"key": "company", "id": "b"},
        {"key": "team", "id": "t"},
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Viewed  Home page", "Viewed Home page"), ("  a \t b\n", "a b"), ("", ""), (["x  y"], ["x y"]), (3, 3)],
)
def test_squish_makes_white_space_runs_one_space(value, expected):
    assert formats.squish(value) == expected
