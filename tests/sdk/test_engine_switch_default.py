"""Regression: a `switch` whose `default` case computes null or nothing gave the default option's own
text (the YAML of the expression) instead, because `default` was also read as the generic modifier."""

from __future__ import annotations

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.spec.model import DestinationSpec


@pytest.fixture(autouse=True, params=["1", "0"], ids=["generated", "closures"])
def _engine(request, monkeypatch):
    """Each test runs on the generated code and on the reference closures."""
    monkeypatch.setenv("SLUICE_CODEGEN", request.param)


def _run(value_spec, event):
    spec = DestinationSpec.model_validate(
        {
            "spec_version": 2,
            "name": "switchy",
            "display_name": "Switchy",
            "event_types": ["track"],
            "endpoints": {"e": {"url": "https://x.example/"}},
            "mappings": {
                "track": {
                    "endpoint": "e",
                    "body": {"v": value_spec, "kept": {**value_spec, "keep_null": True}},
                }
            },
        }
    )
    [req] = Connector(spec).transform(
        {"type": "track", **event}, {}, TransformContext.at("2024-05-01T12:00:00Z")
    )
    return req.json_body


def test_default_case_that_is_null_stays_null() -> None:
    value = {"switch": "properties.kind", "cases": {"a": "'A'"}, "default": "properties.other"}
    assert _run(value, {"properties": {"kind": "b", "other": None}}) == {"kept": None}
    assert _run(value, {"properties": {"kind": "b"}}) == {"kept": None}


def test_default_case_and_listed_cases_still_apply() -> None:
    value = {"switch": "properties.kind", "cases": {"a": "'A'"}, "default": "properties.other"}
    assert _run(value, {"properties": {"kind": "a"}}) == {"v": "A", "kept": "A"}
    assert _run(value, {"properties": {"kind": "b", "other": "x"}}) == {"v": "x", "kept": "x"}
