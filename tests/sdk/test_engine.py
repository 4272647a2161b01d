"""The spec language end to end: small in-memory specs compiled and run.

Expectations are written by hand from the language's rules (docs/spec-language.md), not captured from
the engine's output.
"""

import base64
import copy

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import (
    ConfigurationError,
    EventDropped,
    InstrumentationError,
    SpecError,
    UnsupportedEventError,
)
from sdk.spec.model import DestinationSpec

SPEC = {
    "spec_version": 2,
    "name": "demo",
    "display_name": "Demo",
    "aliases": ["DM"],
    "settings": {
        "type": "object",
        "required": ["apiKey"],
        "properties": {
            "apiKey": {"type": "string", "secret": True},
            "region": {"type": "string", "enum": ["US", "EU"], "default": "US"},
            "residencyServer": {"type": "string"},
        },
    },
    "event_types": ["track", "identify"],
    "vars": {"host": {"lookup": "settings.region", "table": {"EU": "eu.demo.io"}, "default": "api.demo.io"}},
    "endpoints": {
        "events": {"url": "https://{{ vars.host }}/v1/events"},
        "users": {"method": "PUT", "url": "https://{{ vars.host }}/v1/users/{{ userId | urlencode }}"},
    },
    "auth": {"type": "basic", "username": "{{ settings.apiKey }}", "password": ""},
    "mappings": {
        "track": {
            "endpoint": "events",
            "body": {
                "ts": {"from": ["timestamp", "originalTimestamp"], "format": ["epoch_ms"]},
                "name": {"from": "event", "required": True},
                "user.id": {"from": ["userId", "anonymousId"], "required": True, "format": ["string"]},
                "revenue": {"from": "properties.revenue", "format": ["number"]},
                "props": {"rest": "properties"},
                "source": {"value": "sluice"},
                "key_echo": "settings.region",
            },
        },
        "identify": {
            "endpoint": "users",
            "body": {"email": "traits.email ?? context.traits.email | trim | lower"},
        },
    },
}


@pytest.fixture(scope="module")
def demo():
    return Connector(DestinationSpec.model_validate(SPEC))


CTX = TransformContext.at("2024-05-01T12:00:00Z", seed="m1")


def _spec(**over):
    return Connector(DestinationSpec.model_validate({**copy.deepcopy(SPEC), **over}))


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
    assert req.endpoint == "events"
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


# -- issue 6, item 0: a transform never mutates its input nor shares objects ----------------------------
LEAKY = {
    "spec_version": 2,
    "name": "leaky",
    "display_name": "Leaky",
    "event_types": ["track", "identify"],
    "endpoints": {"capture": {"url": "https://x.example/batch"}},
    "mappings": {
        "track": {
            "endpoint": "capture",
            "body": {
                "properties": {"from": "properties", "default": {}},
                "properties.$ip": "context.ip",
                "properties.$current_url": "context.page.url",
            },
        },
        "identify": {
            "endpoint": "capture",
            "body": {
                "properties": {"from": "properties", "default": {}},
                "properties.$set.email": "context.traits.email",
            },
        },
    },
}


def _objects(v, out):
    if isinstance(v, dict | list):
        out.append(v)
        for x in v.values() if isinstance(v, dict) else v:
            _objects(x, out)
    return out


def test_defaults_are_never_shared_between_events():
    """Alice's identify then Bob's track: Bob must not receive Alice's email (the reported leak)."""
    conn = Connector(DestinationSpec.model_validate(LEAKY))
    alice = {"type": "identify", "userId": "alice", "context": {"traits": {"email": "alice@x.io"}}}
    bob = {"type": "track", "userId": "bob", "event": "Go"}
    [a] = conn.transform(alice, {}, CTX)
    [b] = conn.transform(bob, {}, CTX)
    assert a.json_body == {"properties": {"$set": {"email": "alice@x.io"}}}
    assert b.json_body == {"properties": {}}


