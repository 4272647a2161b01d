"""The `rename` modifier: keys of an object value renamed by a table in one pass (RudderStack trait names
to a vendor's reserved attribute names), everything else kept as it is, explicit nulls included."""

from __future__ import annotations

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import SpecError
from sdk.spec.model import DestinationSpec

NOW = TransformContext.at("2024-05-01T12:00:00Z")


@pytest.fixture(autouse=True, params=["1", "0"], ids=["generated", "closures"])
def _engine(request, monkeypatch):
    """Each test runs on the generated code and on the reference closures."""
    monkeypatch.setenv("SLUICE_CODEGEN", request.param)


def _connector(field: dict) -> Connector:
    spec = {
        "spec_version": 2,
        "name": "renamer",
        "display_name": "Renamer",
        "event_types": ["identify"],
        "endpoints": {"e": {"url": "https://x.example/"}},
        "mappings": {"identify": {"endpoint": "e", "body": {"attrs": field}}},
    }
    return Connector(DestinationSpec.model_validate(spec))


def _attrs(field: dict, traits) -> dict:
    [req] = _connector(field).transform({"type": "identify", "userId": "u", "traits": traits}, {}, NOW)
    return req.json_body.get("attrs")


def test_listed_keys_are_renamed_and_the_rest_kept_with_nulls() -> None:
    field = {"from": "traits", "rename": {"firstName": "first_name", "birthday": "dob"}}
    traits = {"firstName": "Ada", "birthday": None, "plan": "pro"}
    assert _attrs(field, traits) == {"first_name": "Ada", "dob": None, "plan": "pro"}
    assert traits == {"firstName": "Ada", "birthday": None, "plan": "pro"}


def test_rename_applies_after_omit_and_pick() -> None:
    renames = {"firstName": "first_name", "email": "mail"}
    traits = {"firstName": "Ada", "email": "a@b.c", "plan": "pro"}
    assert _attrs({"from": "traits", "omit": ["email"], "rename": renames}, traits) == {
        "first_name": "Ada",
        "plan": "pro",
    }
    assert _attrs({"from": "traits", "pick": ["email"], "rename": renames}, traits) == {"mail": "a@b.c"}


def test_non_objects_pass_unchanged() -> None:
    assert _attrs({"from": "traits", "rename": {"a": "b"}}, ["x"]) == ["x"]


def test_the_output_shares_nothing_with_the_event() -> None:
    traits = {"firstName": {"given": "Ada"}}
    [req] = _connector({"from": "traits", "rename": {"firstName": "first_name"}}).transform(
        {"type": "identify", "traits": traits}, {}, NOW
    )
    req.json_body["attrs"]["first_name"]["given"] = "changed"
    assert traits == {"firstName": {"given": "Ada"}}


@pytest.mark.parametrize("table", [["firstName"], {"firstName": ""}, {"firstName": 3}])
def test_a_bad_table_is_refused_at_load(table) -> None:
    with pytest.raises(SpecError, match="rename"):
        _connector({"from": "traits", "rename": table})
