"""TikTok Ads: event-name resolution (rows, standard names, custom events), Events 2.0 vs 1.0 shapes, hashing,
test event codes and batching.

Events are hand-written for these tests; expected values follow TikTok's Events API docs and RudderStack's
settings notes (README), hashes computed here with hashlib.
"""

from __future__ import annotations

import hashlib

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, UnsupportedEventError
from sdk.registry import load_connector
from sdk.request import VendorRequest

V2 = {"accessToken": "tok-1", "pixelCode": "PIX1", "version": "v2"}
V1 = {"accessToken": "tok-1", "pixelCode": "PIX1"}
V2_URL = "https://business-api.tiktok.com/open_api/v1.3/event/track/"
V1_URL = "https://business-api.tiktok.com/open_api/v1.3/pixel/track/"


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module")
def tt():
    return load_connector("tiktok_ads")


def run(tt, event, config):
    event = {"timestamp": "2024-05-01T11:00:00Z", "messageId": "m-1", **event}
    return tt.transform(event, config, TransformContext.at("2024-05-01T12:00:00Z"))


def test_lookup_names():
    for name in ("tiktok_ads", "TIKTOK_ADS", "TikTok Ads"):
        assert load_connector(name).name == "tiktok_ads"


def test_v2_request_envelope_and_access_token_header(tt):
    (r,) = run(tt, {"type": "track", "event": "Search", "properties": {"query": "mugs"}}, V2)
    assert r.url == V2_URL and r.method == "POST"
    assert r.headers["Access-Token"] == "tok-1"
    body = r.json_body
    assert {k: body[k] for k in ("event_source", "event_source_id", "partner_name")} == {
        "event_source": "web",
        "event_source_id": "PIX1",
        "partner_name": "RudderStack",
    }
    (ev,) = body["data"]
    assert ev["event"] == "Search" and ev["event_id"] == "m-1" and ev["event_time"] == 1714561200
    assert ev["properties"] == {"query": "mugs", "search_string": "mugs"}


def test_config_without_version_keeps_events_1_0(tt):
    (r,) = run(tt, {"type": "track", "event": "search", "properties": {"eventId": "e-9"}}, V1)
    assert r.url == V1_URL
    assert r.json_body == {
        "pixel_code": "PIX1",
        "event": "Search",
        "event_id": "e-9",
        "timestamp": "2024-05-01T11:00:00Z",
        "partner_name": "RudderStack",
    }


@pytest.mark.parametrize("version", ["v2", "V2"])
def test_version_is_case_insensitive(tt, version):
    (r,) = run(tt, {"type": "track", "event": "Contact"}, {**V2, "version": version})
    assert r.url == V2_URL


def test_rows_win_over_the_standard_table_and_all_matching_rows_count(tt):
    rows = [
        {"from": "AddToCart", "to": "AddToWishlist"},
        {"from": "addtocart", "to": "Download"},
        {"from": "other", "to": "Contact"},
    ]
    (r,) = run(tt, {"type": "track", "event": "addToCart"}, {**V2, "eventsToStandard": rows})
    assert [d["event"] for d in r.json_body["data"]] == ["AddToWishlist", "Download"]
    reqs = run(tt, {"type": "track", "event": "addToCart"}, {**V1, "eventsToStandard": rows})
    assert [q.json_body["event"] for q in reqs] == ["AddToWishlist", "Download"]  # 1.0: a request each


@pytest.mark.parametrize(
    "event, standard",
    [
        ("Product Added to Wishlist", "AddToWishlist"),
        ("product added", "AddToCart"),
        ("Checkout Started", "InitiateCheckout"),
        ("Payment Info Entered", "AddPaymentInfo"),
        ("Checkout Step Completed", "CompletePayment"),
        ("Order Completed", "PlaceAnOrder"),
        ("COMPLETEREGISTRATION", "CompleteRegistration"),
        ("submitform", "SubmitForm"),
    ],
)
def test_ecommerce_and_standard_names(tt, event, standard):
    (r,) = run(tt, {"type": "track", "event": event}, V2)
    assert r.json_body["data"][0]["event"] == standard


def test_custom_events_need_send_custom_events(tt):
    with pytest.raises(InstrumentationError, match=r"Event name \(Wheel Spun\) is not valid"):
        run(tt, {"type": "track", "event": "Wheel Spun"}, V2)
    (r,) = run(tt, {"type": "track", "event": "Wheel Spun"}, {**V2, "sendCustomEvents": True})
    assert r.json_body["data"][0]["event"] == "Wheel Spun"


@pytest.mark.parametrize("event", [None, "", 42])
def test_event_name_must_be_text(tt, event):
    with pytest.raises(InstrumentationError, match="should be a string"):
        run(tt, {"type": "track", "event": event}, {**V2, "sendCustomEvents": True})


@pytest.mark.parametrize("etype", ["identify", "page", "screen", "group", "alias"])
def test_only_track_is_supported(tt, etype):
    with pytest.raises(UnsupportedEventError):
        run(tt, {"type": etype, "userId": "u"}, V2)