def test_input_is_never_written_to():
    conn = Connector(DestinationSpec.model_validate(LEAKY))
    ev = {"type": "track", "event": "Go", "properties": {"plan": "pro"},
          "context": {"ip": "1.2.3.4", "page": {"url": "https://a.example/"}}}  # fmt: skip
    before = copy.deepcopy(ev)
    [r] = conn.transform(ev, {}, CTX)
    assert ev == before
    assert r.json_body["properties"] == {
        "plan": "pro",
        "$ip": "1.2.3.4",
        "$current_url": "https://a.example/",
    }
    ids_in = {id(o) for o in _objects(ev, [])}
    assert not ids_in & {id(o) for o in _objects(r.json_body, [])}


# -- the v2 vocabulary ---------------------------------------------------------------------------------
def _run(body, event, settings=None, lets=None, etype="track"):
    spec = {
        "spec_version": 2, "name": "t", "display_name": "T", "event_types": [etype],
        "settings": {"type": "object", "properties": {k: {} for k in (settings or {})}},
        "endpoints": {"e": {"url": "https://t.example/"}},
        "let": lets or {},
        "mappings": {etype: {"endpoint": "e", "body": body}},
    }  # fmt: skip
    [r] = Connector(DestinationSpec.model_validate(spec)).transform(
        {"type": etype, **event}, settings or {}, CTX
    )
    return r.json_body


def test_each_maps_filters_and_caps_lists():
    body = {"items": {"each": "properties.products", "map": {"item_id": "item.sku", "n": "index"},
                      "where": {"present": "item.sku"}, "limit": 2}}  # fmt: skip
    ev = {"properties": {"products": [{"sku": "a"}, {"x": 1}, {"sku": "b"}, {"sku": "c"}]}}
    assert _run(body, ev) == {"items": [{"item_id": "a", "n": 0}, {"item_id": "b", "n": 2}]}


def test_lookup_rows_from_settings_one_to_many_and_unmapped_behaviour():
    lets = {"names": {"lookup": "event", "rows": "settings.map", "many": True, "otherwise": "pass"}}
    settings = {
        "map": [{"from": "Order Completed", "to": "Purchase"}, {"from": "order_completed", "to": "Buy"}]
    }
    assert _run({"n": "let.names"}, {"event": " ORDER completed "}, settings, lets) == {
        "n": ["Purchase", "Buy"]
    }
    assert _run({"n": "let.names"}, {"event": "Other"}, settings, lets) == {"n": ["Other"]}
    drop = {"names": {"lookup": "event", "rows": "settings.map", "otherwise": "drop"}}
    with pytest.raises(EventDropped):
        _run({"n": "let.names"}, {"event": "Other"}, settings, drop)


def test_selectors_pluck_and_templated_keys():
    ev = {"context": {"externalId": [{"type": "a", "id": 1}, {"type": "ga", "id": "G-1"}]},
          "properties": {"products": [{"price": 2}, {"price": "3.5"}]},
          "traits": {"groupType": "company"}}  # fmt: skip
    body = {"cid": "context.externalId[type=ga].id", "prices": "properties.products[*].price",
            "total": {"sum": "properties.products", "of": "item.price"},
            "$groups.{{ traits.groupType }}": {"value": "acme"}}  # fmt: skip
    assert _run(body, ev) == {
        "cid": "G-1",
        "prices": [2, "3.5"],
        "total": 5.5,
        "$groups": {"company": "acme"},
    }


def test_switch_if_and_conditions():
    body = {"kind": {"switch": "properties.k", "match": "ci", "cases": {"A": "'first'", "b": "'second'"},
                     "default": "'other'"},
            "flag": {"if": {"of": "properties.n", "gt": 3}, "then": True, "else": False},
            "old": {"if": {"age_of": "timestamp", "gt": "72h"}, "then": True, "else": False}}  # fmt: skip
    ev = {"properties": {"k": " a ", "n": "4"}, "timestamp": "2024-04-01T00:00:00Z"}
    assert _run(body, ev) == {"kind": "first", "flag": True, "old": True}


