"""Meta Conversions API destinations (facebook_conversions, facebook_pixel): customer information normalised
and hashed, event names, custom data with PII rules, the time window, test event codes, Limited Data Use, and
the Pixel's own settings.

Events are hand-written for these tests. Expected hashes come from the examples on Meta's customer-information
parameters page, or are computed here with hashlib from the normalised text those rules give:
https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, UnsupportedEventError
from sdk.registry import load_connector

NOW = "2024-05-01T12:00:00Z"
CONFIGS = {
    "facebook_conversions": {"datasetId": "111", "accessToken": "tok-c"},
    "facebook_pixel": {"pixelId": "222", "accessToken": "tok-p"},
}
# Meta's own examples (customer-information parameters page): input -> expected SHA-256.
META_EM = ("John_Smith@gmail.com", "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f")
META_PH = ("(650)555-1212", "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176")
META_FN = ("Mary", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec")
META_FN_ACCENT = ("Valéry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c")


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def fb(request):
    return request.param, load_connector(request.param)


def run(conn, event, config):
    event = {"timestamp": "2024-05-01T11:00:00Z", "messageId": "m-1", **event}
    return conn.transform(event, config, TransformContext.at(NOW))


def server_event(fb, event, **settings):
    name, conn = fb
    (r,) = run(conn, event, {**CONFIGS[name], **settings})
    (ev,) = r.form["data"]
    return ev


def test_request_is_a_form_post_to_the_events_edge_with_the_token_in_the_query(fb):
    name, conn = fb
    (r,) = run(conn, {"type": "track", "event": "Lead", "userId": "u"}, CONFIGS[name])
    edge = "111" if name == "facebook_conversions" else "222"
    assert r.method == "POST" and r.url == f"https://graph.facebook.com/v25.0/{edge}/events"
    assert r.params == {"access_token": CONFIGS[name]["accessToken"]}
    wire = parse_qs(r.body_bytes().decode())
    assert list(wire) == ["data"]
    (data,) = wire["data"]
    assert json.loads(data)[0]["event_name"] == "Lead"  # data=[{...}]: a JSON array of server events


def test_server_event_fields(fb):
    ev = server_event(
        fb,
        {
            "type": "track",
            "event": "Lead",
            "userId": "u-1",
            "timestamp": "2024-05-01T11:00:00.900Z",
            "context": {"page": {"url": "https://a.example/x"}},
            "properties": {"event_id": "dedupe-1", "opt_out": True},
        },
    )
    assert ev["event_time"] == 1714561200
    assert ev["event_id"] == "dedupe-1"
    assert ev["event_source_url"] == "https://a.example/x"
    assert ev["action_source"] == "website"
    assert ev["opt_out"] is True
    assert "event_id" not in ev["custom_data"] and "opt_out" not in ev["custom_data"]


def test_event_id_falls_back_to_traits_then_message_id(fb):
    assert (
        server_event(fb, {"type": "track", "event": "Lead", "context": {"traits": {"event_id": "t-1"}}})[
            "event_id"
        ]
        == "t-1"
    )
    assert server_event(fb, {"type": "track", "event": "Lead"})["event_id"] == "m-1"


def test_customer_information_follows_metas_examples(fb):
    traits = {
        "email": META_EM[0],
        "phone": META_PH[0],
        "firstName": META_FN_ACCENT[0],
        "lastName": META_FN[0],
    }
    user = server_event(fb, {"type": "track", "event": "Lead", "context": {"traits": traits}})["user_data"]
    assert user["em"] == META_EM[1]
    assert user["fn"] == META_FN_ACCENT[1] and user["ln"] == META_FN[1]
    # Meta's example number carries the US country code: "(650)555-1212" is normalised as 16505551212.
    assert user["ph"] == h("6505551212")
    user = server_event(
        fb, {"type": "track", "event": "Lead", "context": {"traits": {"phone": "+1 (650) 555-1212"}}}
    )["user_data"]
    assert user["ph"] == META_PH[1]


@pytest.mark.parametrize(
    "traits, field, normalised",
    [
        ({"email": "  A@B.COM "}, "em", "a@b.com"),
        ({"phone": "0044 20 7946 0018"}, "ph", "442079460018"),
        ({"gender": "Female"}, "ge", "f"),
        ({"gender": "MALE"}, "ge", "m"),
        ({"birthday": "1990-01-31"}, "db", "19900131"),
        ({"birthday": "19900131"}, "db", "19900131"),
        ({"lastName": "O'Brien-Smith"}, "ln", "obriensmith"),
        ({"name": "Ada King Lovelace"}, "fn", "ada"),
        ({"name": "Ada King Lovelace"}, "ln", "king lovelace"),
        ({"city": "New York"}, "ct", "newyork"),
        ({"address": {"city": "Saint-Étienne"}}, "ct", "saintétienne"),
        ({"state": "CA"}, "st", "ca"),
        ({"zip": "94035-1234"}, "zp", "94035"),
        ({"address": {"postalCode": "SW1A 1AA"}}, "zp", "sw1a1aa"),
        ({"country": " US "}, "country", "us"),
    ],
)
def test_normalisation_per_field(fb, traits, field, normalised):
    user = server_event(fb, {"type": "track", "event": "Lead", "context": {"traits": traits}})["user_data"]
    assert user[field] == h(normalised)


def test_a_single_word_name_is_a_first_name_only(fb):
    user = server_event(fb, {"type": "track", "event": "Lead", "context": {"traits": {"name": "Cher"}}})[
        "user_data"
    ]
    assert user["fn"] == h("cher") and "ln" not in user


def test_values_empty_once_normalised_are_left_out(fb):
    traits = {"email": "   ", "phone": "n/a", "gender": ""}
    user = server_event(fb, {"type": "track", "event": "Lead", "context": {"traits": traits}})["user_data"]
    assert not {"em", "ph", "ge"} & set(user)


def test_already_hashed_values_are_not_hashed_again(fb):
    traits = {"email": h("a@b.c"), "phone": h("15550001111").upper(), "birthday": h("19900131")}
    user = server_event(fb, {"type": "track", "event": "Lead", "context": {"traits": traits}})["user_data"]
    assert (user["em"], user["ph"], user["db"]) == (h("a@b.c"), h("15550001111"), h("19900131"))


def test_external_id_and_browser_ids(fb):
    event = {
        "type": "track",
        "event": "Lead",
        "anonymousId": "anon-1",
        "request_ip": "10.0.0.1",
        "context": {"userAgent": "UA", "fbp": "fb.1.1.2", "fb_login_id": 77, "lead_id": "l-1"},
        "properties": {"fbc": "fb.1.3.abc"},
    }
    user = server_event(fb, event)["user_data"]
    assert user == {
        "external_id": h("anon-1"),
        "client_ip_address": "10.0.0.1",
        "client_user_agent": "UA",
        "fbc": "fb.1.3.abc",
        "fbp": "fb.1.1.2",
        "fb_login_id": 77,
        "lead_id": "l-1",
    }
    assert "external_id" not in server_event(fb, event, removeExternalId=True)["user_data"]


def test_fbc_is_built_from_the_fbclid_of_the_page_url(fb):
    event = {
        "type": "track",
        "event": "Lead",
        "originalTimestamp": "2024-05-01T10:00:00.250Z",
        "context": {"page": {"url": "https://a.example/?utm=x&fbclid=IwAR123"}},
    }
    assert server_event(fb, event)["user_data"]["fbc"] == "fb.1.1714557600250.IwAR123"


def test_hashed_integrations_option_sends_customer_information_as_given(fb):
    name, _ = fb
    key = "Facebook Conversions" if name == "facebook_conversions" else "FacebookPixel"
    event = {
        "type": "track",
        "event": "Lead",
        "userId": "u-9",
        "integrations": {key: {"hashed": True}},
        "context": {"traits": {"email": "already-hashed-by-sender", "phone": 123}},
    }
    user = server_event(fb, event)["user_data"]
    assert user == {"external_id": "u-9", "em": "already-hashed-by-sender"}  # non-text values are not sent


def test_event_names_rows_then_ecommerce_table_then_own_name(fb):
    rows = [{"from": "signed up", "to": "CompleteRegistration"}, {"from": "Signed Up", "to": "Lead"}]
    assert server_event(fb, {"type": "track", "event": "Signed Up"}, eventsToEvents=rows)["event_name"] == (
        "CompleteRegistration"
    )
    for event, name in [
        ("Product List Viewed", "ViewContent"),
        ("product viewed", "ViewContent"),
        ("Product Added", "AddToCart"),
        ("Order Completed", "Purchase"),
        ("Products Searched", "Search"),
        ("Checkout Started", "InitiateCheckout"),
        ("Spin Won", "Spin Won"),
    ]:
        assert server_event(fb, {"type": "track", "event": event})["event_name"] == name


def test_pii_properties_default_allow_and_deny_lists(fb):
    props = {"email": "a@b.c", "phone": "1", "firstName": "A", "coupon": "C10", "ssn": "x", "plan": "pro"}
    custom = server_event(
        fb,
        {"type": "track", "event": "Lead", "properties": props},
        whitelistPiiProperties=[{"whitelistPiiProperties": "email"}],
        blacklistPiiProperties=[
            {"blacklistPiiProperties": "coupon", "blacklistPiiHash": True},
            {"blacklistPiiProperties": "ssn", "blacklistPiiHash": False},
        ],
    )["custom_data"]
    assert custom == {"email": "a@b.c", "coupon": h("C10"), "plan": "pro", "currency": "USD"}


def test_purchase_content_fields(fb):
    props = {
        "revenue": "25.5",
        "currency": "EUR",
        "products": [{"product_id": "p1", "price": 10, "quantity": 2}, {"sku": "s2", "price": "5.5"}],
    }
    custom = server_event(fb, {"type": "track", "event": "Order Completed", "properties": props})[
        "custom_data"
    ]
    assert custom["content_ids"] == ["p1", "s2"]
    assert custom["contents"] == [
        {"id": "p1", "quantity": 2, "item_price": 10},
        {"id": "s2", "quantity": 1, "item_price": 5.5},
    ]
    assert (custom["content_type"], custom["num_items"], custom["currency"], custom["value"]) == (
        "product",
        2,
        "EUR",
        25.5,
    )


def test_purchase_without_value_sends_zero(fb):
    custom = server_event(fb, {"type": "track", "event": "Order Completed"})["custom_data"]
    assert custom["value"] == 0 and custom["content_ids"] == [] and custom["num_items"] == 0


def test_a_value_that_is_not_a_number_is_an_instrumentation_error(fb):
    with pytest.raises(InstrumentationError):
        server_event(fb, {"type": "track", "event": "Order Completed", "properties": {"revenue": "$20"}})


@pytest.mark.parametrize("timestamp", ["2024-04-24T11:59:00Z", "2024-05-01T12:01:30Z"])
def test_events_outside_metas_window_are_refused(fb, timestamp):
    with pytest.raises(InstrumentationError, match="within 7 days"):
        server_event(fb, {"type": "track", "event": "Lead", "timestamp": timestamp})


@pytest.mark.parametrize("timestamp", ["2024-04-24T12:01:00Z", "2024-05-01T12:00:50Z"])
def test_events_inside_metas_window_pass(fb, timestamp):
    assert (
        server_event(fb, {"type": "track", "event": "Lead", "timestamp": timestamp})["event_name"] == "Lead"
    )


def test_action_source_from_the_event_and_checked(fb):
    assert (
        server_event(fb, {"type": "track", "event": "Lead", "properties": {"action_source": "email"}})[
            "action_source"
        ]
        == "email"
    )
    with pytest.raises(InstrumentationError, match="Action Source"):
        server_event(fb, {"type": "track", "event": "Lead", "traits": {"action_source": "web"}})


def test_test_event_code(fb):
    name, conn = fb
    config = {**CONFIGS[name], "testDestination": True, "testEventCode": "TEST1"}
    (r,) = run(conn, {"type": "track", "event": "Lead"}, config)
    assert r.form["test_event_code"] == "TEST1"
    (r,) = run(conn, {"type": "track", "event": "Lead"}, {**config, "testDestination": False})
    assert "test_event_code" not in r.form
    with pytest.raises(ConfigurationError, match="testEventCode"):
        run(conn, {"type": "track", "event": "Lead"}, {**CONFIGS[name], "testDestination": True})


@pytest.mark.parametrize("key", ["limitedDataUSage", "limitedDataUsage"])
def test_limited_data_use(fb, key):
    event = {"type": "track", "event": "Lead", "context": {"dataProcessingOptions": [["LDU"], 0, 0]}}
    ev = server_event(fb, event, **{key: True})
    assert (
        ev["data_processing_options"],
        ev["data_processing_options_country"],
        ev["data_processing_options_state"],
    ) == (["LDU"], 0, 0)
    assert "data_processing_options" not in server_event(fb, event)


@pytest.mark.parametrize("event", [{"event": ""}, {"event": 12}, {}])
def test_track_needs_a_text_event_name(fb, event):
    with pytest.raises(InstrumentationError):
        server_event(fb, {"type": "track", **event})


@pytest.mark.parametrize("etype", ["group", "alias"])
def test_unsupported_types(fb, etype):
    with pytest.raises(UnsupportedEventError):
        server_event(fb, {"type": etype, "userId": "u"})


# -- Facebook Conversions only -------------------------------------------------------------------------


def test_conversions_page_and_screen_are_page_views_with_the_action_source_setting():
    conn = load_connector("facebook_conversions")
    config = {**CONFIGS["facebook_conversions"], "actionSource": "app"}
    for etype in ("page", "screen"):
        (r,) = run(conn, {"type": etype, "name": "Home", "properties": {"title": "Home"}}, config)
        (ev,) = r.form["data"]
        assert (ev["event_name"], ev["action_source"], ev["custom_data"]) == (
            "PageView",
            "app",
            {"title": "Home"},
        )
    with pytest.raises(UnsupportedEventError):
        run(conn, {"type": "identify", "userId": "u"}, config)


# -- Facebook Pixel only -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pixel():
    return load_connector("facebook_pixel")


def pixel_event(pixel, event, **settings):
    (r,) = run(pixel, event, {**CONFIGS["facebook_pixel"], **settings})
    return r.form["data"][0]


def test_pixel_identify_needs_advanced_matching(pixel):
    event = {
        "type": "identify",
        "userId": "u-1",
        "context": {"traits": {"email": "A@B.c"}},
        "traits": {"x": 1},
    }
    with pytest.raises(ConfigurationError, match="advancedMapping"):
        pixel_event(pixel, event)
    ev = pixel_event(pixel, event, advancedMapping=True)
    assert ev["event_name"] == "identify" and "custom_data" not in ev
    assert ev["user_data"] == {"external_id": h("u-1"), "em": h("a@b.c")}


@pytest.mark.parametrize(
    "etype, name, standard, expected",
    [
        ("page", "Pricing", False, "Viewed Page Pricing"),
        ("screen", "Home", False, "Viewed Screen Home"),
        ("page", None, False, "PageView"),
        ("page", "Pricing", True, "PageView"),
        ("screen", "Home", True, "PageView"),
    ],
)
def test_pixel_page_and_screen_names(pixel, etype, name, standard, expected):
    event = {"type": etype, **({"name": name} if name else {})}
    assert pixel_event(pixel, event, standardPageCall=standard)["event_name"] == expected


def test_pixel_value_field_identifier_for_product_viewed_and_added(pixel):
    props = {"product_id": "p", "price": 30, "value": 27}
    for event in ("Product Viewed", "Product Added"):
        track = {"type": "track", "event": event, "properties": props}
        assert pixel_event(pixel, track)["custom_data"]["value"] == 30  # default: properties.price
        assert (
            pixel_event(pixel, track, valueFieldIdentifier="properties.value")["custom_data"]["value"] == 27
        )


def test_pixel_product_list_without_products_uses_the_category(pixel):
    event = {
        "type": "track",
        "event": "Product List Viewed",
        "properties": {"category": ["Shoes", "Boots"], "value": 9},
    }
    custom = pixel_event(pixel, event)["custom_data"]
    assert custom["content_ids"] == ["Shoes,Boots"] and custom["contents"] == [
        {"id": "Shoes,Boots", "quantity": 1}
    ]
    assert (custom["content_type"], custom["content_category"], custom["value"]) == (
        "product_group",
        "Shoes,Boots",
        9,
    )


def test_pixel_content_type_priority(pixel):
    rows = [{"from": "clothing", "to": "home_listing"}]
    event = {
        "type": "track",
        "event": "Product Viewed",
        "properties": {"product_id": "p", "category": "Clothing"},
    }
    assert pixel_event(pixel, event, categoryToContent=rows)["custom_data"]["content_type"] == "home_listing"
    event["properties"]["content_type"] = "vehicle"
    assert pixel_event(pixel, event, categoryToContent=rows)["custom_data"]["content_type"] == "vehicle"
    event["integrations"] = {"Facebook Pixel": {"contentType": "flight"}}
    assert pixel_event(pixel, event, categoryToContent=rows)["custom_data"]["content_type"] == "flight"


def test_pixel_flattens_nested_custom_properties(pixel):
    event = {
        "type": "track",
        "event": "Spin Won",
        "properties": {"prize": {"kind": "coupon", "codes": ["A", "B"]}},
    }
    custom = pixel_event(pixel, event)["custom_data"]
    assert custom == {"prize.kind": "coupon", "prize.codes[0]": "A", "prize.codes[1]": "B", "currency": "USD"}


def test_pixel_search(pixel):
    event = {"type": "track", "event": "Products Searched", "properties": {"query": "mugs", "value": 3}}
    custom = pixel_event(pixel, event)["custom_data"]
    assert (custom["search_string"], custom["value"]) == ("mugs", 3) and "content_type" not in custom


def test_pixel_settings_of_device_mode_are_accepted_without_effect(pixel):
    config = {
        "legacyConversionPixelId": {"web": [{"from": "a", "to": "b"}]},
        "useUpdatedMapping": True,
        "autoConfig": {"web": True},
        "eventCustomProperties": [{"eventCustomProperties": ""}],
    }
    plain = pixel_event(pixel, {"type": "track", "event": "Lead"})
    assert pixel_event(pixel, {"type": "track", "event": "Lead"}, **config) == plain
