"""Customer.io mapping: identifier choice, endpoints per call, device routing, regions and typed errors.

All events here are hand-written for these tests.
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, SluiceError, UnsupportedEventError
from sdk.registry import load_connector
from sdk.request import VendorRequest
from sdk.testing.strategies import EVENT_TYPES, FUZZ_SETTINGS, events

CFG = {"siteID": "site-abc", "apiKey": "key-xyz", "datacenter": "US"}


@pytest.fixture(scope="module")
def cio():
    return load_connector("customerio")


def run(cio, event, config=None):
    return cio.transform(event, config or CFG, TransformContext.at("2024-05-01T12:00:00Z"))


def one(cio, event, config=None) -> VendorRequest:
    reqs = run(cio, event, config)
    assert len(reqs) == 1
    return reqs[0]


def test_lookup_by_peer_type_name_and_rudder_type():
    assert load_connector("customerio").name == "customerio"
    assert load_connector("CUSTOMERIO").name == "customerio"


def test_identify_puts_flat_attributes_with_basic_auth(cio):
    r = one(
        cio,
        {
            "type": "identify",
            "userId": "u/77",
            "anonymousId": "a-1",
            "timestamp": "2024-03-01T00:00:10.900Z",
            "traits": {
                "plan": "pro",
                "anonymousId": "dropped",
                "address": {"city": "Lyon", "zip": "69001"},
                "createdAt": "2024-01-01T00:00:00Z",
            },
        },
    )
    assert r.method == "PUT"
    assert r.url == "https://track.customer.io/api/v1/customers/u%2F77"
    assert r.headers["Authorization"] == "Basic " + base64.b64encode(b"site-abc:key-xyz").decode()
    assert r.json_body == {
        "plan": "pro",
        "city": "Lyon",
        "zip": "69001",
        "created_at": 1704067200,
        "_timestamp": 1709251210,
        "anonymous_id": "a-1",
    }


def test_identify_without_userid_uses_email(cio):
    r = one(cio, {"type": "identify", "traits": {"email": "pat@example.com"}})
    assert r.url.endswith("/api/v1/customers/pat%40example.com")


def test_identify_without_any_identifier_is_instrumentation_error(cio):
    with pytest.raises(InstrumentationError, match="userId or email"):
        run(cio, {"type": "identify", "anonymousId": "only-anon", "traits": {"plan": "x"}})


def test_eu_datacenter_and_legacy_switch(cio):
    ev = {"type": "track", "userId": "u1", "event": "Signed Up"}
    assert one(cio, ev, {**CFG, "datacenter": "EU"}).url.startswith("https://track-eu.customer.io/")
    legacy = {"siteID": "site-abc", "apiKey": "key-xyz", "datacenterEU": True}
    assert one(cio, ev, legacy).url.startswith("https://track-eu.customer.io/")
    assert one(cio, ev).url.startswith("https://track.customer.io/")


def test_track_known_and_anonymous(cio):
    known = one(
        cio,
        {
            "type": "track",
            "userId": 991,
            "event": "Quote Sent",
            "properties": {"total": 20},
            "originalTimestamp": "2024-02-02T02:02:02Z",
        },
    )
    assert known.url == "https://track.customer.io/api/v1/customers/991/events"
    assert known.json_body == {
        "name": "Quote Sent",
        "type": "event",
        "data": {"total": 20},
        "timestamp": 1706839322,
    }
    anon = one(cio, {"type": "track", "userId": "", "anonymousId": "anon-q", "event": "x" * 150})
    assert anon.url == "https://track.customer.io/api/v1/events"
    assert anon.json_body["anonymous_id"] == "anon-q"
    assert anon.json_body["name"] == "x" * 100


def test_track_with_no_identity_is_instrumentation_error(cio):
    with pytest.raises(InstrumentationError):
        run(cio, {"type": "track", "event": "Lost"})


def test_page_and_screen_names(cio):
    page = one(cio, {"type": "page", "userId": "u1", "properties": {"url": "https://ex.com/a"}})
    assert page.json_body["name"] == "https://ex.com/a" and page.json_body["type"] == "page"
    screen = one(cio, {"type": "screen", "anonymousId": "a9", "event": "y" * 120})
    assert screen.json_body["type"] == "event"
    assert screen.json_body["name"] == "Viewed " + "y" * 86 + " Screen"
    assert len(screen.json_body["name"]) == 100


def test_device_registration_and_deletion(cio):
    ctx = {"device": {"token": "tok/1", "type": "iPadOS"}}
    add = one(
        cio,
        {
            "type": "track",
            "userId": "u1",
            "event": "Application Opened",
            "context": ctx,
            "timestamp": "2024-01-01T00:00:00Z",
            "properties": {"build": 7},
        },
    )
    assert (add.method, add.url) == ("PUT", "https://track.customer.io/api/v1/customers/u1/devices")
    assert add.json_body == {
        "device": {"build": 7, "id": "tok/1", "platform": "ios", "last_used": 1704067200},
    }
    gone = one(cio, {"type": "track", "userId": "u1", "event": "Application Uninstalled", "context": ctx})
    assert (gone.method, gone.url) == (
        "DELETE",
        "https://track.customer.io/api/v1/customers/u1/devices/tok%2F1",
    )
    assert gone.json_body is None
    with pytest.raises(InstrumentationError, match="device.token"):
        run(cio, {"type": "track", "anonymousId": "a", "event": "Application Uninstalled", "context": ctx})


def test_custom_token_event_and_anonymous_install(cio):
    cfg = {**CFG, "deviceTokenEventName": "Token Saved"}
    ctx = {"device": {"token": "t2", "type": "android"}}
    add = one(cio, {"type": "track", "userId": "u2", "event": "Token Saved", "context": ctx}, cfg)
    assert add.url.endswith("/customers/u2/devices")
    # Anonymous installs cannot own a device: they are tracked as anonymous events instead.
    anon = one(cio, {"type": "track", "anonymousId": "a2", "event": "Application Installed", "context": ctx})
    assert anon.url.endswith("/api/v1/events") and anon.json_body["name"] == "Application Installed"


def test_group_object_relationship(cio):
    r = one(
        cio,
        {
            "type": "group",
            "userId": "sam@example.io",
            "groupId": 42,
            "traits": {"name": "Acme", "action": "add_relationships", "objectTypeId": 3},
        },
    )
    assert r.url == "https://track.customer.io/api/v2/batch"
    assert r.json_body == {
        "type": "object",
        "action": "add_relationships",
        "identifiers": {"object_id": "42", "object_type_id": "3"},
        "attributes": {"name": "Acme"},
        "cio_relationships": [{"identifiers": {"email": "sam@example.io"}}],
    }
    with pytest.raises(InstrumentationError, match="groupId"):
        run(cio, {"type": "group", "userId": "u1", "traits": {}})


def test_alias_merge(cio):
    r = one(cio, {"type": "alias", "userId": "new-1", "previousId": "old@example.com"})
    assert r.url == "https://track.customer.io/api/v1/merge_customers"
    assert r.json_body == {"primary": {"id": "new-1"}, "secondary": {"email": "old@example.com"}}


def test_config_errors(cio):
    with pytest.raises(ConfigurationError, match="apiKey"):
        run(cio, {"type": "track", "userId": "u", "event": "e"}, {"siteID": "s"})


def test_unknown_event_type_is_unsupported(cio):
    with pytest.raises(UnsupportedEventError):
        run(cio, {"type": "record", "userId": "u"})


def test_batch_hook_wraps_v2_objects_and_keeps_v1_single(cio):
    reqs = [
        one(cio, {"type": "group", "userId": "u1", "groupId": "g1"}),
        one(cio, {"type": "track", "userId": "u1", "event": "e"}),
        one(cio, {"type": "group", "userId": "u2", "groupId": "g2"}),
    ]
    out = cio.batch(reqs, CFG)
    assert [idx for idx, _ in out] == [[0, 2], [1]]
    merged = out[0][1]
    assert [item["identifiers"]["object_id"] for item in merged.json_body["batch"]] == ["g1", "g2"]
    assert out[1][1].json_body == reqs[1].json_body


def test_router_path_wraps_a_lone_object_operation_read_back_from_the_queue(cio):
    """Regression: batching was off in the spec, so the router (which only calls `batch` when batching
    is enabled) sent v2 object operations without their {"batch": [...]} envelope."""
    assert cio.spec.batching.enabled
    stored = VendorRequest.from_wire(one(cio, {"type": "group", "userId": "u1", "groupId": "g1"}).to_wire())
    [(idx, sent)] = cio.batch([stored], CFG)
    assert idx == [0]
    assert sent.json_body["batch"][0]["identifiers"]["object_id"] == "g1"


def test_vendor_answers_are_classified(cio):
    assert cio.classify(200, {}, b"{}").outcome == "success"
    assert cio.classify(401, {}, b'{"meta":{"error":"Unauthorized"}}').outcome == "abort"
    assert cio.classify(429, {"Retry-After": "3"}, b"").outcome == "throttle"
    assert cio.classify(503, {}, b"").outcome == "retry"


@FUZZ_SETTINGS
@given(st.sampled_from(EVENT_TYPES).flatmap(events))
def test_hostile_events_give_requests_or_typed_errors(event):
    cio = load_connector("customerio")
    try:
        first = [r.to_wire() for r in run(cio, event)]
    except SluiceError:
        return
    assert first == [r.to_wire() for r in run(cio, event)]
    for wire in first:
        assert wire["url"].startswith("https://")
        json.dumps(wire, allow_nan=False)


def test_reverse_etl_identifier_from_external_id(cio):
    ev = {
        "type": "identify",
        "traits": {"tier": "gold"},
        "context": {
            "mappedToDestination": True,
            "externalId": [
                {"id": "row@example.org", "identifierType": "email", "type": "CUSTOMERIO-customers"}
            ],
        },
    }
    r = one(cio, ev)
    assert r.url.endswith("/api/v1/customers/row%40example.org")
    assert r.json_body == {"tier": "gold", "email": "row@example.org"}
    ev["context"]["externalId"][0].update({"id": "row-17", "identifierType": "userId"})
    r = one(cio, ev)
    assert r.url.endswith("/api/v1/customers/row-17") and r.json_body == {"tier": "gold"}
