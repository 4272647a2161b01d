"""Braze on spec language v2: each cloud-mode setting and documented behaviour, with expectations written
from Braze's REST API docs and RudderStack's Braze destination docs (links per test). Events here are
written for these tests."""

from __future__ import annotations

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError
from sdk.registry import load_connector

NOW = "2024-05-01T12:00:00Z"
KEY = "test-rest-api-key-braze"
ALIAS = {"alias_label": "rudder_id", "alias_name": "anon-1"}


@pytest.fixture(scope="module")
def braze():
    return load_connector("braze")


def run(connector, event, **settings):
    config = {"restApiKey": KEY, "dataCenter": "US-01", **settings}
    return connector.transform(event, config, TransformContext.at(NOW))


def track(name, properties=None, **fields):
    """A track call by the known user "u" (with properties when given)."""
    return {
        "type": "track",
        "userId": "u",
        "event": name,
        **({"properties": properties} if properties else {}),
        **fields,
    }


def body(connector, event, **settings):
    [req] = run(connector, event, **settings)
    return req.json_body


# -- settings -------------------------------------------------------------------------------------------
def test_data_center_is_trimmed_and_case_insensitive(braze):
    # https://www.braze.com/docs/user_guide/administrative/access_braze/sdk_endpoints/ (EU-02: rest.fra-02)
    [req] = run(braze, {"type": "track", "userId": "u", "event": "E"}, dataCenter=" eu-02 ")
    assert req.url == "https://rest.fra-02.braze.eu/users/track"


def test_unknown_data_center_names_the_value_and_the_instances(braze):
    with pytest.raises(ConfigurationError, match=r"'XX-99'.*US-01"):
        run(braze, {"type": "track", "userId": "u", "event": "E"}, dataCenter="XX-99")


def test_device_mode_settings_are_accepted_without_warnings(braze):
    device = {
        "appKey": "k",
        "usePlatformSpecificApiKeys": True,
        "androidApiKey": "a",
        "iOSApiKey": "i",
        "webApiKey": "w",
        "trackAnonymousUser": {"web": True},
        "enableBrazeLogging": {"web": False},
        "enablePushNotification": {"web": False},
        "allowUserSuppliedJavascript": {"web": False},
        "useNativeSDK": {"web": False},
        "connectionMode": {"web": "cloud"},
        "supportDedup": False,
    }
    _, warnings = braze.settings.check({"restApiKey": KEY, "dataCenter": "US-01", **device})
    assert warnings == []


def test_a_misspelt_setting_is_refused(braze):
    with pytest.raises(ConfigurationError, match="did you mean `enableNestedArrayOperations`"):
        run(braze, {"type": "track", "userId": "u", "event": "E"}, enableNestedArrayOperation=True)


# -- identity (https://www.rudderstack.com/docs/destinations/streaming-destinations/braze/cloud-mode/) ----
def test_braze_external_id_type_matches_in_any_case(braze):
    ev = {
        "type": "track",
        "userId": "u-1",
        "event": "E",
        "context": {
            "externalId": [{"type": "ga4ClientId", "id": "g"}, {"type": "BRAZEEXTERNALID", "id": 77}]
        },
    }
    assert body(braze, ev)["events"][0]["external_id"] == "77"


def test_integrations_alias_replaces_the_anonymous_alias(braze):
    alias = {"alias_label": "email", "alias_name": "ada@example.com"}
    ev = {"type": "track", "anonymousId": "anon-1", "event": "E", "integrations": {"Braze": {"alias": alias}}}
    event = body(braze, ev)["events"][0]
    assert event["user_alias"] == alias
    assert event["_update_existing_only"] is False


def test_identify_with_integrations_alias_merges_that_alias(braze):
    alias = {"alias_label": "email", "alias_name": "ada@example.com"}
    ev = {
        "type": "identify",
        "userId": "u-1",
        "integrations": {"BRAZE": {"alias": alias}},
        "traits": {"plan": "pro"},
    }
    merge, track = run(braze, ev)
    # https://www.braze.com/docs/api/endpoints/user_data/post_user_identify/
    assert merge.json_body == {"aliases_to_identify": [{"external_id": "u-1", "user_alias": alias}]}
    assert track.json_body == {"attributes": [{"plan": "pro", "external_id": "u-1"}]}


def test_known_user_without_anonymous_id_needs_no_merge(braze):
    [req] = run(braze, {"type": "identify", "userId": "u-1", "traits": {"plan": "pro"}})
    assert req.url.endswith("/users/track")


# -- user attributes (https://www.braze.com/docs/api/objects_filters/user_attributes_object/) ------------
def test_reserved_traits_keep_explicit_nulls_and_invent_none(braze):
    ev = {"type": "identify", "userId": "u", "traits": {"lastName": None, "gender": None, "plan": None}}
    assert body(braze, ev)["attributes"] == [
        {"last_name": None, "gender": None, "plan": None, "external_id": "u"}
    ]


