"""Directive `without`: an object without keys named at run time (e.g. by settings rows).

Expectations are written from the directive's documented meaning, not captured from its output.
"""

import copy

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.spec.model import DestinationSpec

ROWS = {"type": "array", "items": {"type": "object"}}


@pytest.fixture(params=["generated", "closures"])
def backend(request, monkeypatch):
    monkeypatch.setenv("SLUICE_CODEGEN", "1" if request.param == "generated" else "0")
    return request.param


def _body(value, event, config):
    spec = {
        "spec_version": 2,
        "name": "withoutdemo",
        "display_name": "Without demo",
        "settings": {"type": "object", "properties": {"once": ROWS, "also": ROWS}},
        "event_types": ["identify"],
        "endpoints": {"e": {"url": "https://example.org/e"}},
        "mappings": {"identify": {"endpoint": "e", "body": {"left": value}}},
    }
    conn = Connector(DestinationSpec.model_validate(spec))
    [req] = conn.transform({"type": "identify", **event}, config, TransformContext.at("2024-05-01T00:00:00Z"))
    return req.json_body["left"]


def test_removes_top_level_and_nested_keys_and_never_touches_the_event(backend):
    event = {"traits": {"a": 1, "b": 2, "address": {"city": "Oslo", "zip": "0150"}}}
    before = copy.deepcopy(event)
    config = {"once": [{"property": "a"}, {"property": " address.city "}, {"property": "missing.x"}, {}]}
    value = {"without": "settings.once[*].property", "in": "traits"}
    assert _body(value, event, config) == {"b": 2, "address": {"zip": "0150"}}
    assert event == before


def test_lists_of_lists_are_flattened_once(backend):
    value = {"without": {"array": ["settings.once[*].property", "settings.also[*].property"]}, "in": "traits"}
    config = {"once": [{"property": "a"}], "also": [{"property": "b"}]}
    assert _body(value, {"traits": {"a": 1, "b": 2, "c": 3}}, config) == {"c": 3}


def test_defaults_to_the_event_and_passes_non_objects(backend):
    config = {"once": [{"property": "context"}, {"property": "traits"}]}
    value = {"without": "settings.once[*].property"}
    assert _body(value, {"userId": "u", "context": {"ip": "x"}}, config) == {
        "type": "identify",
        "userId": "u",
    }
    assert _body({"without": "settings.once[*].property", "in": "userId"}, {"userId": "u"}, config) == "u"
