"""Adobe Analytics settings the fixtures do not exercise: visitor ID / timestamp rules, page-view naming, the
tracking server choice, false values, product identifiers and the remaining override properties.

Expectations are written from RudderStack's Adobe Analytics docs (setup guide, cloud mode, rudder-cli config
reference) and Adobe's Data Insertion API tag reference; all events are hand-written for these tests.
"""

from __future__ import annotations

import re

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, UnsupportedEventError
from sdk.registry import load_connector

BASE = {"reportSuiteIds": "rs1", "trackingServerSecureUrl": "acme.sc.omtrdc.net"}
EVENT = {
    "type": "track",
    "event": "Product Viewed",
    "userId": "u-1",
    "anonymousId": "a-1",
    "timestamp": "2024-05-01T11:00:00Z",
    "context": {"ip": "198.51.100.1", "page": {"url": "https://x.example/p"}},
    "properties": {"name": "Chair", "product_id": "p-1", "sku": "S-1", "price": 5, "quantity": 2},
}


@pytest.fixture(scope="module")
def aa():
    return load_connector("adobe_analytics")


def hit(aa, config: dict, event: dict | None = None) -> str:
    (req,) = aa.transform(event or EVENT, {**BASE, **config}, TransformContext.at("2024-05-01T12:00:00Z"))
    assert req.url == "https://acme.sc.omtrdc.net/b/ss//6" or req.url.endswith("/b/ss//6")
    return req.text


def tag(text: str, name: str) -> str | None:
    m = re.search(rf"<{name}>(.*?)</{name}>", text)
    return m.group(1) if m else None


@pytest.mark.parametrize(
    "config, visitor, timestamp",
    [
        ({}, None, None),  # dropVisitorId defaults on, timestampOption to disabled
        ({"dropVisitorId": False}, "u-1", None),  # disabled: visitorID
        ({"dropVisitorId": False, "timestampOption": "hybrid", "preferVisitorId": True}, "u-1", None),
        (
            {"timestampOption": "enabled"},
            None,
            None,
        ),  # cloud mode sends no timestamp without the reporting flag
        ({"timestampOption": "enabled", "timestampOptionalReporting": True}, None, "2024-05-01T11:00:00Z"),
        ({"timestampOption": "hybrid", "timestampOptionalReporting": True}, None, "2024-05-01T11:00:00Z"),
        (
            {"dropVisitorId": False, "timestampOption": "optional", "timestampOptionalReporting": True},
            None,
            None,
        ),
    ],
)
def test_visitor_id_and_timestamp_follow_the_documented_rules(aa, config, visitor, timestamp):
    text = hit(aa, config)
    assert tag(text, "visitorID") == visitor
    assert tag(text, "timestamp") == timestamp


def test_visitor_id_prefers_the_integrations_object_then_user_then_anonymous_id(aa):
    cfg = {"dropVisitorId": False}
    assert (
        tag(hit(aa, cfg, {**EVENT, "integrations": {"Adobe Analytics": {"visitorId": "v-9"}}}), "visitorID")
        == "v-9"
    )
    anon = {k: v for k, v in EVENT.items() if k != "userId"}
    assert tag(hit(aa, cfg, anon), "visitorID") == "a-1"


def test_no_fallback_visitor_id_with_a_marketing_cloud_id_drops_user_and_anonymous_ids(aa):
    event = {**EVENT, "integrations": {"ADOBE_ANALYTICS": {"marketingCloudId": "mc-1"}}}
    text = hit(aa, {"dropVisitorId": False, "noFallbackVisitorId": True}, event)
    assert tag(text, "visitorID") is None and tag(text, "marketingCloudVisitorID") == "mc-1"