def test_phone_is_sent_as_text(braze):
    ev = {"type": "identify", "userId": "u", "traits": {"phone": 447700900123}}
    assert body(braze, ev)["attributes"][0]["phone"] == "447700900123"


@pytest.mark.parametrize(
    ("given", "code"),
    [("male", "M"), (" FEMALE ", "F"), ("other", "O"), ("not applicable", "N"), ("prefer not to say", "P")],
)
def test_gender_becomes_brazes_code(braze, given, code):
    ev = {"type": "identify", "userId": "u", "traits": {"gender": given}}
    assert body(braze, ev)["attributes"][0]["gender"] == code


def test_address_country_wins_over_a_country_trait(braze):
    ev = {
        "type": "identify",
        "userId": "u",
        "traits": {"country": "FR", "address": {"country": "GB", "zip": "1"}},
    }
    assert body(braze, ev)["attributes"] == [{"country": "GB", "external_id": "u"}]


def test_an_identity_in_the_traits_never_overrides_the_user(braze):
    ev = {"type": "identify", "userId": "u", "traits": {"external_id": "someone-else", "plan": "pro"}}
    assert body(braze, ev)["attributes"] == [{"plan": "pro", "external_id": "u"}]


def test_context_traits_of_page_and_screen_become_attributes(braze):
    for etype, default_name in (("page", "Page Viewed"), ("screen", "Screen Viewed")):
        b = body(braze, {"type": etype, "userId": "u", "context": {"traits": {"plan": "pro"}}})
        assert b["attributes"] == [{"plan": "pro", "external_id": "u"}]
        assert b["events"][0]["name"] == default_name
        assert b["partner"] == "RudderStack"


# -- nested custom attributes (enableNestedArrayOperations) ------------------------------------------
# https://www.braze.com/docs/user_guide/data_and_analytics/custom_data/custom_attributes/array_of_objects/
def test_nested_update_needs_an_identifier(braze):
    ev = {"type": "identify", "userId": "u", "traits": {"pets": {"update": [{"id": 1, "name": "Rex"}]}}}
    with pytest.raises(InstrumentationError, match="identifier"):
        run(braze, ev, enableNestedArrayOperations=True)


def test_values_not_shaped_as_operations_pass_unchanged(braze):
    traits = {"tags": {"add": ["a"], "other": 1}, "scores": {"add": "x"}, "plain": [1, 2]}
    b = body(braze, {"type": "identify", "userId": "u", "traits": traits}, enableNestedArrayOperations=True)
    assert b["attributes"] == [{**traits, "external_id": "u"}]


def test_merge_objects_flag_is_sent_only_when_it_is_a_boolean(braze):
    ev = {"type": "track", "userId": "u", "event": "E", "properties": {"mergeObjectsUpdateOperation": "yes"}}
    ev["context"] = {"traits": {"pet": {"name": "Rex"}}}
    assert "_merge_objects" not in body(braze, ev, enableNestedArrayOperations=True)["attributes"][0]


# -- custom events (https://www.braze.com/docs/api/objects_filters/event_object/) ------------------------
def test_event_time_text_kept_numbers_converted_and_app_id_from_options(braze):
    ev = {"type": "track", "userId": "u", "event": "E", "timestamp": "2024-04-30T10:00:00+02:00"}
    assert body(braze, ev)["events"][0]["time"] == "2024-04-30T10:00:00+02:00"
    ev = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "timestamp": 1714564800,
        "integrations": {"braze": {"appId": 7}},
    }
    event = body(braze, ev)["events"][0]
    assert event["time"] == "2024-05-01T12:00:00.000Z"
    assert event["app_id"] == "7"
    assert body(braze, {"type": "track", "userId": "u", "event": "E"})["events"][0]["time"].startswith(
        "2024-05-01T12"
    )


def test_track_without_event_name_is_rejected(braze):
    with pytest.raises(InstrumentationError, match="event"):
        run(braze, {"type": "track", "userId": "u"})


# -- purchases (https://www.braze.com/docs/api/objects_filters/purchase_object/) ------------------------
def test_order_without_products_is_a_custom_event(braze):
    ev = {"type": "track", "userId": "u", "event": "order completed", "properties": {"products": []}}
    b = body(braze, ev)
    assert b["events"][0]["name"] == "order completed" and "purchases" not in b


def test_purchase_quantity_is_whole_and_currency_from_the_product_first(braze):
    ev = {
        "type": "track",
        "userId": "u",
        "event": "Order Completed",
        "properties": {
            "currency": "USD",
            "products": [{"sku": "S1", "price": "2.5", "quantity": "3", "currency": "EUR"}],
        },
    }
    [purchase] = body(braze, ev)["purchases"]
    assert purchase == {
        "product_id": "S1",
        "price": 2.5,
        "currency": "EUR",
        "quantity": 3,
        "time": purchase["time"],
        "external_id": "u",
    }


