"""Amplitude mapping: hand-written events, asserting the behaviour users depend on."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, UnsupportedEventError
from sdk.registry import load_connector

CFG = {"apiKey": "test-api-key-amplitude"}
CTX = TransformContext.at("2024-05-01T12:00:00Z", seed="t")


@pytest.fixture(scope="module")
def am():
    return load_connector("am")


def one_event(req):
    body = req.json_body
    assert body["api_key"] == CFG["apiKey"]
    assert body["options"] == {"min_id_length": 1}
    [ev] = body["events"]
    return ev


def test_lookup_by_peer_type_and_rudder_type(am):
    assert load_connector("AM") is am
    assert load_connector("amplitude") is am


def test_track_core_fields(am):
    event = {
        "type": "track",
        "event": "Glaze Mixed",
        "userId": "u-100",
        "anonymousId": "a-100",
        "messageId": "m-1",
        "timestamp": "2024-03-02T10:00:00.500Z",
        "session_id": "user:1709373600000",
        "context": {"locale": "fr-FR", "ip": "192.0.2.5", "app": {"name": "Pottery", "version": "2.0"}},
        "properties": {"glaze": "celadon"},
    }
    [req] = am.transform(event, CFG, CTX)
    assert req.url == "https://api2.amplitude.com/2/httpapi"
    ev = one_event(req)
    assert ev["event_type"] == "Glaze Mixed"
    assert ev["user_id"] == "u-100" and ev["device_id"] == "a-100" and ev["insert_id"] == "m-1"
    assert ev["time"] == 1709373600500
    assert ev["session_id"] == 1709373600000
    assert ev["language"] == "fr-FR" and ev["ip"] == "192.0.2.5" and ev["app_name"] == "Pottery"
    assert ev["event_properties"] == {"glaze": "celadon"}
    assert ev["library"] == "rudderstack"


def test_eu_residency_moves_every_endpoint(am):
    cfg = {**CFG, "residencyServer": "EU"}
    [req] = am.transform({"type": "page", "name": "Home", "userId": "u-1"}, cfg, CTX)
    assert req.url == "https://api.eu.amplitude.com/2/httpapi"
    [alias] = am.transform({"type": "alias", "userId": "u-2", "previousId": "u-1"}, cfg, CTX)
    assert alias.url == "https://api.eu.amplitude.com/usermap"


def test_non_numeric_session_and_missing_time(am):
    [req] = am.transform({"type": "track", "event": "e", "userId": "u-1", "session_id": "abc-def"}, CFG, CTX)
    ev = one_event(req)
    assert ev["session_id"] == -1
    assert ev["time"] == 0


def test_web_user_agent_becomes_browser_and_model(am):
    ua = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 13_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1 Safari/605.1.15"
    )
    event = {
        "type": "screen",
        "name": "Cart",
        "anonymousId": "a-9",
        "channel": "web",
        "context": {"userAgent": ua},
    }
    ev = one_event(am.transform(event, CFG, CTX)[0])
    assert (ev["platform"], ev["os_name"], ev["os_version"], ev["device_model"]) == (
        "Web",
        "Safari",
        "17.1",
        "Mac",
    )
    assert ev["event_type"] == "Viewed Cart Screen"
    assert ev["event_properties"] == {"name": "Cart"}


def test_revenue_moves_to_top_level_and_products_fan_out(am):
    event = {
        "type": "track",
        "event": "Order Completed",
        "userId": "u-5",
        "messageId": "ord-5",
        "properties": {
            "revenue": 30,
            "currency": "USD",
            "products": [{"product_id": "p1", "price": 10, "quantity": 3, "name": "Tile"}],
        },
    }
    order, product = am.transform(event, {**CFG, "trackProductsOnce": False}, CTX)
    ev = one_event(order)
    assert (ev["revenue"], ev["price"], ev["quantity"], ev["revenueType"]) == (30, 30, 1, "Purchased")
    assert ev["event_properties"] == {"currency": "USD"}
    pe = one_event(product)
    assert pe["event_type"] == "Product Purchased" and pe["insert_id"] == "ord-5-1"
    assert pe["event_properties"] == {"product_id": "p1", "price": 10, "quantity": 3, "name": "Tile"}
    assert "revenue" not in pe

    order, product = am.transform(event, {**CFG, "trackRevenuePerProduct": True}, CTX)
    # Revenue is reported per product, so the order keeps its total as a plain property.
    assert "revenue" not in one_event(order)
    assert one_event(order)["event_properties"] == {"revenue": 30, "currency": "USD"}
    pe = one_event(product)
    assert (pe["price"], pe["quantity"], pe["productId"]) == (10, 3, "p1")
    assert pe["event_properties"] == {"name": "Tile"}


def test_identify_trait_operations_and_reserved_traits(am):
    cfg = {**CFG, "traitsToIncrement": [{"traits": "visits"}], "traitsToPrepend": [{"traits": "tags"}]}
    event = {
        "type": "identify",
        "userId": "u-7",
        "traits": {
            "visits": 2,
            "tags": "vip",
            "city": "Oslo",
            "address": {"country": "Norway", "zip": "0150"},
        },
        "integrations": {"Amplitude": {"fieldsToUnset": ["old"]}},
    }
    ev = one_event(am.transform(event, cfg, CTX)[0])
    assert ev["event_type"] == "$identify"
    assert ev["city"] == "Oslo" and ev["country"] == "Norway"
    assert ev["user_properties"] == {
        "zip": "0150",
        "$add": {"visits": 2},
        "$prepend": {"tags": "vip"},
        "$unset": {"old": "-"},
    }


def test_group_sends_identify_then_group_identify_form(am):
    cfg = {**CFG, "groupTypeTrait": "plan_kind", "groupValueTrait": "plan_name"}
    event = {
        "type": "group",
        "userId": "u-8",
        "traits": {"plan_kind": "plan", "plan_name": "Pro", "seats": 4},
    }
    ident, group = am.transform(event, cfg, CTX)
    assert one_event(ident)["groups"] == {"plan": "Pro"}
    assert group.url == "https://api2.amplitude.com/groupidentify" and group.form is not None
    payload = json.loads(group.form["identification"][0])
    assert payload == {"group_type": "plan", "group_value": "Pro", "group_properties": event["traits"]}
    # On the wire the JSON object is one plain form field, which is what Amplitude parses.
    wire = parse_qs(group.body_bytes().decode())
    assert json.loads(wire["identification"][0])["group_value"] == "Pro"
    assert wire["api_key"] == [CFG["apiKey"]]


def test_alias_usermap_and_unmap(am):
    [req] = am.transform({"type": "alias", "userId": "new", "previousId": "old"}, CFG, CTX)
    assert json.loads(req.form["mapping"][0]) == {"global_user_id": "new", "user_id": "old"}
    event = {"type": "alias", "previousId": "old", "integrations": {"Amplitude": {"unmap": True}}}
    [req] = am.transform(event, CFG, CTX)
    assert json.loads(req.form["mapping"][0]) == {"user_id": "old", "unmap": True}


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"type": "track", "userId": "u"}, InstrumentationError),  # no event name
        ({"type": "track", "event": "x"}, InstrumentationError),  # neither user_id nor device_id
        ({"type": "group", "userId": "u"}, InstrumentationError),  # no group type/value anywhere
        ({"type": "alias", "userId": "u"}, InstrumentationError),  # no previousId
        ({"type": "bogus", "userId": "u"}, UnsupportedEventError),
    ],
)
def test_typed_errors(am, event, error):
    with pytest.raises(error):
        am.transform(event, CFG, CTX)


def test_missing_api_key_is_configuration_error(am):
    with pytest.raises(ConfigurationError):
        am.transform({"type": "track", "event": "x", "userId": "u"}, {}, CTX)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "track", "event": "x", "userId": "u", "properties": "not-an-object", "context": None},
        {"type": "identify", "userId": "u", "traits": None, "context": {"traits": ["a"], "campaign": "x"}},
        {"type": "page", "anonymousId": "a", "properties": [1, 2], "name": {"nested": True}},
        {"type": "track", "event": "x", "userId": "u", "properties": {"products": "none", "revenue": None}},
        {"type": "screen", "userId": "\u2603\u0000", "channel": "web", "context": {"userAgent": 42}},
    ],
)
def test_odd_shapes_give_requests_or_typed_errors(am, event):
    try:
        reqs = am.transform(event, CFG, CTX)
    except InstrumentationError:
        return
    for r in reqs:
        assert r.url.startswith("https://")
        json.dumps(r.to_wire())
    assert [r.to_wire() for r in reqs] == [r.to_wire() for r in am.transform(event, CFG, CTX)]


def test_merged_events_go_to_batch_api_and_forms_stay_apart(am):
    reqs = []
    for i in range(3):
        reqs += am.transform({"type": "track", "event": f"e{i}", "userId": "u-1"}, CFG, CTX)
    reqs += am.transform({"type": "alias", "userId": "u-2", "previousId": "u-1"}, CFG, CTX)
    batches = am.batch(reqs, CFG)
    assert [idx for idx, _ in batches] == [[0, 1, 2], [3]]
    merged = batches[0][1]
    assert merged.url == "https://api2.amplitude.com/batch"
    assert [e["event_type"] for e in merged.json_body["events"]] == ["e0", "e1", "e2"]
    assert batches[1][1].url == "https://api2.amplitude.com/usermap"
    [single] = am.batch(reqs[:1], CFG)
    assert single[1].url == "https://api2.amplitude.com/2/httpapi"


def test_per_user_throttling_is_retried_but_project_throttling_backs_off(am):
    per_user = b'{"code":429,"error":"Too many requests","eps_threshold":30,"throttled_users":{"u-1":40}}'
    assert am.classify(429, {"Retry-After": "30"}, per_user).outcome == "retry"
    project = b'{"code":429,"error":"Rate limit exceeded","throttled_users":{},"throttled_events":[]}'
    c = am.classify(429, {"Retry-After": "60"}, project)
    assert c.outcome == "throttle" and c.retry_after == 60.0
    assert am.classify(400, {}, b'{"code":400,"error":"Invalid id length"}').outcome == "abort"


# -- settings and options, expectations from RudderStack's Amplitude docs and Amplitude's API docs --------
def test_custom_page_and_screen_names_from_settings(am):
    """Setup guide: "Use custom page/screen event name" with a format whose {{ }} read the event payload."""
    page = {"type": "page", "userId": "u-1", "name": "Pricing", "properties": {"title": "Plans"}}
    cfg = {**CFG, "useUserDefinedPageEventName": True}
    cfg["userProvidedPageEventString"] = "Saw {{ properties.title }}"
    assert one_event(am.transform(page, cfg, CTX)[0])["event_type"] == "Saw Plans"
    # Off, or an empty format: the default "Viewed <name> Page".
    off = {**cfg, "useUserDefinedPageEventName": False}
    assert one_event(am.transform(page, off, CTX)[0])["event_type"] == "Viewed Pricing Page"
    empty = {**cfg, "userProvidedPageEventString": ""}
    assert one_event(am.transform(page, empty, CTX)[0])["event_type"] == "Viewed Pricing Page"
    screen = {"type": "screen", "userId": "u-1", "event": "Cart"}
    cfg = {**CFG, "useUserDefinedScreenEventName": True, "userProvidedScreenEventString": "App: {{ event }}"}
    ev = one_event(am.transform(screen, cfg, CTX)[0])
    assert ev["event_type"] == "App: Cart" and ev["event_properties"] == {"name": "Cart"}


def test_page_name_template_cannot_read_settings(am):
    """A user's template is sandboxed: it reads only the event, so it cannot copy the API key into data."""
    template = "x{{ settings.apiKey }}"
    cfg = {**CFG, "useUserDefinedPageEventName": True, "userProvidedPageEventString": template}
    [req] = am.transform({"type": "page", "userId": "u-1", "name": "Home"}, cfg, CTX)
    assert req.json_body["events"][0]["event_type"] == "x"


