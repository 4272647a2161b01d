"""Braze mapping: identity, attribute renames, purchases, regional hosts, batching and typed errors.

Events here are written for these tests (not taken from any other system's cases).
"""

from __future__ import annotations

import pytest

from sdk.classify import Outcome
from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, UnsupportedEventError
from sdk.registry import load_connector

NOW = "2024-05-01T12:00:00Z"
KEY = "test-rest-api-key-braze"


@pytest.fixture(scope="module")
def braze():
    return load_connector("braze")


def run(connector, event, **settings):
    config = {"restApiKey": KEY, "dataCenter": "US-03", **settings}
    return connector.transform(event, config, TransformContext.at(NOW, seed=str(event.get("messageId", ""))))


def test_lookup_by_peer_names(braze):
    assert load_connector("BRAZE").name == "braze"
    assert braze.spec.rudder_type == "BRAZE"


@pytest.mark.parametrize(
    ("data_center", "host"),
    [
        ("US-03", "rest.iad-03.braze.com"),
        ("us-01", "rest.iad-01.braze.com"),
        ("EU-01", "rest.fra-01.braze.eu"),
        ("au-01", "rest.au-01.braze.com"),
    ],
)
def test_data_center_picks_rest_host(braze, data_center, host):
    ev = {"type": "track", "userId": "u-1", "event": "Opened Box"}
    [req] = run(braze, ev, dataCenter=data_center)
    assert req.url == f"https://{host}/users/track"
    assert req.headers["Authorization"] == f"Bearer {KEY}"


def test_unknown_data_center_is_a_configuration_error(braze):
    with pytest.raises(ConfigurationError, match="dataCenter"):
        run(braze, {"type": "track", "userId": "u-1", "event": "x"}, dataCenter="mars-01")


def test_identify_renames_reserved_traits_and_keeps_custom_ones(braze):
    ev = {
        "type": "identify",
        "userId": "u-42",
        "context": {
            "traits": {
                "firstName": "Ada",
                "email": "ADA@Example.com",
                "gender": "Woman",
                "address": {"city": "Leeds", "country": "GB"},
                "avatar": "https://img/a.png",
                "tier": "gold",
                "cancelled_at": None,
            }
        },
    }
    [req] = run(braze, ev)
    [attrs] = req.json_body["attributes"]
    assert attrs == {
        "external_id": "u-42",
        "first_name": "Ada",
        "email": "ada@example.com",
        "gender": "F",
        "home_city": "Leeds",
        "country": "GB",
        "image_url": "https://img/a.png",
        "tier": "gold",
        "cancelled_at": None,
    }


def test_identify_with_anonymous_id_merges_alias_profile_first(braze):
    ev = {
        "type": "identify",
        "userId": "u-9",
        "anonymousId": "anon-9",
        "context": {"traits": {"plan": "pro"}},
    }
    first, second = run(braze, ev)
    assert first.url.endswith("/users/identify")
    assert first.json_body == {
        "aliases_to_identify": [
            {"external_id": "u-9", "user_alias": {"alias_label": "rudder_id", "alias_name": "anon-9"}}
        ]
    }
    assert second.url.endswith("/users/track")


def test_anonymous_track_uses_alias_and_allows_profile_creation(braze):
    ev = {
        "type": "track",
        "anonymousId": "anon-3",
        "event": "Viewed Tip",
        "timestamp": "2024-04-01T10:00:00+02:00",
    }
    [req] = run(braze, ev)
    [event] = req.json_body["events"]
    assert event["user_alias"] == {"alias_label": "rudder_id", "alias_name": "anon-3"}
    assert event["_update_existing_only"] is False
    assert event["time"] == "2024-04-01T10:00:00+02:00"
    assert "external_id" not in event


def test_identify_without_traits_is_rejected(braze):
    with pytest.raises(InstrumentationError, match="No attributes"):
        run(braze, {"type": "identify", "userId": "u-1"})


def test_missing_user_and_anonymous_id_is_rejected(braze):
    with pytest.raises(InstrumentationError, match="userId or an anonymousId"):
        run(braze, {"type": "track", "event": "Something"})


def test_non_string_email_is_rejected(braze):
    with pytest.raises(InstrumentationError, match="email"):
        run(braze, {"type": "identify", "userId": "u-1", "context": {"traits": {"email": ["a@b.c"]}}})