def test_big_order_attributes_ride_with_the_first_request_only(braze):
    products = [{"product_id": f"p{i}", "price": 1} for i in range(76)]
    ev = track(
        "Order Completed", {"currency": "USD", "products": products}, context={"traits": {"plan": "pro"}}
    )
    first, second = run(braze, ev)
    assert first.json_body["attributes"] == [{"plan": "pro", "external_id": "u"}]
    assert "attributes" not in second.json_body
    assert [p["product_id"] for p in second.json_body["purchases"]] == ["p75"]


def test_product_without_price_is_rejected_naming_it(braze):
    ev = track(
        "Order Completed",
        {"currency": "USD", "products": [{"product_id": "a", "price": 1}, {"product_id": "b"}]},
    )
    with pytest.raises(InstrumentationError, match="index: 1 is missing price"):
        run(braze, ev)


# -- recommended e-commerce events (useEcommerceRecommendedEvents) ---------------------------------------
# https://www.rudderstack.com/docs/destinations/streaming-destinations/braze/recommended-ecommerce-events/
# https://www.braze.com/docs/user_guide/data/activation/events/recommended_events/ecommerce_events/
def test_product_viewed_carries_the_product_at_the_top(braze):
    props = {"sku": "s-1", "name": "Mug", "price": 4, "url": "https://x/p", "category": "kitchen"}
    ev = track("  PRODUCT VIEWED ", props, channel="web")
    event = body(braze, ev, useEcommerceRecommendedEvents=True)["events"][0]
    assert event["name"] == "ecommerce.product_viewed"
    assert event["properties"] == {
        "product_id": "s-1",
        "product_name": "Mug",
        "variant_id": "s-1",
        "price": 4,
        "product_url": "https://x/p",
        "source": "web",
        "metadata": {"category": "kitchen"},
    }


def test_order_completed_is_one_order_placed_event_without_purchases(braze):
    product = {"product_id": "p", "price": 10, "quantity": 1, "brand": "B"}
    props = {
        "order_id": "o-1",
        "currency": "USD",
        "total": 10,
        "discount": 1,
        "source": "pos",
        "products": [product],
    }
    ev = track("Order Completed", props)
    b = body(braze, ev, useEcommerceRecommendedEvents=True)
    assert "purchases" not in b
    [event] = b["events"]
    assert event["name"] == "ecommerce.order_placed"
    assert event["properties"] == {
        "order_id": "o-1",
        "currency": "USD",
        "total_value": 10,
        "total_discounts": 1,
        "source": "pos",
        "products": [
            {"product_id": "p", "variant_id": "p", "price": 10, "quantity": 1, "metadata": {"brand": "B"}}
        ],
    }


def test_order_cancelled_carries_its_reason_and_refunded_does_not(braze):
    props = {"order_id": "o-1", "currency": "USD", "total": 5, "cancel_reason": "late", "products": []}
    cancelled = body(
        braze,
        {"type": "track", "userId": "u", "event": "Order Cancelled", "properties": props},
        useEcommerceRecommendedEvents=True,
    )
    assert cancelled["events"][0]["properties"]["cancel_reason"] == "late"
    refunded = body(
        braze,
        {"type": "track", "userId": "u", "event": "Order Refunded", "properties": props},
        useEcommerceRecommendedEvents=True,
    )
    assert refunded["events"][0]["name"] == "ecommerce.order_refunded"
    assert "cancel_reason" not in refunded["events"][0]["properties"]
    assert refunded["events"][0]["properties"]["metadata"] == {"cancel_reason": "late"}


def test_other_events_stay_custom_events_with_recommended_events_on(braze):
    b = body(
        braze, {"type": "track", "userId": "u", "event": "Coupon Applied"}, useEcommerceRecommendedEvents=True
    )
    assert b["events"][0]["name"] == "Coupon Applied"


# -- group (https://www.braze.com/docs/api/endpoints/subscription_groups/post_update_user_subscription_group_status_v2/)
def test_group_id_may_come_from_traits(braze):
    b = body(braze, {"type": "group", "userId": "u", "traits": {"groupId": 12}})
    assert b == {"attributes": [{"ab_rudder_group_12": True, "external_id": "u"}], "partner": "RudderStack"}


def test_subscription_group_entry_never_has_both_emails_and_phones(braze):
    ev = {
        "type": "group",
        "groupId": "sg",
        "traits": {"subscriptionState": "unsubscribed", "email": "a@b.c", "phone": "+15550100"},
    }
    b = body(braze, ev, enableSubscriptionGroupInGroupCall=True)
    assert b == {
        "subscription_groups": [
            {"subscription_group_id": "sg", "subscription_state": "unsubscribed", "emails": ["a@b.c"]}
        ]
    }


def test_subscription_group_needs_someone_to_update(braze):
    ev = {"type": "group", "anonymousId": "a", "groupId": "sg", "traits": {"subscriptionState": "subscribed"}}
    with pytest.raises(InstrumentationError, match="userId, traits.email or traits.phone"):
        run(braze, ev, enableSubscriptionGroupInGroupCall=True)


def test_alias_needs_the_user_id(braze):
    with pytest.raises(InstrumentationError, match="userId"):
        run(braze, {"type": "alias", "previousId": "old"})
