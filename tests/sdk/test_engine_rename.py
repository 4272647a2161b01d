"""The `rename` modifier: keys of an object value renamed by a table in one pass (RudderStack trait names
to a vendor's reserved attribute names), everything else kept as it is, explicit nulls included."""

from __future__ import annotations

import pytest
from mini_spec import NOW, mini_body, mini_connector

from sdk.errors import SpecError

RENAMES = {"firstName": "first_name", "birthday": "dob", "email": "mail"}
pytestmark = pytest.mark.usefixtures("both_engines")


def _attrs(field: dict, traits) -> dict:
    return mini_body("identify", {"attrs": field}, {"traits": traits}).get("attrs")


def test_listed_keys_are_renamed_and_the_rest_kept_with_nulls() -> None:
    traits = {"firstName": "Ada", "birthday": None, "plan": "pro"}
    assert _attrs({"from": "traits", "rename": RENAMES}, traits) == {
        "first_name": "Ada",
        "dob": None,
        "plan": "pro",
    }
    assert traits == {"firstName": "Ada", "birthday": None, "plan": "pro"}


def test_rename_applies_after_omit_and_pick() -> None:
    traits = {"firstName": "Ada", "email": "a@b.c", "plan": "pro"}
    omitted = {"first_name": "Ada", "plan": "pro"}
    assert _attrs({"from": "traits", "omit": ["email"], "rename": RENAMES}, traits) == omitted
    assert _attrs({"from": "traits", "pick": ["email"], "rename": RENAMES}, traits) == {"mail": "a@b.c"}


def test_non_objects_pass_unchanged() -> None:
    assert _attrs({"from": "traits", "rename": RENAMES}, ["x"]) == ["x"]


def test_the_output_shares_nothing_with_the_event() -> None:
    traits = {"firstName": {"given": "Ada"}}
    conn = mini_connector("identify", {"body": {"attrs": {"from": "traits", "rename": RENAMES}}})
    [req] = conn.transform({"type": "identify", "traits": traits}, {}, NOW)
    req.json_body["attrs"]["first_name"]["given"] = "changed"
    assert traits == {"firstName": {"given": "Ada"}}


@pytest.mark.parametrize("table", [["firstName"], {"firstName": ""}, {"firstName": 3}])
def test_a_bad_table_is_refused_at_load(table) -> None:
    with pytest.raises(SpecError, match="rename"):
        mini_connector("identify", {"body": {"attrs": {"from": "traits", "rename": table}}})
