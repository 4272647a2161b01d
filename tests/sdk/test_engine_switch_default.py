"""Regression: a `switch` whose `default` case computes null or nothing gave the default option's own
text (the YAML of the expression) instead, because `default` was also read as the generic modifier."""

from __future__ import annotations

import pytest
from mini_spec import mini_body

VALUE = {"switch": "properties.kind", "cases": {"a": "'A'"}, "default": "properties.other"}
BODY = {"v": VALUE, "kept": {**VALUE, "keep_null": True}}


@pytest.mark.usefixtures("both_engines")
@pytest.mark.parametrize(
    ("properties", "body"),
    [
        ({"kind": "b", "other": None}, {"kept": None}),
        ({"kind": "b"}, {"kept": None}),
        ({"kind": "a"}, {"v": "A", "kept": "A"}),
        ({"kind": "b", "other": "x"}, {"v": "x", "kept": "x"}),
    ],
)
def test_default_case_computing_null_stays_null_and_cases_still_apply(properties, body) -> None:
    assert mini_body("track", BODY, {"properties": properties}) == body
