"""Iterable mapping: endpoint per event, token registration, page settings, commerce, reverse ETL, delivery
through the bulk endpoints and per-job attribution of bulk answers.

Events are hand-written for these tests; expectations come from Iterable's API reference (request bodies of
users/update, users/bulkUpdate, events/track, events/trackBulk, commerce/trackPurchase, commerce/updateCart,
users/registerDeviceToken, users/registerBrowserToken, users/updateEmail, catalogs/{name}/items) and from the
settings' documented meaning (RudderStack's Iterable docs).
"""

from __future__ import annotations

import json

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, UnsupportedEventError
from sdk.registry import load_connector

CFG = {"apiKey": "srv-key", "dataCenter": "USDC"}
NOW = TransformContext.at("2024-05-01T12:00:00Z")
US = "https://api.iterable.com/api/"


@pytest.fixture(scope="module")
def it():
    return load_connector("iterable")


def run(it, event, config=None):
    return it.transform(event, config or CFG, NOW)


def test_found_by_rudderstack_type():
    assert load_connector("ITERABLE").name == "iterable"


def test_identify_updates_the_user_with_settings(it):
    cfg = {**CFG, "preferUserId": False, "mergeNestedObjects": False}
    event = {
        "type": "identify",
        "userId": "u1",
        "context": {"traits": {"email": "a@x.io"}},
        "traits": {"plan": "pro"},
    }
    (r,) = run(it, event, cfg)
    assert (r.url, r.headers["api_key"]) == (US + "users/update", "srv-key")
    assert r.json_body == {
        "email": "a@x.io",
        "userId": "u1",
        "dataFields": {"email": "a@x.io", "plan": "pro"},
        "preferUserId": False,
        "mergeNestedObjects": False,
    }


def test_eu_data_center(it):
    (r,) = run(it, {"type": "track", "userId": "u", "event": "Go"}, {"apiKey": "k", "dataCenter": "EUDC"})
    assert r.url == "https://api.eu.iterable.com/api/events/track"


@pytest.mark.parametrize("device_type, platform", [("ios", "APNS"), ("iPadOS", "APNS"), ("android", "GCM")])
def test_device_tokens_register_with_the_mobile_key(it, device_type, platform):
    cfg = {**CFG, "registerDeviceOrBrowserApiKey": "mobile-key"}
    event = {
        "type": "identify",
        "userId": "u1",
        "traits": {"email": "a@x.io"},
        "context": {"device": {"type": device_type, "token": "tok"}},
    }
    _, dev = run(it, event, cfg)
    assert (dev.url, dev.headers["api_key"]) == (US + "users/registerDeviceToken", "mobile-key")
    assert dev.json_body == {
        "email": "a@x.io",
        "userId": "u1",
        "preferUserId": True,
        "device": {"token": "tok", "platform": platform},
    }


def test_web_tokens_register_as_browser_tokens_and_nothing_without_the_key(it):
    event = {
        "type": "identify",
        "userId": "u1",
        "traits": {"email": "a@x.io"},
        "context": {"device": {"token": "web-tok"}},
    }
    _, web = run(it, event, {**CFG, "registerDeviceOrBrowserApiKey": "web-key"})
    assert web.url == US + "users/registerBrowserToken"
    assert web.json_body == {"email": "a@x.io", "userId": "u1", "browserToken": "web-tok"}
    assert len(run(it, event)) == 1


def test_user_id_falls_back_to_anonymous_id_and_someone_is_needed(it):
    (r,) = run(it, {"type": "track", "anonymousId": "anon", "event": "Go"})
    assert r.json_body["userId"] == "anon"
    with pytest.raises(InstrumentationError, match="email or userId"):
        run(it, {"type": "track", "event": "Go"})


def test_track_body(it):
    event = {
        "type": "track",
        "userId": "u",
        "event": "Opened",
        "timestamp": "2024-04-30T00:00:00Z",
        "context": {"traits": {"email": "a@x.io"}},
        "properties": {"campaignId": "12", "templateId": "not-a-number", "x": 1},
    }
    (r,) = run(it, event)
    assert r.json_body == {
        "email": "a@x.io",
        "userId": "u",
        "eventName": "Opened",
        "createdAt": 1714435200000,
        "campaignId": 12,
        "dataFields": {"campaignId": "12", "templateId": "not-a-number", "x": 1},
    }