def test_order_completed_becomes_one_purchase_per_product(braze):
    ev = {
        "type": "track",
        "userId": "u-5",
        "event": "Order Completed",
        "timestamp": "2024-04-02T08:00:00Z",
        "properties": {
            "currency": "GBP",
            "products": [
                {"product_id": "p1", "price": "4.50", "quantity": 2, "colour": "red"},
                {"sku": "SKU-2", "price": 10},
            ],
        },
    }
    [req] = run(braze, ev)
    body = req.json_body
    assert "events" not in body
    assert [(p["product_id"], p["price"], p["currency"]) for p in body["purchases"]] == [
        ("p1", 4.5, "GBP"),
        ("SKU-2", 10, "GBP"),
    ]
    assert "properties" not in body["purchases"][0]  # extra properties only when the setting asks
    [with_extra] = run(braze, ev, sendPurchaseEventWithExtraProperties=True)
    assert with_extra.json_body["purchases"][0]["properties"] == {"colour": "red"}


def test_more_than_75_products_split_into_several_requests(braze):
    products = [{"product_id": f"p{i}", "price": 1} for i in range(80)]
    ev = {
        "type": "track",
        "userId": "u-5",
        "event": "Order Completed",
        "properties": {"currency": "USD", "products": products},
    }
    reqs = run(braze, ev)
    assert [len(r.json_body["purchases"]) for r in reqs] == [75, 5]


def test_order_without_currency_is_rejected(braze):
    ev = {
        "type": "track",
        "userId": "u-5",
        "event": "Order Completed",
        "properties": {"products": [{"product_id": "p1", "price": 3}]},
    }
    with pytest.raises(InstrumentationError, match="currency"):
        run(braze, ev)


def test_recommended_ecommerce_event(braze):
    ev = {
        "type": "track",
        "userId": "u-5",
        "event": "Checkout Started",
        "channel": "server",
        "properties": {
            "order_id": "o-1",
            "currency": "USD",
            "revenue": 20,
            "coupon": "SPRING",
            "products": [{"product_id": "p1", "name": "Mug", "price": 20, "quantity": 1}],
        },
    }
    [req] = run(braze, ev, useEcommerceRecommendedEvents=True)
    [event] = req.json_body["events"]
    assert event["name"] == "ecommerce.checkout_started"
    props = event["properties"]
    assert props["checkout_id"] == "o-1" and props["total_value"] == 20 and props["source"] == "server"
    assert props["products"] == [
        {"product_id": "p1", "product_name": "Mug", "variant_id": "p1", "price": 20, "quantity": 1}
    ]
    assert props["metadata"] == {"coupon": "SPRING"}


def test_group_subscription_state(braze):
    ev = {
        "type": "group",
        "userId": "u-7",
        "groupId": "sg-1",
        "traits": {"subscriptionState": "subscribed", "phone": "+15550100"},
    }
    [req] = run(braze, ev, enableSubscriptionGroupInGroupCall=True)
    assert req.url.endswith("/v2/subscription/status/set")
    assert req.json_body == {
        "subscription_groups": [
            {
                "subscription_group_id": "sg-1",
                "subscription_state": "subscribed",
                "external_ids": ["u-7"],
                "phones": ["+15550100"],
            }
        ]
    }
    with pytest.raises(InstrumentationError, match="subscriptionState"):
        run(braze, {**ev, "traits": {"phone": "+15550100"}}, enableSubscriptionGroupInGroupCall=True)


def test_alias_merges_users_and_needs_previous_id(braze):
    [req] = run(braze, {"type": "alias", "userId": "new", "previousId": "old"})
    assert req.url.endswith("/users/merge")
    assert req.json_body == {
        "merge_updates": [
            {"identifier_to_keep": {"external_id": "new"}, "identifier_to_merge": {"external_id": "old"}}
        ]
    }
    with pytest.raises(InstrumentationError, match="previousId"):
        run(braze, {"type": "alias", "userId": "new"})


def test_nested_array_operations(braze):
    ev = {
        "type": "identify",
        "userId": "u-1",
        "context": {
            "traits": {
                "cars": {
                    "add": [{"id": 1, "model": "A"}],
                    "update": [{"identifier": "id", "id": 2, "model": "B"}],
                    "remove": [{"identifier": "id", "id": 3}],
                }
            }
        },
    }
    [plain] = run(braze, ev)
    assert plain.json_body["attributes"][0]["cars"]["add"] == [{"id": 1, "model": "A"}]
    [req] = run(braze, ev, enableNestedArrayOperations=True)
    assert req.json_body["attributes"][0]["cars"] == {
        "$add": [{"id": 1, "model": "A"}],
        "$update": [{"$identifier_key": "id", "$identifier_value": 2, "$new_object": {"model": "B"}}],
        "$remove": [{"$identifier_key": "id", "$identifier_value": 3}],
    }


