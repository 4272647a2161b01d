"""The `has` condition: a value exists in the event, even as null or empty text. Vendors read a field
sent as null as "clear it", so a renamed field must keep an explicit null without inventing one for a
field that was never sent (`present` is false for both; `keep_null` alone turns missing into null)."""

from __future__ import annotations

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.spec.model import DestinationSpec

NOW = TransformContext.at("2024-05-01T12:00:00Z")
FIELD = {"from": "traits.firstName", "keep_null": True, "when": {"has": "traits.firstName"}}


@pytest.fixture(params=["1", "0"], ids=["generated", "closures"])
def connector(request, monkeypatch) -> Connector:
    monkeypatch.setenv("SLUICE_CODEGEN", request.param)
    spec = {
        "spec_version": 2,
        "name": "hasdemo",
        "display_name": "Has demo",
        "event_types": ["identify"],
        "endpoints": {"e": {"url": "https://x.example/"}},
        "mappings": {
            "identify": {
                "endpoint": "e",
                "body": {
                    "first_name": FIELD,
                    "sent": {"if": {"has": "traits.plan"}, "then": True, "else": False},
                },
            }
        },
    }
    return Connector(DestinationSpec.model_validate(spec))


@pytest.mark.parametrize(
    ("traits", "body"),
    [
        ({"firstName": None}, {"first_name": None, "sent": False}),
        ({"firstName": "Ada", "plan": None}, {"first_name": "Ada", "sent": True}),
        ({"firstName": "", "plan": ""}, {"first_name": "", "sent": True}),
        ({"plan": {}}, {"sent": True}),
        ({}, {"sent": False}),
    ],
)
def test_has_tells_sent_as_null_from_not_sent(connector, traits, body) -> None:
    [req] = connector.transform({"type": "identify", "traits": traits}, {}, NOW)
    assert req.json_body == body


def test_has_on_a_path_through_a_non_object_is_false(connector) -> None:
    [req] = connector.transform({"type": "identify", "traits": "not-an-object"}, {}, NOW)
    assert req.json_body == {"sent": False}