def test_integration_options_resolve_through_aliases():
    body = {"o": "opts.option"}
    spec_names = {"integrations": {"t": {"option": 1}}}
    assert _run(body, spec_names) == {"o": 1}


def test_checks_raise_their_kind_with_a_templated_message():
    spec = {
        "spec_version": 2, "name": "t", "display_name": "T", "event_types": ["track"],
        "endpoints": {"e": {"url": "https://t.example/"}},
        "checks": [{"when": {"absent": "userId"}, "error": "{{ event }} needs a userId"},
                   {"when": {"of": "event", "eq": "skip"}, "drop": "skipped by rule"}],
        "mappings": {"track": {"endpoint": "e", "body": {"u": "userId"}}},
    }  # fmt: skip
    conn = Connector(DestinationSpec.model_validate(spec))
    with pytest.raises(InstrumentationError, match="Go needs a userId"):
        conn.transform({"type": "track", "event": "Go"}, {}, CTX)
    with pytest.raises(EventDropped, match="skipped by rule"):
        conn.transform({"type": "track", "event": "skip", "userId": "u"}, {}, CTX)


def test_fan_out_requests_each_conditional():
    spec = {
        "spec_version": 2, "name": "t", "display_name": "T", "event_types": ["identify"],
        "endpoints": {"profile": {"url": "https://t.example/p"}, "device": {"url": "https://t.example/d"}},
        "mappings": {"identify": {"requests": [
            {"endpoint": "profile", "body": {"id": "userId"}},
            {"endpoint": "device", "when": {"present": "context.device.token"},
             "body": {"t": "context.device.token"}},
        ]}},
    }  # fmt: skip
    conn = Connector(DestinationSpec.model_validate(spec))
    reqs = conn.transform({"type": "identify", "userId": "u", "context": {"device": {"token": "x"}}}, {}, CTX)
    assert [(r.endpoint, r.json_body) for r in reqs] == [("profile", {"id": "u"}), ("device", {"t": "x"})]
    assert len(conn.transform({"type": "identify", "userId": "u"}, {}, CTX)) == 1


# -- settings are checked, not guessed -------------------------------------------------------------------
def test_near_miss_setting_is_refused_with_did_you_mean(demo):
    with pytest.raises(
        ConfigurationError, match="unknown setting `residencyserver`: did you mean `residencyServer`"
    ):
        demo.transform(
            {"type": "track", "event": "x", "userId": "u"}, {"apiKey": "k", "residencyserver": "EU"}, CTX
        )


def test_other_unknown_settings_only_warn(demo):
    cfg = {"apiKey": "k", "someDeviceModeFlag": True}
    assert demo.transform({"type": "track", "event": "x", "userId": "u"}, cfg, CTX)
    assert any("someDeviceModeFlag" in w for w in demo.config_warnings(cfg))


def test_event_filtering_applies_to_every_connector(demo):
    ev = {"type": "track", "event": "Blocked", "userId": "u"}
    cfg = {
        "apiKey": "k",
        "eventFilteringOption": "blacklistedEvents",
        "blacklistedEvents": [{"eventName": "Blocked"}],
    }
    with pytest.raises(EventDropped, match="denylist"):
        demo.transform(ev, cfg, CTX)
    allow = {
        "apiKey": "k",
        "eventFilteringOption": "whitelistedEvents",
        "whitelistedEvents": [{"eventName": "Ok"}],
    }
    with pytest.raises(EventDropped, match="allowlist"):
        demo.transform(ev, allow, CTX)
    assert demo.transform({**ev, "event": "Ok"}, allow, CTX)