def test_unsupported_type_is_rejected(braze):
    with pytest.raises(UnsupportedEventError):
        run(braze, {"type": "merge", "userId": "u"})


@pytest.mark.parametrize(
    "event",
    [
        {
            "type": "track",
            "userId": "u",
            "event": "E",
            "properties": "not-an-object",
            "context": {"traits": None},
        },
        {
            "type": "identify",
            "userId": {"nested": 1},
            "anonymousId": "a",
            "traits": ["x"],
            "context": {"traits": {"ünïcode ✓": "☃", "deep": {"a": {"b": {"c": [1, None]}}}}},
        },
        {"type": "page", "anonymousId": "a", "timestamp": {"bad": True}, "properties": None},
        {"type": "track", "userId": "u", "event": "Order Completed", "properties": {"products": "many"}},
        {"type": "group", "userId": "u", "traits": None},
    ],
)
def test_odd_events_give_requests_or_typed_errors(braze, event):
    try:
        reqs = run(braze, event)
    except InstrumentationError:
        return
    for r in reqs:
        assert r.url.startswith("https://")
        assert r.body_bytes()


def test_batching_merges_track_arrays_within_braze_limits(braze):
    reqs = []
    for i in range(80):
        reqs += run(
            braze, {"type": "track", "userId": f"u{i}", "event": "Tick", "context": {"traits": {"n": i}}}
        )
    batches = braze.batch(reqs, {"restApiKey": KEY, "dataCenter": "US-03"})
    assert [len(idx) for idx, _ in batches] == [75, 5]
    first = batches[0][1].json_body
    assert len(first["events"]) == 75 and len(first["attributes"]) == 75
    assert first["events"][74]["external_id"] == "u74"
    assert first["partner"] == "RudderStack"


def test_batching_keeps_endpoints_apart(braze):
    reqs = run(braze, {"type": "alias", "userId": "a", "previousId": "b"})
    reqs += run(braze, {"type": "track", "userId": "a", "event": "E"})
    reqs += run(braze, {"type": "alias", "userId": "c", "previousId": "d"})
    batches = braze.batch(reqs, {"restApiKey": KEY, "dataCenter": "US-03"})
    assert [idx for idx, _ in batches] == [[0, 2], [1]]
    assert len(batches[0][1].json_body["merge_updates"]) == 2


def test_response_classification(braze):
    assert braze.classify(201, {}, b'{"message":"success"}').outcome is Outcome.SUCCESS
    partial = b'{"message":"success","errors":[{"type":"bad","input_array":"events","index":1}]}'
    assert braze.classify(201, {}, partial).outcome is Outcome.SUCCESS
    assert braze.classify(201, {}, b'{"message":"fatal problem"}').outcome is Outcome.ABORT
    assert braze.classify(401, {}, b'{"message":"Invalid API Key"}').outcome is Outcome.ABORT
    assert braze.classify(429, {"Retry-After": "3"}, b"").outcome is Outcome.THROTTLE
    assert braze.classify(503, {}, b"").outcome is Outcome.RETRY


def test_braze_external_id_overrides_user_id(braze):
    ev = {
        "type": "track",
        "userId": "u-1",
        "event": "E",
        "context": {"externalId": [{"type": "brazeExternalId", "id": "crm-77"}]},
    }
    [req] = run(braze, ev)
    assert req.json_body["events"][0]["external_id"] == "crm-77"


def test_merge_objects_flag_only_with_nested_operations(braze):
    ev = {
        "type": "track",
        "userId": "u-1",
        "event": "E",
        "properties": {"mergeObjectsUpdateOperation": True},
        "context": {"traits": {"pet": {"name": "Rex"}}},
    }
    [plain] = run(braze, ev)
    assert "_merge_objects" not in plain.json_body["attributes"][0]
    [nested] = run(braze, ev, enableNestedArrayOperations=True)
    assert nested.json_body["attributes"][0]["_merge_objects"] is True
