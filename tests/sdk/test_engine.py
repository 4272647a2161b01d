"""The spec language end to end: a small in-memory spec compiled and run."""

import base64

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, SpecError, UnsupportedEventError
from sdk.spec.model import DestinationSpec

SPEC = {
    "name": "demo",
    "display_name": "Demo",
    "aliases": ["DM"],
    "settings": {
        "type": "object",
        "required": ["apiKey"],
        "properties": {
            "apiKey": {"type": "string", "secret": True},
            "region": {"type": "string", "enum": ["US", "EU"], "default": "US"},
        },
    },
    "event_types": ["track", "identify"],
    "vars": {"host": {"setting": "region", "map": {"EU": "eu.demo.io"}, "default": "api.demo.io"}},
    "endpoints": {
        "events": {"url": "https://{{ vars.host }}/v1/events"},
        "users": {"method": "PUT", "url": "https://{{ vars.host }}/v1/users/{{ event.userId | urlencode }}"},
    },
    "auth": {"type": "basic", "username": "{{ settings.apiKey }}", "password": ""},
    "common": {"body": {"ts": {"from": ["timestamp", "originalTimestamp"], "format": ["epoch_ms"]}}},
    "mappings": {
        "track": {
            "endpoint": "events",
            "body": {
                "name": {"from": "event", "required": True},
                "user.id": {"from": ["userId", "anonymousId"], "required": True, "format": ["string"]},
                "revenue": {"from": "properties.revenue", "format": ["number"]},
                "props": {"from": "properties", "omit_mapped": True},
                "source": {"value": "sluice"},
                "key_echo": {"value": "{{ settings.region }}"},
            },
        },
        "identify": {
            "endpoint": "users",
            "body": {
                "email": {"from": ["traits.email", "context.traits.email"], "format": ["trim", "lower"]}
            },
        },
    },
}


@pytest.fixture(scope="module")
def demo():
    return Connector(DestinationSpec.model_validate(SPEC))


CTX = TransformContext.at("2024-05-01T12:00:00Z", seed="m1")


def test_track_maps_fields_formats_and_nesting(demo):
    ev = {
        "type": "track",
        "event": "Bought",
        "userId": 42,
        "timestamp": "2024-05-01T10:00:00Z",
        "properties": {"revenue": "9.5", "color": "red"},
    }
    [req] = demo.transform(ev, {"apiKey": "k"}, CTX)
    assert req.method == "POST"
    assert req.url == "https://api.demo.io/v1/events"
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(b"k:").decode()
    assert req.json_body == {
        "ts": 1714557600000,
        "name": "Bought",
        "user": {"id": "42"},
        "revenue": 9.5,
        "props": {"color": "red"},
        "source": "sluice",
        "key_echo": "US",
    }


def test_identify_uses_region_var_and_event_in_url(demo):
    ev = {"type": "identify", "userId": "a b/c", "context": {"traits": {"email": " X@Y.COM "}}}
    [req] = demo.transform(ev, {"apiKey": "k", "region": "EU"}, CTX)
    assert req.method == "PUT"
    assert req.url == "https://eu.demo.io/v1/users/a%20b%2Fc"
    assert req.json_body == {"email": "x@y.com"}


def test_missing_required_field_is_instrumentation_error(demo):
    with pytest.raises(InstrumentationError, match="userId or anonymousId is required"):
        demo.transform({"type": "track", "event": "x"}, {"apiKey": "k"}, CTX)


def test_bad_value_names_the_field(demo):
    ev = {"type": "track", "event": "x", "userId": "u", "properties": {"revenue": "lots"}}
    with pytest.raises(InstrumentationError, match="revenue"):
        demo.transform(ev, {"apiKey": "k"}, CTX)


def test_missing_url_value_from_event_is_instrumentation_error(demo):
    with pytest.raises(InstrumentationError, match="userId is required"):
        demo.transform({"type": "identify", "anonymousId": "a"}, {"apiKey": "k"}, CTX)


def test_unsupported_type(demo):
    with pytest.raises(UnsupportedEventError, match="does not support 'page'"):
        demo.transform({"type": "page", "userId": "u"}, {"apiKey": "k"}, CTX)


@pytest.mark.parametrize("config", [{}, {"apiKey": 5}, {"apiKey": "k", "region": "MARS"}])
def test_bad_config_is_configuration_error(demo, config):
    with pytest.raises(ConfigurationError, match="fix the destination config"):
        demo.transform({"type": "track", "event": "x", "userId": "u"}, config, CTX)


def test_event_without_type(demo):
    with pytest.raises(InstrumentationError, match="no 'type'"):
        demo.transform({"event": "x"}, {"apiKey": "k"}, CTX)


def test_same_input_same_output(demo):
    ev = {"type": "track", "event": "x", "userId": "u", "properties": {"a": [1, {"b": None}]}}
    a = demo.transform(ev, {"apiKey": "k"}, TransformContext.at("2024-01-01T00:00:00Z", "s"))
    b = demo.transform(ev, {"apiKey": "k"}, TransformContext.at("2024-01-01T00:00:00Z", "s"))
    assert [r.to_wire() for r in a] == [r.to_wire() for r in b]


def test_spec_rejects_unknown_endpoint():
    bad = dict(SPEC, mappings={"track": {"endpoint": "nowhere", "body": {}}})
    with pytest.raises(ValueError, match="mappings.track.endpoint is 'nowhere'"):
        DestinationSpec.model_validate(bad)


def test_spec_rejects_unknown_key():
    with pytest.raises(ValueError, match="endpionts"):
        DestinationSpec.model_validate(dict(SPEC, endpionts={}))


def test_unknown_format_in_spec_is_spec_error():
    bad = dict(
        SPEC, mappings={"track": {"endpoint": "events", "body": {"x": {"from": "a", "format": ["zzz"]}}}}
    )
    with pytest.raises(SpecError, match="unknown format 'zzz'"):
        Connector(DestinationSpec.model_validate(bad))


def test_context_ids_are_deterministic():
    a, b = (
        TransformContext.at("2024-01-01T00:00:00Z", "seed"),
        TransformContext.at("2024-01-01T00:00:00Z", "seed"),
    )
    assert [a.new_id(), a.new_id()] == [b.new_id(), b.new_id()]
    assert a.now_ms == 1704067200000


def test_invalid_secret_setting_does_not_echo_its_value():
    spec = dict(
        SPEC,
        settings={
            "type": "object",
            "properties": {"apiKey": {"type": "string", "secret": True, "minLength": 40}},
        },
    )
    conn = Connector(DestinationSpec.model_validate(spec))
    with pytest.raises(ConfigurationError) as info:
        conn.transform({"type": "track", "event": "x", "userId": "u"}, {"apiKey": "sk-short-but-secret"}, CTX)
    assert "sk-short-but-secret" not in info.value.message
    assert "apiKey" in info.value.message and "minLength" in info.value.message
