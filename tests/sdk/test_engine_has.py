"""The `has` condition: a value exists in the event, even as null or empty text. Vendors read a field
sent as null as "clear it", so a renamed field must keep an explicit null without inventing one for a
field that was never sent (`present` is false for both; `keep_null` alone turns missing into null)."""

from __future__ import annotations

import pytest
from mini_spec import mini_body

BODY = {
    "first_name": {"from": "traits.firstName", "keep_null": True, "when": {"has": "traits.firstName"}},
    "sent": {"if": {"has": "traits.plan"}, "then": True, "else": False},
}


@pytest.mark.usefixtures("both_engines")
@pytest.mark.parametrize(
    ("traits", "body"),
    [
        ({"firstName": None}, {"first_name": None, "sent": False}),
        ({"firstName": "Ada", "plan": None}, {"first_name": "Ada", "sent": True}),
        ({"firstName": "", "plan": ""}, {"first_name": "", "sent": True}),
        ({"plan": {}}, {"sent": True}),
        ({}, {"sent": False}),
        ("not-an-object", {"sent": False}),
    ],
)
def test_has_tells_sent_as_null_from_not_sent(traits, body) -> None:
    assert mini_body("identify", BODY, {"traits": traits}) == body
