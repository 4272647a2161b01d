"""The event model and its exported JSON Schema."""

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from sdk.events import event_json_schema, parse_event

ROOT = Path(__file__).resolve().parents[2]


def test_each_type_parses_and_keeps_extras():
    cases = [
        {"type": "track", "event": "Signed Up", "userId": "u", "properties": {"plan": "pro"}, "x": 1},
        {"type": "identify", "anonymousId": "a", "traits": {"email": "e@x.io"}},
        {"type": "page", "userId": "u", "name": "Home"},
        {"type": "screen", "userId": "u", "name": "Main"},
        {"type": "group", "userId": "u", "groupId": "g1"},
        {"type": "alias", "userId": "u", "previousId": "old"},
    ]
    for c in cases:
        assert parse_event(c).type == c["type"]
    assert parse_event(cases[0]).model_extra == {"x": 1}


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "track", "userId": "u"},
        {"type": "track", "event": "x"},
        {"type": "alias", "userId": "u"},
        {"type": "warp", "userId": "u"},
        {"type": "identify", "userId": "u", "traits": "not an object"},
    ],
)
def test_invalid_events_are_rejected(bad):
    with pytest.raises(ValidationError):
        parse_event(bad)


def test_json_schema_validates_the_same_way():
    schema = event_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate({"type": "track", "event": "x", "userId": "u"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"type": "track", "userId": "u"}, schema)


def test_committed_schema_is_current():
    committed = json.loads((ROOT / "sdk" / "schemas" / "event.schema.json").read_text())
    assert committed == json.loads(json.dumps(event_json_schema())), (
        "run `sluice schema events --out sdk/schemas/event.schema.json`"
    )
