"""GA4 mapping: event table, parameter flattening, items, ids per client type, reserved names, typed errors.

All events here are hand-written for these tests.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdk.context import TransformContext
from sdk.errors import (
    ConfigurationError,
    EventDropped,
    InstrumentationError,
    SluiceError,
    UnsupportedEventError,
)
from sdk.registry import load_connector
from sdk.request import VendorRequest
from sdk.testing.strategies import EVENT_TYPES, FUZZ_SETTINGS, events

NOW = "2024-05-01T12:00:00Z"
GTAG = {"apiSecret": "secret-g", "measurementId": "G-UNIT1", "typesOfClient": "gtag"}
FIREBASE = {"apiSecret": "secret-f", "firebaseAppId": "1:1:ios:unit", "typesOfClient": "firebase"}


@pytest.fixture(scope="module")
def ga4():
    return load_connector("ga4")


def one(ga4, event, config=None, now=NOW) -> VendorRequest:
    reqs = ga4.transform(event, config or GTAG, TransformContext.at(now))
    assert len(reqs) == 1
    return reqs[0]


def ev(**kw):
    base = {"type": "track", "anonymousId": "anon-1", "timestamp": "2024-05-01T11:00:00Z"}
    base.update(kw)
    return base


def the_event(req: VendorRequest) -> dict:
    assert len(req.json_body["events"]) == 1
    return req.json_body["events"][0]


def test_lookup_by_peer_type_name_and_rudder_type():
    assert load_connector("ga4").name == "ga4"
    assert load_connector("GA4").name == "ga4"
    assert load_connector("Google Analytics 4").name == "ga4"


def test_gtag_envelope_endpoint_and_params(ga4):
    r = one(ga4, ev(event="Lesson Finished", userId="pupil-3", properties={"lesson": 4}))
    assert r.method == "POST"
    assert r.url == "https://www.google-analytics.com/mp/collect"
    assert r.params == {"api_secret": "secret-g", "measurement_id": "G-UNIT1"}
    assert r.json_body["client_id"] == "anon-1"
    assert r.json_body["user_id"] == "pupil-3"
    assert r.json_body["timestamp_micros"] == 1714561200000000
    assert the_event(r) == {"name": "Lesson_Finished", "params": {"engagement_time_msec": 1, "lesson": 4}}


def test_debug_mode_uses_validation_server(ga4):
    r = one(ga4, ev(event="tutorial_begin"), {**GTAG, "debugMode": True})
    assert r.url == "https://www.google-analytics.com/debug/mp/collect"


def test_firebase_uses_app_instance_id_and_app_id(ga4):
    ext = [{"type": "ga4AppInstanceId", "id": "inst-9"}]
    r = one(ga4, ev(event="level_start", context={"externalId": ext}), FIREBASE)
    assert r.params == {"api_secret": "secret-f", "firebase_app_id": "1:1:ios:unit"}
    assert r.json_body["app_instance_id"] == "inst-9"
    assert "client_id" not in r.json_body


def test_firebase_without_app_instance_id_is_an_instrumentation_error(ga4):
    with pytest.raises(InstrumentationError, match="ga4AppInstanceId"):
        one(ga4, ev(event="level_start"), FIREBASE)


def test_client_id_prefers_external_ga4_client_id(ga4):
    r = one(ga4, ev(event="x", context={"externalId": [{"type": "ga4ClientId", "id": "111.222"}]}))
    assert r.json_body["client_id"] == "111.222"


def test_missing_measurement_id_is_a_configuration_error(ga4):
    with pytest.raises(ConfigurationError, match="measurementId"):
        one(ga4, ev(event="x"), {"apiSecret": "s", "measurementId": None})


def test_order_completed_maps_to_purchase_with_items(ga4):
    r = one(
        ga4,
        ev(
            event="order completed",
            properties={
                "order_id": "o-1",
                "total": "20.50",
                "revenue": 18,
                "coupon": "WELCOME",
                "note": {"gift": True},
                "products": [
                    {
                        "product_id": "p-1",
                        "name": "Kettle",
                        "price": "10.25",
                        "quantity": "2",
                        "position": 3,
                        "finish": ["steel", "matte"],
                    }
                ],
            },
        ),
    )
    e = the_event(r)
    assert e["name"] == "purchase"
    p = e["params"]
    assert p["transaction_id"] == "o-1" and p["value"] == 20.5
    assert "revenue" not in p and "order_id" not in p and "total" not in p
    assert p["coupon"] == "WELCOME" and p["note_gift"] is True
    assert p["items"] == [
        {
            "item_id": "p-1",
            "item_name": "Kettle",
            "price": 10.25,
            "quantity": 2,
            "index": 3,
            "finish_0": "steel",
            "finish_1": "matte",
        }
    ]


def test_product_added_at_root_builds_one_item_and_value(ga4):
    r = one(
        ga4,
        ev(
            event="Product Added",
            properties={
                "product_id": "p-2",
                "price": 4,
                "quantity": 3,
                "currency": "EUR",
                "source_screen": "home",
            },
        ),
    )
    p = the_event(r)["params"]
    assert p["value"] == 12
    assert p["currency"] == "EUR" and p["source_screen"] == "home"
    assert "product_id" not in p and "price" not in p
    assert p["items"] == [{"item_id": "p-2", "price": 4, "quantity": 3, "currency": "EUR"}]


def test_product_without_id_or_name_is_refused(ga4):
    with pytest.raises(InstrumentationError, match="product_id or name"):
        one(ga4, ev(event="Product Viewed", properties={"price": 3}))


def test_reserved_names_are_refused_or_dropped(ga4):
    with pytest.raises(InstrumentationError, match="reserved"):
        one(ga4, ev(event="first_visit"))
    with pytest.raises(InstrumentationError, match="reserved prefix"):
        one(ga4, ev(event="ga_custom"))
    r = one(
        ga4,
        ev(
            event="ok",
            properties={
                "firebase_conversion": 1,
                "google_x": 2,
                "kept": 3,
                "user_properties": {"user_id": "u", "tier": "gold"},
            },
        ),
    )
    assert the_event(r)["params"] == {"engagement_time_msec": 1, "kept": 3}
    assert r.json_body["user_properties"] == {"tier": {"value": "gold"}}


def test_event_name_must_be_a_string(ga4):
    with pytest.raises(InstrumentationError, match="string"):
        one(ga4, ev(event=42))


def test_events_older_than_72_hours_are_refused(ga4):
    one(ga4, ev(event="x", timestamp="2024-04-28T12:00:00Z"))  # exactly 72 hours: still accepted
    with pytest.raises(InstrumentationError, match="72 hours"):
        one(ga4, ev(event="x", timestamp="2024-04-28T11:59:59Z"))


def test_page_view_and_group_join(ga4):
    page_ctx = {"page": {"url": "https://e.x/a", "title": "A"}}
    page = one(ga4, {"type": "page", "anonymousId": "a", "context": page_ctx})
    assert the_event(page) == {
        "name": "page_view",
        "params": {"page_location": "https://e.x/a", "page_title": "A", "engagement_time_msec": 1},
    }
    grp = one(ga4, {"type": "group", "anonymousId": "a", "groupId": "g-1", "traits": {"tier": "b"}})
    assert the_event(grp) == {
        "name": "join_group",
        "params": {"group_id": "g-1", "engagement_time_msec": 1, "tier": "b"},
    }


def test_consent_and_ad_tracking(ga4):
    consents = {"ad_user_data": "denied", "ad_personalization": "??"}
    r = one(
        ga4,
        ev(
            event="x",
            context={"device": {"adTrackingEnabled": "false"}},
            integrations={"GA4": {"consents": consents}},
        ),
    )
    assert r.json_body["non_personalized_ads"] is True
    assert r.json_body["consent"] == {"ad_user_data": "DENIED"}


# -- behaviours from RudderStack's GA4 cloud-mode docs, its destination definition, Google's MP reference --


def test_client_id_order_hybrid_option_then_external_id_then_anonymous_then_message_id(ga4):
    ext = {"externalId": [{"type": "ga4ClientId", "id": "111.222"}]}
    hybrid = {"Google Analytics 4": {"clientId": "4718.1683", "sessionId": "1683", "sessionNumber": 2}}
    r = one(ga4, ev(event="x", context=ext, integrations=hybrid))
    assert r.json_body["client_id"] == "4718.1683"
    assert the_event(r)["params"] == {"engagement_time_msec": 1, "session_id": "1683", "session_number": 2}
    assert one(ga4, ev(event="x", anonymousId=None, messageId="m-1")).json_body["client_id"] == "m-1"
    with pytest.raises(InstrumentationError, match="client_id is required"):
        one(ga4, ev(event="x", anonymousId=None))


def test_user_id_falls_back_to_trait_ids(ga4):
    r = one(ga4, ev(event="x", context={"traits": {"userId": "u-7"}}))
    assert r.json_body["user_id"] == "u-7"


def test_timestamps_more_than_15_minutes_ahead_are_refused(ga4):
    one(ga4, ev(event="x", timestamp="2024-05-01T12:15:00Z"))
    with pytest.raises(InstrumentationError, match="15 minutes"):
        one(ga4, ev(event="x", timestamp="2024-05-01T12:15:01Z"))


def test_ad_tracking_switch_sets_non_personalized_ads_both_ways(ga4):
    on = one(ga4, ev(event="x", context={"device": {"adTrackingEnabled": True}}))
    assert on.json_body["non_personalized_ads"] is False
    assert "non_personalized_ads" not in one(ga4, ev(event="x")).json_body


def test_pii_properties_to_ignore_keeps_those_traits_out_of_user_properties(ga4):
    config = {**GTAG, "piiPropertiesToIgnore": [{"piiProperty": "email"}, {"piiProperty": ""}]}
    r = one(ga4, ev(event="x", context={"traits": {"email": "a@b.c", "plan": "pro"}}), config)
    assert r.json_body["user_properties"] == {"plan": {"value": "pro"}}


def test_screen_view_is_reserved_for_app_streams_only(ga4):
    assert the_event(one(ga4, ev(event="screen_view")))["name"] == "screen_view"
    ext = {"externalId": [{"type": "ga4AppInstanceId", "id": "inst-9"}]}
    with pytest.raises(InstrumentationError, match="screen_view"):
        one(ga4, ev(event="screen_view", context=ext), FIREBASE)


def test_empty_and_blank_event_names_are_refused(ga4):
    # Regression: an empty name slipped through the naming check and produced an event without a name.
    for name in ("", "   "):
        with pytest.raises(InstrumentationError, match="blank"):
            one(ga4, ev(event=name))


def test_event_names_over_40_characters_are_refused(ga4):
    assert the_event(one(ga4, ev(event="a" * 40)))["name"] == "a" * 40
    with pytest.raises(InstrumentationError, match="40 characters"):
        one(ga4, ev(event="a" * 41))


def test_hybrid_mode_leaves_web_page_views_to_gtag(ga4):
    page = {"type": "page", "anonymousId": "a", "channel": "web", "properties": {"url": "https://e.x/"}}
    with pytest.raises(EventDropped, match="hybrid"):
        one(ga4, page, {**GTAG, "connectionMode": {"web": "hybrid"}})
    assert the_event(one(ga4, page, {**GTAG, "connectionMode": {"web": "cloud"}}))["name"] == "page_view"
    server_page = {**page, "channel": "server"}
    assert the_event(one(ga4, server_page, {**GTAG, "connectionMode": "hybrid"}))["name"] == "page_view"


def test_products_are_required_for_order_completed_but_not_for_order_refunded(ga4):
    with pytest.raises(InstrumentationError, match="products is required"):
        one(ga4, ev(event="Order Completed", properties={"order_id": "o-1", "total": 5}))
    p = the_event(one(ga4, ev(event="Order Refunded", properties={"order_id": "o-1", "total": 5})))["params"]
    assert p == {"engagement_time_msec": 1, "transaction_id": "o-1", "value": 5}


def test_product_viewed_takes_value_from_price_and_keeps_other_root_keys(ga4):
    props = {"product_id": "p", "price": "9.5", "currency": "EUR", "sku": "S1", "url": "https://e.x/p"}
    p = the_event(one(ga4, ev(event="Product Viewed", properties=props)))["params"]
    assert p["value"] == 9.5 and p["currency"] == "EUR"
    assert p["sku"] == "S1" and p["url"] == "https://e.x/p"
    assert p["items"] == [{"item_id": "p", "price": 9.5, "currency": "EUR"}]


def test_checkout_step_completed_is_add_shipping_info(ga4):
    props = {"shipping_method": "UPS", "total": 3, "currency": "USD"}
    e = the_event(one(ga4, ev(event="Checkout Step Completed", properties=props)))
    assert e == {
        "name": "add_shipping_info",
        "params": {"engagement_time_msec": 1, "shipping_tier": "UPS", "value": 3, "currency": "USD"},
    }


def test_promotion_and_share_property_renames(ga4):
    promo = {"creative": "Banner", "position": "top", "name": "Summer", "promotion_id": "P1"}
    p = the_event(one(ga4, ev(event="Promotion Clicked", properties=promo)))["params"]
    assert p == {
        "engagement_time_msec": 1,
        "creative_name": "Banner",
        "creative_slot": "top",
        "promotion_name": "Summer",
        "promotion_id": "P1",
    }
    share = {"share_via": "email", "sku": "S-9", "content_type": "product"}
    e = the_event(one(ga4, ev(event="Product Shared", properties=share)))
    assert e == {
        "name": "share",
        "params": {"engagement_time_msec": 1, "method": "email", "item_id": "S-9", "content_type": "product"},
    }


def test_group_session_and_engagement_come_from_traits(ga4):
    grp = {
        "type": "group",
        "anonymousId": "a",
        "groupId": "g-1",
        "traits": {"name": "Acme", "sessionId": 77, "engagementTimeMsec": 5},
    }
    assert the_event(one(ga4, grp)) == {
        "name": "join_group",
        "params": {"group_id": "g-1", "name": "Acme", "session_id": 77, "engagement_time_msec": 5},
    }


def test_device_mode_settings_are_accepted_and_misspelt_ones_refused(ga4):
    device = {
        "capturePageView": "rs",
        "debugView": True,
        "overrideClientAndSessionId": False,
        "extendPageViewParams": False,
        "sdkBaseUrl": "https://www.googletagmanager.com",
        "useNativeSDK": False,
    }
    assert ga4.config_warnings({**GTAG, **device}) == []
    with pytest.raises(ConfigurationError, match="measurementId"):
        one(ga4, ev(event="x"), {"apiSecret": "s", "measurementID": "G-1"})


def test_unsupported_type(ga4):
    with pytest.raises(UnsupportedEventError):
        one(ga4, {"type": "identify", "userId": "u"})


def test_validation_server_messages_abort(ga4):
    body = json.dumps({"validationMessages": [{"fieldPath": "events", "validationCode": "NAME_INVALID"}]})
    assert ga4.classify(200, {}, body).outcome == "abort"
    assert ga4.classify(200, {}, '{"validationMessages": []}').outcome == "success"
    assert ga4.classify(204, {}, "").outcome == "success"


@FUZZ_SETTINGS
@given(
    st.sampled_from(EVENT_TYPES).flatmap(events),
    st.sampled_from([GTAG, FIREBASE, {**GTAG, "debugMode": True}]),
)
def test_hostile_events_give_requests_or_typed_errors(event, config):
    ga4 = load_connector("ga4")
    try:
        first = [r.to_wire() for r in one_or_more(ga4, event, config)]
    except SluiceError:
        return
    assert first == [r.to_wire() for r in one_or_more(ga4, event, config)]
    for wire in first:
        assert wire["url"].startswith("https://")
        json.dumps(wire, allow_nan=False)


def one_or_more(ga4, event, config):
    return ga4.transform(event, config, TransformContext.at("2024-05-01T12:00:01Z"))