def test_track_without_a_name_is_refused(it):
    with pytest.raises(InstrumentationError, match="eventName"):
        run(it, {"type": "track", "userId": "u", "event": " "})


def test_order_completed_is_a_purchase(it):
    props = {
        "orderId": 77,
        "revenue": "9.5",
        "products": [{"sku": "S1", "name": "A", "price": "9.5", "quantity": "1", "categories": ["x", "y"]}],
    }
    (r,) = run(it, {"type": "track", "userId": "u", "event": "order completed", "properties": props})
    assert r.url == US + "commerce/trackPurchase"
    body = r.json_body
    assert (body["total"], body["id"]) == (9.5, "77")
    assert body["items"] == [
        {"id": "S1", "sku": "S1", "name": "A", "categories": ["x", "y"], "price": 9.5, "quantity": 1}
    ]
    assert body["user"] == {"userId": "u", "dataFields": {}, "preferUserId": True, "mergeNestedObjects": True}
    with pytest.raises(InstrumentationError, match="total"):
        run(it, {"type": "track", "userId": "u", "event": "Order Completed", "properties": {"products": []}})


@pytest.mark.parametrize("name", ["Product Added", "Product Removed"])
def test_cart_events_update_the_cart(it, name):
    (r,) = run(
        it,
        {
            "type": "track",
            "userId": "u",
            "event": name,
            "properties": {"product_id": "P", "name": "N", "price": 1, "quantity": 2},
        },
    )
    assert r.url == US + "commerce/updateCart"
    assert r.json_body["items"] == [{"id": "P", "name": "N", "price": 1, "quantity": 2}]


@pytest.mark.parametrize(
    "settings, event, name",
    [
        ({"mapToSingleEvent": True}, {"type": "page", "name": "Home"}, "Loaded a Page"),
        ({"mapToSingleEvent": True}, {"type": "screen", "name": "Home"}, "Loaded a Screen"),
        ({"mapToSingleEvent": False}, {"type": "page", "name": "Home"}, "Home page"),
        (
            {"mapToSingleEvent": False, "trackNamedPages": False},
            {"type": "screen", "properties": {"category": "Docs"}},
            "Docs screen",
        ),
        (
            {"mapToSingleEvent": False, "trackAllPages": True},
            {"type": "page", "category": "Docs"},
            "Docs page",
        ),
    ],
)
def test_page_and_screen_names(it, settings, event, name):
    (r,) = run(it, {"userId": "u", **event}, {**CFG, **settings})
    assert (r.url, r.json_body["eventName"]) == (US + "events/track", name)


@pytest.mark.parametrize(
    "settings",
    [
        {"trackAllPages": False, "trackCategorisedPages": False, "trackNamedPages": True},
        {"trackAllPages": False, "trackCategorisedPages": True, "trackNamedPages": False},
    ],
)
def test_pages_the_settings_do_not_take_are_refused(it, settings):
    with pytest.raises(ConfigurationError, match="Invalid page call"):
        run(it, {"type": "page", "userId": "u", "properties": {"url": "https://x.io"}}, {**CFG, **settings})


def test_alias_changes_the_email(it):
    (r,) = run(it, {"type": "alias", "previousId": "old@x.io", "userId": "new@x.io"})
    assert r.url == US + "users/updateEmail"
    assert r.json_body == {"currentEmail": "old@x.io", "newEmail": "new@x.io"}
    with pytest.raises(InstrumentationError, match="userId"):
        run(it, {"type": "alias", "previousId": "old@x.io"})