def test_group_value_must_be_text_or_number(am):
    cfg = {**CFG, "groupTypeTrait": "kind", "groupValueTrait": "name"}
    event = {"type": "group", "userId": "u-8", "traits": {"kind": "plan", "name": ["Pro"]}}
    with pytest.raises(InstrumentationError, match="Group call parameters are not valid"):
        am.transform(event, cfg, CTX)


def test_group_from_integrations_options_sends_no_group_properties(am):
    event = {
        "type": "group",
        "userId": "u-8",
        "traits": {"seats": 4},
        "integrations": {"Amplitude": {"groups": {"group_type": "org", "group_value": 42}}},
    }
    ident, group = am.transform(event, CFG, CTX)
    assert one_event(ident)["groups"] == {"org": 42}
    assert json.loads(group.form["identification"][0]) == {"group_type": "org", "group_value": 42}


def test_fields_to_unset_are_not_also_set(am):
    """Cloud-mode docs: fieldsToUnset deletes those user properties (so they are not sent as values)."""
    event = {
        "type": "identify",
        "userId": "u-3",
        "context": {"traits": {"firstName": "Alex", "lastName": "Keener", "plan": "pro"}},
        "integrations": {"Amplitude": {"fieldsToUnset": ["firstName", "lastName"]}},
    }
    props = one_event(am.transform(event, CFG, CTX)[0])["user_properties"]
    assert props == {"plan": "pro", "$unset": {"firstName": "-", "lastName": "-"}}


