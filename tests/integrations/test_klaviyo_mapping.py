"""Klaviyo mapping: revisions per apiVersion, profile attributes, subscriptions, settings, e-commerce names,
batching per list and typed errors.

Events are hand-written for these tests; expectations come from Klaviyo's API reference (request bodies of
POST /api/profile-import, /api/events, /api/profile-subscription-bulk-create-jobs and -delete-jobs, revisions
2024-10-15, 2026-04-15 and 2023-02-22) and from the settings' documented meaning (RudderStack's Klaviyo docs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, UnsupportedEventError
from sdk.openapi.validate import load_validator
from sdk.registry import load_connector

KEY = "pk_unit_test"
V2 = {"privateApiKey": KEY, "apiVersion": "v2"}
NOW = TransformContext.at("2024-05-01T12:00:00Z")
OPENAPI = Path(__file__).resolve().parents[2] / "integrations" / "klaviyo" / "openapi"


@pytest.fixture(scope="module")
def kl():
    return load_connector("klaviyo")


def run(kl, event, config=None):
    return kl.transform(event, config or V2, NOW)


def identify(traits, **extra):
    return {"type": "identify", "userId": "u-1", "context": {"traits": traits}, **extra}


def test_found_by_rudderstack_type(kl):
    assert load_connector("KLAVIYO").name == "klaviyo"


@pytest.mark.parametrize("version, revision", [("v2", "2024-10-15"), ("v3", "2026-04-15")])
def test_revision_header_follows_api_version(kl, version, revision):
    (r,) = run(kl, identify({"email": "a@x.io"}), {"privateApiKey": KEY, "apiVersion": version})
    assert r.url == "https://a.klaviyo.com/api/profile-import"
    assert r.headers["revision"] == revision
    assert r.headers["Authorization"] == f"Klaviyo-API-Key {KEY}"


def test_profile_attributes_reserved_names_location_and_other_traits(kl):
    traits = {
        "email": "a@x.io",
        "phone": "+4915112345678",
        "first_name": "Ada",
        "lastname": "L",
        "organization": "Org",
        "title": "CTO",
        "image": "https://x.io/a.png",
        "locale": "de-DE",
        "address": {
            "street": "Hauptstr. 1",
            "city": "Berlin",
            "state": "BE",
            "postalCode": "10115",
            "country": "DE",
        },
        "timezone": "Europe/Berlin",
        "plan": "pro",
        "anonymousId": "dropped",
        "id": "custom-id",
    }
    (r,) = run(kl, identify(traits, anonymousId="anon-1"))
    data = r.json_body["data"]
    assert data["type"] == "profile" and data["meta"] == {"patch_properties": {}}
    assert data["attributes"] == {
        "email": "a@x.io",
        "phone_number": "+4915112345678",
        "external_id": "u-1",
        "anonymous_id": "anon-1",
        "first_name": "Ada",
        "last_name": "L",
        "organization": "Org",
        "title": "CTO",
        "image": "https://x.io/a.png",
        "locale": "de-DE",
        "location": {
            "address1": "Hauptstr. 1",
            "city": "Berlin",
            "region": "BE",
            "zip": "10115",
            "country": "DE",
            "timezone": "Europe/Berlin",
        },
        "properties": {"plan": "pro", "id": "custom-id"},
    }


def test_klaviyo_profile_id_from_external_id(kl):
    external = [{"type": "klaviyo-profileId", "id": "01ABC"}]
    event = identify({"email": "a@x.io"}, context={"traits": {"email": "a@x.io"}, "externalId": external})
    (r,) = run(kl, event)
    assert r.json_body["data"]["id"] == "01ABC"


def test_reverse_etl_row_id_is_the_external_id(kl):
    event = {
        "type": "identify",
        "userId": "ignored",
        "context": {
            "mappedToDestination": "true",
            "traits": {"email": "b@x.io"},
            "externalId": [{"type": "KLAVIYO-profile_v2", "identifierType": "email", "id": "b@x.io"}],
        },
    }
    (r,) = run(kl, event)
    assert r.json_body["data"]["attributes"]["external_id"] == "b@x.io"


def test_subscribe_uses_event_list_and_consent_over_settings(kl):
    cfg = {**V2, "listId": "Cfg", "consent": ["sms"]}
    traits = {
        "email": "a@x.io",
        "phone": "+14155550100",
        "properties": {"subscribe": True, "listId": "Evt", "consent": "email"},
    }
    _, sub = run(kl, identify(traits), cfg)
    assert sub.url == "https://a.klaviyo.com/api/profile-subscription-bulk-create-jobs"
    assert sub.json_body["data"]["relationships"] == {"list": {"data": {"type": "list", "id": "Evt"}}}
    (profile,) = sub.json_body["data"]["attributes"]["profiles"]["data"]
    assert profile["attributes"]["subscriptions"] == {"email": {"marketing": {"consent": "SUBSCRIBED"}}}


def test_subscribe_falls_back_to_list_and_consent_settings_and_needs_the_identifier(kl):
    cfg = {**V2, "listId": "Cfg", "consent": ["email", "sms"]}
    _, sub = run(kl, identify({"email": "a@x.io", "properties": {"subscribe": True}}), cfg)
    assert sub.json_body["data"]["relationships"]["list"]["data"]["id"] == "Cfg"
    (profile,) = sub.json_body["data"]["attributes"]["profiles"]["data"]
    # no phone: the SMS channel cannot be subscribed
    assert profile["attributes"] == {
        "email": "a@x.io",
        "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}},
    }


def test_no_list_no_subscription_job(kl):
    assert len(run(kl, identify({"email": "a@x.io", "properties": {"subscribe": True}}))) == 1


def test_unsubscribe_v2_names_no_channel_v3_names_them(kl):
    traits = {"email": "a@x.io", "properties": {"subscribe": False, "listId": "L1"}}
    _, v2 = run(kl, identify(traits))
    assert v2.url.endswith("/profile-subscription-bulk-delete-jobs")
    assert v2.json_body["data"]["attributes"]["profiles"]["data"][0]["attributes"] == {"email": "a@x.io"}
    _, v3 = run(kl, identify(traits), {"privateApiKey": KEY, "apiVersion": "v3"})
    assert v3.json_body["data"]["attributes"]["profiles"]["data"][0]["attributes"] == {
        "email": "a@x.io",
        "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}},
    }


def test_v3_requests_keep_the_2026_04_15_contract(kl):
    cfg = {"privateApiKey": KEY, "apiVersion": "v3", "consent": ["email", "sms"]}
    doc = OPENAPI / "klaviyo-2026-04-15.json"
    traits = {
        "email": "a@x.io",
        "phone": "+14155550100",
        "plan": "pro",
        "properties": {"subscribe": False, "listId": "L1"},
    }
    reqs = run(kl, identify(traits), cfg)
    reqs += run(kl, {"type": "track", "event": "Go", "userId": "u", "properties": {"revenue": 2}}, cfg)
    reqs += run(
        kl,
        {
            "type": "group",
            "groupId": "L2",
            "traits": {"subscribe": True},
            "context": {"traits": {"email": "a@x.io"}},
        },
        cfg,
    )
    ops = {
        "profile_import": "POST /api/profile-import",
        "events": "POST /api/events",
        "subscribe": "POST /api/profile-subscription-bulk-create-jobs",
        "unsubscribe": "POST /api/profile-subscription-bulk-delete-jobs",
    }
    assert [r.endpoint for r in reqs] == ["profile_import", "unsubscribe", "events", "subscribe"]
    for r in reqs:
        assert load_validator(doc, ops[r.endpoint]).errors(r) == [], r.endpoint


def test_flatten_properties_flattens_profile_and_event_properties(kl):
    cfg = {**V2, "flattenProperties": True}
    event = {
        "type": "track",
        "userId": "u",
        "event": "Go",
        "context": {"traits": {"pet": {"name": "Rex"}}},
        "properties": {"cart": {"items": [{"sku": "a"}]}, "tags": ["x"]},
    }
    (r,) = run(kl, event, cfg)
    attrs = r.json_body["data"]["attributes"]
    assert attrs["properties"] == {"cart.items[0].sku": "a", "tags": ["x"]}
    assert attrs["profile"]["data"]["attributes"]["properties"] == {"pet.name": "Rex"}


def test_enforce_email_as_primary_moves_user_id_to_properties(kl):
    cfg = {**V2, "enforceEmailAsPrimary": True}
    event = {"type": "track", "userId": "u-9", "event": "Go", "context": {"traits": {"email": "a@x.io"}}}
    (r,) = run(kl, event, cfg)
    profile = r.json_body["data"]["attributes"]["profile"]["data"]["attributes"]
    assert "external_id" not in profile and profile["properties"] == {"_id": "u-9"}
    with pytest.raises(InstrumentationError, match="None of email and phone"):
        run(kl, {"type": "track", "userId": "u-9", "event": "Go"}, cfg)


def test_track_value_time_unique_id_and_invalid_value(kl):
    event = {
        "type": "track",
        "userId": "u",
        "event": "Paid",
        "messageId": "m-1",
        "originalTimestamp": "2024-04-01T10:00:00+02:00",
        "properties": {"value": "12.5", "note": "x"},
    }
    (r,) = run(kl, event)
    attrs = r.json_body["data"]["attributes"]
    assert (attrs["value"], attrs["time"], attrs["unique_id"]) == (12.5, "2024-04-01T08:00:00.000Z", "m-1")
    assert attrs["properties"] == {"note": "x"}
    with pytest.raises(InstrumentationError):
        run(kl, {**event, "properties": {"value": {"price": 9.99}}})


@pytest.mark.parametrize(
    "name, metric",
    [
        ("Product Viewed", "Viewed Product"),
        ("product_clicked", "Viewed Product"),
        ("Product Added", "Added to Cart"),
        ("Checkout Started", "Started Checkout"),
        ("Order Completed", "Order Completed"),
    ],
)
def test_ecommerce_metric_names(kl, name, metric):
    (r,) = run(kl, {"type": "track", "userId": "u", "event": name, "properties": {}})
    assert r.json_body["data"]["attributes"]["metric"]["data"]["attributes"]["name"] == metric


def test_product_viewed_properties_and_custom_ones_kept(kl):
    props = {
        "name": "Kettle",
        "product_id": "P7",
        "sku": "S7",
        "image_url": "i",
        "url": "u",
        "brand": "B",
        "price": 45,
        "compare_at_price": 50,
        "categories": ["home"],
        "color": "red",
        "currency": "EUR",
    }
    (r,) = run(kl, {"type": "track", "userId": "u", "event": "Product Viewed", "properties": props})
    assert r.json_body["data"]["attributes"]["properties"] == {
        "color": "red",
        "ProductName": "Kettle",
        "ProductID": "P7",
        "SKU": "S7",
        "ImageURL": "i",
        "URL": "u",
        "Brand": "B",
        "Price": 45,
        "CompareAtPrice": 50,
        "Categories": ["home"],
    }
    assert "value" not in r.json_body["data"]["attributes"]


def test_product_added_item_fields(kl):
    props = {
        "name": "Kettle",
        "product_id": "P7",
        "quantity": 2,
        "value": 90,
        "products": [{"product_id": "P7", "total": 90, "categories": ["home"]}],
    }
    (r,) = run(kl, {"type": "track", "userId": "u", "event": "Product Added", "properties": props})
    assert r.json_body["data"]["attributes"]["properties"] == {
        "$value": 90,
        "AddedItemProductName": "Kettle",
        "AddedItemProductID": "P7",
        "AddedItemQuantity": 2,
        "items": [{"ProductID": "P7", "RowTotal": 90, "ProductCategories": ["home"]}],
    }


def test_screen_metric_is_the_screen_name(kl):
    (r,) = run(kl, {"type": "screen", "userId": "u", "name": "Home", "properties": {"a": 1}})
    assert r.json_body["data"]["attributes"]["metric"]["data"]["attributes"]["name"] == "Home"


def test_legacy_revision_for_configs_without_api_version(kl):
    cfg = {"privateApiKey": KEY}
    event = {
        "type": "track",
        "userId": "u",
        "event": "Go",
        "context": {
            "traits": {
                "email": "a@x.io",
                "phone": "5550100",
                "firstName": "Ada",
                "city": "Oslo",
                "anonymousId": "x",
            }
        },
        "properties": {"revenue": 3},
    }
    (r,) = run(kl, event, cfg)
    assert r.headers["revision"] == "2023-02-22"
    # the legacy revision takes any phone text (no E.164 check)
    assert r.json_body == {
        "data": {
            "type": "event",
            "attributes": {
                "metric": {"name": "Go"},
                "profile": {
                    "$email": "a@x.io",
                    "$phone_number": "5550100",
                    "$id": "u",
                    "$first_name": "Ada",
                    "$city": "Oslo",
                },
                "properties": {},
                "value": 3,
            },
        }
    }


def test_legacy_identify_upserts_with_the_2024_10_15_profile_import(kl):
    (r,) = run(kl, identify({"email": "a@x.io"}), {"privateApiKey": KEY, "apiVersion": "v1"})
    assert r.url.endswith("/api/profile-import") and r.headers["revision"] == "2024-10-15"


def test_group_subscribe_and_unsubscribe(kl):
    event = {
        "type": "group",
        "groupId": "L9",
        "userId": "u",
        "traits": {"subscribe": True, "consent": "sms"},
        "context": {"traits": {"email": "a@x.io", "phone": "+14155550100"}},
    }
    (sub,) = run(kl, event)
    attrs = sub.json_body["data"]["attributes"]["profiles"]["data"][0]["attributes"]
    assert attrs["subscriptions"] == {"sms": {"marketing": {"consent": "SUBSCRIBED"}}}
    (unsub,) = run(kl, {**event, "traits": {"subscribe": False}})
    assert unsub.url.endswith("/profile-subscription-bulk-delete-jobs")
    (legacy,) = run(kl, event, {"privateApiKey": KEY, "apiVersion": "v1"})
    assert legacy.json_body["data"]["attributes"] == {
        "list_id": "L9",
        "subscriptions": [{"email": "a@x.io", "phone_number": "+14155550100"}],
    }


@pytest.mark.parametrize(
    "event, message",
    [
        (
            {
                "type": "group",
                "groupId": "",
                "traits": {"subscribe": True},
                "context": {"traits": {"email": "a@x.io"}},
            },
            "groupId is a required field",
        ),
        ({"type": "group", "groupId": "L", "context": {"traits": {"email": "a@x.io"}}}, "traits.subscribe"),
        ({"type": "group", "groupId": "L", "traits": {"subscribe": True}}, "email or phone"),
        ({"type": "identify", "userId": "u", "traits": {"phone": "0151 1234"}}, "E.164"),
        ({"type": "track", "userId": "u"}, "need a name"),
        ({"type": "track", "event": "Go"}, "needs a profile"),
    ],
)
def test_instrumentation_errors(kl, event, message):
    with pytest.raises(InstrumentationError, match=message):
        run(kl, event)


def test_unsupported_types_and_missing_key(kl):
    for t in ("page", "alias"):
        with pytest.raises(UnsupportedEventError):
            run(kl, {"type": t, "userId": "u"})
    with pytest.raises(ConfigurationError, match="privateApiKey"):
        run(kl, {"type": "track", "userId": "u", "event": "Go"}, {"apiVersion": "v2"})


def test_subscription_jobs_merge_per_list_up_to_100_profiles(kl):
    cfg = {**V2}
    reqs = []
    for i in range(103):
        reqs += run(
            kl,
            {
                "type": "group",
                "groupId": "A" if i % 2 else "B",
                "userId": f"u{i}",
                "traits": {"subscribe": True},
                "context": {"traits": {"email": f"{i}@x.io"}},
            },
            cfg,
        )
    out = kl.batch(reqs, cfg)
    lists = [
        (
            r.json_body["data"]["relationships"]["list"]["data"]["id"],
            len(r.json_body["data"]["attributes"]["profiles"]["data"]),
        )
        for _, r in out
    ]
    assert sorted(lists) == [("A", 51), ("B", 52)]
    assert sorted(i for idx, _ in out for i in idx) == list(range(103))
    many = reqs * 2  # 206 subscriptions: list B needs two jobs
    sizes = [len(r.json_body["data"]["attributes"]["profiles"]["data"]) for _, r in kl.batch(many, cfg)]
    assert max(sizes) == 100 and sum(sizes) == 206


def test_events_and_profile_upserts_are_not_merged(kl):
    reqs = run(kl, identify({"email": "a@x.io"})) + run(kl, identify({"email": "b@x.io"}))
    assert [idx for idx, _ in kl.batch(reqs, V2)] == [[0], [1]]


def test_patch_operations_named_in_the_integrations_object(kl):
    # Klaviyo's meta.patch_properties (append / unappend / unset) for the traits the event names
    opts = {
        "Klaviyo": {
            "fieldsToAppend": ["tags", "missing"],
            "fieldsToUnappend": ["old_tags"],
            "fieldsToUnset": ["legacy_score"],
        }
    }
    traits = {"email": "a@x.io", "tags": "vip", "old_tags": "beta", "legacy_score": 3, "plan": "pro"}
    (r,) = run(kl, identify(traits, integrations=opts))
    data = r.json_body["data"]
    assert data["meta"] == {
        "patch_properties": {
            "append": {"tags": "vip"},
            "unappend": {"old_tags": "beta"},
            "unset": ["legacy_score"],
        }
    }
    assert data["attributes"]["properties"] == {"plan": "pro"}
    (t,) = run(
        kl,
        {
            "type": "track",
            "userId": "u",
            "event": "Go",
            "context": {"traits": traits},
            "integrations": {"KLAVIYO": {"fieldsToUnset": "legacy_score"}},
        },
    )
    profile = t.json_body["data"]["attributes"]["profile"]["data"]["attributes"]
    assert profile["meta"] == {"patch_properties": {"unset": ["legacy_score"]}}
    assert "legacy_score" not in profile["properties"]
