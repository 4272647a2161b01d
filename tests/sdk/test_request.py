"""VendorRequest: the engine's unchecked constructor and the checked ones agree, and bad input is refused."""

from __future__ import annotations

import copy
import pickle

import pytest
from pydantic import ValidationError

from sdk.request import VendorRequest


def test_build_equals_the_checked_construction() -> None:
    built = VendorRequest.build("PUT", "https://x.test/a", {"H": "v"}, {"q": 1}, {"a": [1]}, endpoint="ep")
    checked = VendorRequest(method="PUT", url="https://x.test/a", headers={"H": "v"}, params={"q": 1},
                            json={"a": [1]}, endpoint="ep")  # fmt: skip
    assert built == checked
    assert built.to_wire() == checked.to_wire()
    assert built.body_kind == "json" and built.steps is None and built.meta == {}


def test_requests_that_differ_in_one_field_are_unequal() -> None:
    a = VendorRequest(url="https://x.test/a", json={"a": 1})
    for change in ({"url": "https://x.test/b"}, {"json": {"a": 2}}, {"endpoint": "e"}, {"method": "PUT"}):
        assert a != a.model_copy(update=change), change
    assert a != {"url": "https://x.test/a"}


def test_wire_round_trip_keeps_every_stored_field() -> None:
    req = VendorRequest(url="https://x.test/a", form={"k": "v"}, endpoint="e", steps={"lookup": {}})
    again = VendorRequest.from_wire(req.to_wire())
    assert again == req
    raw = VendorRequest.from_wire({"transport": "redis", "raw": {"key": "k"}, "endpoint": "e"})
    assert raw.transport == "redis" and raw.raw == {"key": "k"} and raw.url == ""


@pytest.mark.parametrize(
    "bad",
    [
        {"url": "https://x.test", "json": {}, "text": "t"},  # two bodies
        {"url": "https://x.test", "bogus": 1},  # unknown field
        {"url": 5},  # not text
        {"json": {}},  # no url
        {"url": "https://x.test", "headers": {"h": ["a"]}},  # header values are text
    ],
)
def test_bad_requests_are_refused_with_pydantic_errors(bad: dict) -> None:
    with pytest.raises(ValidationError):
        VendorRequest(**bad)
    with pytest.raises(ValidationError):
        VendorRequest.from_wire(bad)


def test_model_copy_is_shallow_unless_deep_and_never_shares_the_original() -> None:
    req = VendorRequest(url="https://x.test/a", json={"n": {"m": 1}})
    moved = req.model_copy(update={"url": "https://y.test/a"})
    assert moved.url == "https://y.test/a" and req.url == "https://x.test/a"
    assert moved.json_body is req.json_body
    deep = req.model_copy(deep=True)
    assert deep == req and deep.json_body is not req.json_body
    assert copy.copy(req) == req and copy.copy(req) is not req


def test_pickles_and_shows_its_fields() -> None:
    req = VendorRequest(url="https://x.test/a", json={"a": 1})
    assert pickle.loads(pickle.dumps(req)) == req
    assert "url='https://x.test/a'" in repr(req)
    with pytest.raises(TypeError):
        hash(req)