def test_reverse_etl_catalog_and_user_rows(it):
    ctx = {
        "mappedToDestination": True,
        "externalId": [{"type": "ITERABLE-menu", "identifierType": "itemId", "id": "I-1"}],
    }
    (cat,) = run(it, {"type": "identify", "context": ctx, "traits": {"price": 2}})
    assert cat.url == US + "catalogs/menu/items"
    assert cat.json_body == {"documents": {"I-1": {"price": 2}}, "replaceUploadedFieldsOnly": True}
    ctx = {
        "mappedToDestination": True,
        "externalId": [{"type": "ITERABLE-users", "identifierType": "userId", "id": "U-1"}],
    }
    event = {"type": "identify", "userId": "other", "context": ctx, "traits": {"userId": "x", "a": 1}}
    (usr,) = run(it, event)
    assert usr.json_body == {
        "userId": "U-1",
        "dataFields": {"userId": "U-1", "a": 1},
        "preferUserId": True,
        "mergeNestedObjects": True,
    }


def test_group_and_missing_key(it):
    with pytest.raises(UnsupportedEventError):
        run(it, {"type": "group", "userId": "u", "groupId": "g"})
    with pytest.raises(ConfigurationError, match="apiKey"):
        run(it, {"type": "track", "userId": "u", "event": "Go"}, {"dataCenter": "USDC"})


def test_track_and_user_updates_are_delivered_through_the_bulk_endpoints(it):
    reqs = []
    for i in range(3):
        reqs += run(it, {"type": "track", "userId": f"u{i}", "event": "Go"})
        reqs += run(it, {"type": "identify", "userId": f"u{i}", "traits": {"n": i}})
    reqs += run(it, {"type": "alias", "previousId": "a@x.io", "userId": "b@x.io"})
    out = it.batch(reqs, CFG)
    by_url = {r.url: (idx, r.json_body) for idx, r in out}
    assert by_url[US + "events/trackBulk"][0] == [0, 2, 4]
    assert [e["userId"] for e in by_url[US + "events/trackBulk"][1]["events"]] == ["u0", "u1", "u2"]
    assert by_url[US + "users/bulkUpdate"][0] == [1, 3, 5]
    assert by_url[US + "users/updateEmail"][0] == [6]
    (single,) = it.batch(run(it, {"type": "track", "userId": "u", "event": "Go"}), CFG)
    assert single[1].url == US + "events/trackBulk" and len(single[1].json_body["events"]) == 1


def test_bulk_answers_dead_letter_only_the_rejected_jobs(it):
    jobs = [
        run(it, {"type": "track", "userId": u, "event": "Go", "traits": {"email": e}})[0]
        for u, e in (("u1", "a@x.io"), ("u2", "bad"), ("u3", "c@x.io"))
    ]
    ((_, merged),) = it.batch(jobs, CFG)
    answer = {"successCount": 2, "failCount": 1, "invalidEmails": ["bad"], "disallowedEventNames": []}
    c = it.classify(200, {}, json.dumps(answer).encode(), request=merged, jobs=3)
    assert [j.outcome.value for j in c.jobs] == ["success", "abort", "success"]
    users = [run(it, {"type": "identify", "userId": u})[0] for u in ("u1", "u2")]
    ((_, merged),) = it.batch(users, CFG)
    answer = {"successCount": 1, "failCount": 1, "failedUpdates": {"notFoundUserIds": ["u1"]}}
    c = it.classify(200, {}, json.dumps(answer).encode(), request=merged, jobs=2)
    assert [j.outcome.value for j in c.jobs] == ["abort", "success"]


def test_cart_and_purchase_items_need_id_name_price_and_quantity(it):
    props = {
        "total": 5,
        "products": [
            {"product_id": "P", "name": "N", "price": 5, "quantity": 1},
            {"product_id": "Q", "name": "M", "price": "n/a", "quantity": 1},
        ],
    }
    for name in ("Order Completed", "Product Added"):
        with pytest.raises(InstrumentationError, match="every product needs"):
            run(it, {"type": "track", "userId": "u", "event": name, "properties": props})
    emptied = {"type": "track", "userId": "u", "event": "Product Removed", "properties": {"products": []}}
    (r,) = run(it, emptied)
    assert r.json_body["items"] == []  # an emptied cart is still a cart