def test_trait_operations_apply_to_track_only_with_enhanced_user_operations(am):
    traits = {"logins": 4, "plan": "pro"}
    event = {"type": "track", "event": "Login", "userId": "u-3", "context": {"traits": traits}}
    cfg = {**CFG, "traitsToIncrement": [{"traits": "logins"}]}
    assert one_event(am.transform(event, cfg, CTX)[0])["user_properties"] == {"logins": 4, "plan": "pro"}
    enhanced = {**cfg, "enableEnhancedUserOperations": True}
    props = one_event(am.transform(event, enhanced, CTX)[0])["user_properties"]
    assert props == {"$add": {"logins": 4}, "plan": "pro"}


def test_opted_out_identify_has_no_session(am):
    """Cloud-mode docs: an identify with the optOutOfSession trait is kept out of the current session."""
    event = {"type": "identify", "userId": "u-4", "context": {"sessionId": 1714564800000}}
    assert one_event(am.transform(event, CFG, CTX)[0])["session_id"] == 1714564800000
    event["traits"] = {"optOutOfSession": True}
    assert one_event(am.transform(event, CFG, CTX)[0])["session_id"] == -1


def test_reverse_etl_external_ids_name_their_amplitude_fields(am):
    """Cloud-mode docs: a Visual Data Mapper identify names its id's field in externalId[].identifierType."""
    event = {
        "type": "identify",
        "anonymousId": "anon-1",
        "context": {
            "mappedToDestination": True,
            "externalId": [{"identifierType": "user_id", "id": "crm-7", "type": "AM-users"}],
        },
        "traits": {"plan": "pro"},
    }
    ev = one_event(am.transform(event, CFG, CTX)[0])
    assert ev["user_id"] == "crm-7" and ev["device_id"] == "anon-1"
    assert ev["user_properties"] == {"plan": "pro", "user_id": "crm-7"}