def test_consent_denied_category_drops_the_event(demo):
    cfg = {"apiKey": "k", "oneTrustCookieCategories": [{"oneTrustCookieCategory": "C0004"}]}
    ev = {"type": "track", "event": "x", "userId": "u",
          "context": {"consentManagement": {"provider": "oneTrust",
                                            "deniedConsentIds": ["C0004"]}}}  # fmt: skip
    with pytest.raises(EventDropped, match="consent"):
        demo.transform(ev, cfg, CTX)
    ev["context"]["consentManagement"] = {"provider": "oneTrust", "allowedConsentIds": ["C0004"]}
    assert demo.transform(ev, cfg, CTX)


# -- the spec is validated at load with errors that name the key ----------------------------------------
def test_spec_rejects_unknown_endpoint():
    bad = dict(
        SPEC,
        mappings={"track": {"endpoint": "nowhere", "body": {}}, "identify": SPEC["mappings"]["identify"]},
    )
    with pytest.raises(ValueError, match="uses endpoint 'nowhere'"):
        DestinationSpec.model_validate(bad)


def test_spec_rejects_unknown_key():
    with pytest.raises(ValueError, match="endpionts"):
        DestinationSpec.model_validate(dict(SPEC, endpionts={}))


def test_spec_version_1_is_refused_with_a_pointer():
    with pytest.raises(ValueError, match="port the spec to version 2"):
        DestinationSpec.model_validate(dict(SPEC, spec_version=1))


@pytest.mark.parametrize(
    "field, message",
    [
        ({"from": "a", "format": ["zzz"]}, "unknown format 'zzz'"),
        ({"from": "a", "format": ["lowr"]}, "did you mean 'lower'"),
        ({"value": 1, "currency": "x"}, "put the fields under `object:`"),
        ("let.nothing", "names no `let` value"),
        ("ctx.clock", "ctx has now"),
        ("a ?? | lower", "missing operand"),
        ({"if": {"of": "x", "eq": 1, "gt": 2}, "then": 1}, "exactly one test"),
        ({"call": "nope"}, "names no function of mapper.py"),
    ],
)
def test_compile_errors_name_the_key(field, message):
    bad = copy.deepcopy(SPEC)
    bad["mappings"]["track"]["body"]["broken"] = field
    with pytest.raises(SpecError, match=message) as info:
        Connector(DestinationSpec.model_validate(bad))
    assert "demo.mappings.track.requests[0].body.broken" in str(info.value)


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
        vars={},
        endpoints={"events": {"url": "https://x.example/"}, "users": {"url": "https://x.example/u"}},
    )
    bad = copy.deepcopy(spec)
    bad["mappings"]["track"]["body"].pop("key_echo")
    conn = Connector(DestinationSpec.model_validate(bad))
    with pytest.raises(ConfigurationError) as info:
        conn.transform({"type": "track", "event": "x", "userId": "u"}, {"apiKey": "sk-short-but-secret"}, CTX)
    assert "sk-short-but-secret" not in info.value.message
    assert "apiKey" in info.value.message and "minLength" in info.value.message


def test_duplicate_keys_in_a_spec_are_refused(tmp_path):
    """The later key would silently win; a spec says one thing once."""
    from pathlib import Path

    from sdk.connector import load_spec

    text = (Path(__file__).resolve().parents[2] / "integrations" / "webhook" / "spec.yaml").read_text()
    spec = tmp_path / "spec.yaml"
    spec.write_text(text.replace("display_name: Webhook", "display_name: Webhook\ndisplay_name: Again"))
    with pytest.raises(SpecError, match="duplicate key 'display_name'"):
        load_spec(spec)


def test_lets_that_read_each_other_in_a_circle_are_a_spec_error():
    bad = copy.deepcopy(SPEC)
    bad["let"] = {"a": "let.b | string", "b": {"first": ["let.c", "userId"]}, "c": "let.a"}
    with pytest.raises(SpecError, match=r"let.a -> let.b -> let.c -> let.a"):
        Connector(DestinationSpec.model_validate(bad))