def test_page_views_name_the_page_unless_track_page_name_is_off(aa):
    event = {**EVENT, "properties": {**EVENT["properties"], "overridePageView": True}}
    text = hit(aa, {}, event)
    assert tag(text, "pageUrl") == "https://x.example/p" and tag(text, "linkType") is None
    assert tag(text, "pageName") == "https://x.example/p"  # no page name: the URL
    assert tag(hit(aa, {"pageNameFallbackTostring": False}, event), "pageName") is None
    assert tag(hit(aa, {"trackPageName": False}, event), "pageName") is None
    named = {
        **event,
        "context": {**EVENT["context"], "page": {"url": "https://x.example/p", "name": "Chair page"}},
    }
    assert tag(hit(aa, {}, named), "pageName") == "Chair page"


def test_secure_server_is_used_unless_use_secure_server_side_is_off(aa):
    cfg = {
        "trackingServerSecureUrl": "https://secure.sc.omtrdc.net/",
        "trackingServerUrl": "plain.sc.omtrdc.net",
    }
    (req,) = aa.transform(EVENT, {**BASE, **cfg}, TransformContext.at("2024-05-01T12:00:00Z"))
    assert req.url == "https://secure.sc.omtrdc.net/b/ss//6"
    (req,) = aa.transform(
        EVENT, {**BASE, **cfg, "useSecureServerSide": False}, TransformContext.at("2024-05-01T12:00:00Z")
    )
    assert req.url == "https://plain.sc.omtrdc.net/b/ss//6"


def test_false_values_are_sent_only_with_send_false_values(aa):
    event = {**EVENT, "properties": {**EVENT["properties"], "member": False}}
    cfg = {"eVarMapping": [{"from": "member", "to": "3"}]}
    assert tag(hit(aa, cfg, event), "eVar3") is None
    assert tag(hit(aa, {**cfg, "sendFalseValues": True}, event), "eVar3") == "false"


@pytest.mark.parametrize("identifier, want", [("name", "Chair"), ("id", "p-1"), ("sku", "S-1")])
def test_product_identifier_picks_the_product_field(aa, identifier, want):
    assert tag(hit(aa, {"productIdentifier": identifier}), "products") == f";{want};2;10.00"


def test_override_lists_hiers_and_product_string_replace_the_mapped_values(aa):
    event = {
        **EVENT,
        "properties": {
            **EVENT["properties"],
            "colors": ["red", "blue"],
            "overrideLists": {"list3": "a,b"},
            "overrideHiers": {"hier2": "x|y"},
            "overrideProductString": ";custom;1;1.00",
        },
    }
    text = hit(aa, {"listMapping": [{"from": "colors", "to": "1", "delimiter": ","}]}, event)
    assert tag(text, "list3") == "a,b" and tag(text, "list1") is None
    assert tag(text, "hier2") == "x|y"
    assert tag(text, "products") == ";custom;1;1.00"


def test_prop_rows_join_lists_with_their_delimiter(aa):
    event = {**EVENT, "properties": {**EVENT["properties"], "tags": ["a", "b"], "n": 7}}
    cfg = {
        "customPropsMapping": [
            {"from": "tags", "to": "1", "delimiter": ";"},
            {"from": "n", "to": "2", "delimiter": ","},
        ]
    }
    text = hit(aa, cfg, event)
    assert tag(text, "prop1") == "a;b" and tag(text, "prop2") == "7"


def test_event_values_are_escaped_in_the_xml(aa):
    event = {**EVENT, "properties": {**EVENT["properties"], "name": "<b>A & B</b>"}}
    assert tag(hit(aa, {}, event), "products") == ";&lt;b&gt;A &amp; B&lt;/b&gt;;2;10.00"


def test_errors(aa):
    ctx = TransformContext.at("2024-05-01T12:00:00Z")
    with pytest.raises(InstrumentationError, match="neither an e-commerce event nor mapped"):
        aa.transform({**EVENT, "event": "Something Else"}, BASE, ctx)
    with pytest.raises(InstrumentationError, match="Event name is not present"):
        aa.transform({"type": "page", "anonymousId": "a"}, BASE, ctx)
    with pytest.raises(ConfigurationError, match="trackingServerSecureUrl"):
        aa.transform(EVENT, {"reportSuiteIds": "rs1"}, ctx)
    with pytest.raises(UnsupportedEventError):
        aa.transform({"type": "identify", "userId": "u"}, BASE, ctx)