def test_products_once_with_revenue_per_product(am):
    """Products stay on the order (trackProductsOnce) and each product also reports its own revenue."""
    event = {
        "type": "track",
        "event": "Order Completed",
        "userId": "u-5",
        "messageId": "ord-6",
        "properties": {"revenue": 30, "products": [{"product_id": "p1", "price": 10, "quantity": 3}]},
    }
    cfg = {**CFG, "trackProductsOnce": True, "trackRevenuePerProduct": True}
    order, product = am.transform(event, cfg, CTX)
    assert one_event(order)["event_properties"] == event["properties"]
    assert "revenue" not in one_event(order)
    pe = one_event(product)
    assert (pe["event_type"], pe["insert_id"]) == ("Product Purchased", "ord-6-1")
    assert (pe["price"], pe["quantity"], pe["productId"]) == (10, 3, "p1")


def test_map_device_brand_and_platform_ids(am):
    event = {
        "type": "track",
        "event": "Open",
        "userId": "u-6",
        "context": {"device": {"type": "Android", "brand": "Pixel", "manufacturer": "Google",
                               "advertisingId": "ad-1"}},
    }  # fmt: skip
    ev = one_event(am.transform(event, {**CFG, "mapDeviceBrand": True}, CTX)[0])
    assert (ev["device_brand"], ev["device_manufacturer"], ev["adid"]) == ("Pixel", "Google", "ad-1")
    assert "device_brand" not in one_event(am.transform(event, CFG, CTX)[0])


def test_device_mode_settings_of_rudderstack_configs_are_accepted_without_effect(am):
    cfg = {
        **CFG,
        "useAdvertisingIdForDeviceId": {"android": True},
        "trackAllPages": True,
        "eventUploadThreshold": {"web": "30"},
        "versionName": "1.2.3",
    }
    assert am.config_warnings(cfg) == []
    event = {"type": "page", "anonymousId": "a-1", "name": "Home",
             "context": {"device": {"advertisingId": "ad-2", "type": "android"}}}  # fmt: skip
    ev = one_event(am.transform(event, cfg, CTX)[0])
    assert ev["device_id"] == "a-1" and ev["event_type"] == "Viewed Home Page"
