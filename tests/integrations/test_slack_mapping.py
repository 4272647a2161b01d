"""Slack settings the fixtures do not exercise: the name fallbacks, the default trait list, template and
channel row matching, the deny list's exact matching and the template variables.

Expectations are written from RudderStack's Slack destination docs (docs page and rudder-cli config reference)
and Slack's incoming-webhook docs; all events are hand-written for these tests.
"""

from __future__ import annotations

import json

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError
from sdk.registry import load_connector

HOOK = "https://hooks.slack.com/services/T0/B0/main"
CTX = TransformContext.at("2024-05-01T12:00:00Z")


@pytest.fixture(scope="module")
def slack():
    return load_connector("slack")


def post(slack, event: dict, config: dict | None = None) -> tuple[str, dict]:
    (req,) = slack.transform(event, {"webhookUrl": HOOK, **(config or {})}, CTX)
    assert req.form is not None and set(req.form) == {"payload"}
    return req.url, json.loads(req.form["payload"])


@pytest.mark.parametrize(
    "event, name",
    [
        ({"userId": "u", "traits": {"username": "ada_l", "email": "a@x.io"}}, "ada_l"),
        ({"userId": "u", "traits": {"email": "a@x.io"}}, "a@x.io"),
        ({"userId": "u", "traits": {"firstName": "Ada"}}, "Ada"),
        ({"userId": "u"}, "User u"),
        ({"anonymousId": "an"}, "Anonymous user an"),
    ],
)
def test_the_name_falls_back_in_the_documented_order(slack, event, name):
    _, payload = post(slack, {"type": "identify", **event}, {"identifyTemplate": "{{name}}"})
    assert payload["text"] == name


def test_without_an_allowlist_every_trait_is_listed(slack):
    _, payload = post(slack, {"type": "identify", "userId": "u", "traits": {"name": "Ada", "plan": "pro"}})
    assert payload["text"] == "Identified Adaname: Ada plan: pro "


def test_track_templates_see_properties_lists_and_allowlisted_traits(slack):
    cfg = {
        "eventTemplateSettings": [
            {"eventName": "Paid", "eventTemplate": "{{propertiesList}}|{{traitsList.plan}}|{{traits}}"}
        ],
        "whitelistedTraitsSettings": [{"trait": "plan"}],
    }
    event = {
        "type": "track",
        "event": "Paid",
        "userId": "u",
        "properties": {"a": 1, "b": "x"},
        "context": {"traits": {"plan": "pro", "x": 1}},
    }
    _, payload = post(slack, event, cfg)
    assert payload["text"] == "a: 1 b: x |pro|plan: pro "


def test_the_first_matching_row_with_a_template_wins_and_names_match_exactly(slack):
    cfg = {
        "eventTemplateSettings": [
            {"eventName": "order completed", "eventTemplate": "lower"},
            {"eventName": "Order", "eventRegex": True, "eventTemplate": ""},
            {"eventName": "Order Completed", "eventTemplate": "exact"},
            {"eventName": "Order", "eventRegex": True, "eventTemplate": "regex"},
        ]
    }
    _, payload = post(slack, {"type": "track", "event": "Order Completed", "userId": "u"}, cfg)
    assert payload["text"] == "exact"


def test_channel_rows_without_the_field_of_the_webhook_type_are_skipped(slack):
    rows = [
        {"eventName": "Paid", "eventChannelWebhook": "https://hooks.slack.com/services/T0/B1/paid"},
        {"eventName": "Paid", "eventChannel": "#money"},
    ]
    url, payload = post(
        slack, {"type": "track", "event": "Paid", "userId": "u"}, {"eventChannelSettings": rows}
    )
    assert url == HOOK and payload["channel"] == "#money"
    url, payload = post(
        slack,
        {"type": "track", "event": "Paid", "userId": "u"},
        {"eventChannelSettings": rows, "incomingWebhooksType": "modern"},
    )
    assert url == "https://hooks.slack.com/services/T0/B1/paid" and "channel" not in payload
    url, payload = post(
        slack,
        {"type": "track", "event": "Other", "userId": "u"},
        {"eventChannelSettings": rows, "incomingWebhooksType": "modern"},
    )
    assert url == HOOK


def test_identify_always_goes_to_the_main_webhook(slack):
    rows = [
        {
            "eventName": ".*",
            "eventRegex": True,
            "eventChannelWebhook": "https://hooks.slack.com/services/T0/B1/x",
        }
    ]
    url, _ = post(
        slack,
        {"type": "identify", "userId": "u"},
        {"eventChannelSettings": rows, "incomingWebhooksType": "modern"},
    )
    assert url == HOOK


def test_the_deny_list_matches_exactly_and_case_sensitively(slack):
    cfg = {"denyListOfEvents": [{"eventName": "Heartbeat"}]}
    post(slack, {"type": "track", "event": "heartbeat", "userId": "u"}, cfg)  # another name: posted
    with pytest.raises(ConfigurationError, match="deny list"):
        post(slack, {"type": "track", "event": "Heartbeat", "userId": "u"}, cfg)


def test_templates_cannot_read_settings(slack):
    _, payload = post(
        slack,
        {"type": "identify", "userId": "u"},
        {"identifyTemplate": "[{{ settings.webhookUrl }}{{webhookUrl}}]"},
    )
    assert payload["text"] == "[]"
