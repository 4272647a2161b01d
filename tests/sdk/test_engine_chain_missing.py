"""Regression: in generated code, a `??` chain whose operands are all null or empty text gave the last
one's value, so a format after it failed (`identifier` on "") where the closures give missing (found by
the differential test on Customer.io: `... ?? context.traits.email | identifier` with an empty email)."""

from __future__ import annotations

import pytest
from mini_spec import mini_body

BODY = {
    "id": "userId ?? traits.email | identifier",
    "total": "properties.total ?? properties.revenue",
    "single": "properties.note",
}


@pytest.mark.usefixtures("both_engines")
@pytest.mark.parametrize(
    ("event", "body"),
    [
        ({"traits": {"email": ""}, "properties": {"revenue": "", "note": ""}}, {"single": ""}),
        ({"userId": None, "traits": {"email": None}, "properties": {"total": None, "revenue": None}}, {}),
        (
            {"traits": {"email": "a@b.c"}, "properties": {"total": "", "revenue": 3}},
            {"id": "a@b.c", "total": 3},
        ),
    ],
)
def test_a_chain_of_nothing_is_missing_and_a_single_path_keeps_its_value(event, body) -> None:
    assert mini_body("identify", BODY, event) == body