@pytest.mark.parametrize("missing", ["accessToken", "pixelCode"])
def test_credentials_are_required(tt, missing):
    config = {k: v for k, v in V2.items() if k != missing}
    with pytest.raises(ConfigurationError):
        run(tt, {"type": "track", "event": "Search"}, config)


def test_hashing_normalises_then_hashes_every_identifier(tt):
    event = {
        "type": "track",
        "event": "Lead",
        "context": {
            "traits": {
                "email": " Ann@Example.COM ",
                "phone": " +15550001111 ",
                "firstName": " Ann ",
                "lastName": "Lee",
                "zip": "94 107-1",
                "city": "sf",
            },
            "externalId": [{"type": "tiktokExternalId", "id": h("already-hashed")}],
        },
    }
    (r,) = run(tt, event, V2)
    user = r.json_body["data"][0]["user"]
    assert user == {
        "email": h("ann@example.com"),
        "phone": h("+15550001111"),
        "first_name": h("ann"),
        "last_name": h("lee"),
        "zip_code": h("941071"),
        "city": "sf",
        "external_id": h(h("already-hashed")),  # the setting says values are raw: hashed again
    }


def test_hash_off_sends_identifiers_as_given(tt):
    ids = [{"type": "tiktokExternalId", "id": "raw"}]
    context = {"traits": {"email": h("x@y.z")}, "externalId": ids}
    event = {"type": "track", "event": "Lead", "context": context}
    (r,) = run(tt, event, {**V2, "hashUserProperties": False})
    assert r.json_body["data"][0]["user"] == {"email": h("x@y.z"), "external_id": "raw"}


def test_products_become_contents_with_content_type_for_catalog_events(tt):
    event = {
        "type": "track",
        "event": "Product Added",
        "properties": {
            "currency": "USD",
            "value": "12.5",
            "products": [{"sku": "S-1", "name": "Cup", "price": "12.5", "quantity": 1}],
        },
    }
    (r,) = run(tt, event, V2)
    assert r.json_body["data"][0]["properties"] == {
        "contents": [{"price": 12.5, "quantity": 1, "content_id": "S-1", "content_name": "Cup"}],
        "content_type": "product",
        "contents_ids": ["S-1"],
        "num_items": 1,
        "currency": "USD",
        "value": 12.5,
    }
    (r,) = run(tt, {**event, "event": "Search"}, V2)
    assert "content_type" not in r.json_body["data"][0]["properties"]
    event["properties"]["contentType"] = "product_group"
    (r,) = run(tt, event, V2)
    assert r.json_body["data"][0]["properties"]["content_type"] == "product_group"


def test_contents_object_becomes_a_list(tt):
    event = {"type": "track", "event": "ViewContent", "properties": {"contents": {"content_id": "c1"}}}
    (r,) = run(tt, event, V2)
    props = r.json_body["data"][0]["properties"]
    assert props["contents"] == [{"content_id": "c1"}] and props["num_items"] == 1


def test_v1_context_from_properties_context_and_event_context(tt):
    event = {
        "type": "track",
        "event": "ClickButton",
        "context": {
            "ip": "1.2.3.4",
            "userAgent": "UA",
            "page": {"url": "https://a.example/"},
            "traits": {"email": "b@c.d"},
        },
        "properties": {"clickId": "E.C.P.1", "context": {"user": {"ttp": "ttp-1", "email": ""}}},
    }
    (r,) = run(tt, event, V1)
    assert r.json_body["context"] == {
        "ad": {"callback": "E.C.P.1"},
        "page": {"url": "https://a.example/"},
        "user": {"ttp": "ttp-1", "email": h("b@c.d")},
        "ip": "1.2.3.4",
        "user_agent": "UA",
    }


def test_test_event_code_v1_and_v2(tt):
    event = {"type": "track", "event": "Contact", "properties": {"testEventCode": "TEST1"}}
    assert run(tt, event, V2)[0].json_body["test_event_code"] == "TEST1"
    assert run(tt, event, V1)[0].json_body["test_event_code"] == "TEST1"


def _stored(reqs):
    return [VendorRequest.from_wire(r.to_wire()) for r in reqs]


def test_v2_batches_merge_data_and_keep_test_events_apart(tt):
    events = [
        {"type": "track", "event": "Contact", "messageId": f"m{i}", "properties": props}
        for i, props in enumerate([{}, {"testEventCode": "T"}, {}, {"testEventCode": "T"}])
    ]
    reqs = _stored([r for e in events for r in run(tt, e, V2)])
    merged = tt.batch(reqs, V2)
    assert [idx for idx, _ in merged] == [[0, 2], [1, 3]]
    plain, test = merged[0][1].json_body, merged[1][1].json_body
    assert [d["event_id"] for d in plain["data"]] == ["m0", "m2"] and "test_event_code" not in plain
    assert [d["event_id"] for d in test["data"]] == ["m1", "m3"] and test["test_event_code"] == "T"


def test_v1_requests_are_not_merged(tt):
    events = [{"type": "track", "event": "Contact", "messageId": f"m{i}"} for i in range(3)]
    reqs = _stored([run(tt, e, V1)[0] for e in events])
    assert [idx for idx, _ in tt.batch(reqs, V1)] == [[0], [1], [2]]
