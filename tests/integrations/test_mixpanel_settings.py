"""Mixpanel settings, one behaviour each, with expectations written from the documentation.

Sources: RudderStack's Mixpanel destination settings (notes of `unionProperties`, `appendProperties`,
`setOnceProperties`, `dropTraitsInTrackEvent`, the page/screen templates: "Text {{ }} will be replaced
with event payload value"), Mixpanel's Ingestion API reference (/engage $union, $append, $set_once;
/import time limits: before 1971-01-01 or more than an hour in the future is rejected) and Mixpanel's
EU/IN residency hosts.
"""

from __future__ import annotations

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError
from sdk.registry import load_connector

TOKEN = "test-token-mixpanel"
NOW = "2024-05-01T12:00:00Z"


@pytest.fixture(scope="module")
def mp():
    return load_connector("mixpanel")


def run(mp, event, config=None):
    return mp.transform(event, {"token": TOKEN, **(config or {})}, TransformContext.at(NOW, seed="t"))


def bodies(reqs):
    """(endpoint name, the one record of a json_array body) per request."""
    out = []
    for r in reqs:
        [item] = r.json_body
        out.append((r.endpoint, item))
    return out


IDENTIFY = {
    "type": "identify",
    "userId": "u-1",
    "timestamp": "2024-05-01T11:00:00Z",
    "traits": {
        "interests": ["chess", "go"],
        "favourite": "tea",
        "viewed_plans": "pro",
        "firstName": "Ana",
        "address": {"city": "Oslo", "street": "Storgata 1"},
        "plan": "free",
    },
}


def test_union_and_append_properties_become_profile_list_operations(mp):
    config = {
        "unionProperties": [{"property": "interests"}, {"property": "favourite"}, {"property": "absent"}],
        "appendProperties": [{"property": "viewed_plans"}],
    }
    ops = dict(bodies(run(mp, IDENTIFY, config)))
    assert ops["engage_union"] == {
        "$union": {"interests": ["chess", "go"], "favourite": ["tea"]},  # $union takes lists
        "$token": TOKEN,
        "$distinct_id": "u-1",
    }
    assert ops["engage_append"] == {
        "$append": {"viewed_plans": "pro"},
        "$token": TOKEN,
        "$distinct_id": "u-1",
    }
    profile = ops["engage"]["$set"]
    assert "interests" not in profile and "favourite" not in profile and "viewed_plans" not in profile
    assert profile["plan"] == "free"


def test_union_and_append_need_the_trait_to_be_there(mp):
    config = {"unionProperties": [{"property": "nothing"}], "appendProperties": [{"property": "none"}]}
    assert [name for name, _ in bodies(run(mp, IDENTIFY, config))] == ["engage"]


def test_set_once_uses_reserved_names_and_nested_paths_whatever_the_name_mapping(mp):
    config = {
        "setOnceProperties": [{"property": "firstName"}, {"property": "address.city"}],
        "useNewMapping": False,
    }
    (once_ep, once), (_, upd) = bodies(run(mp, IDENTIFY, config))
    assert once_ep == "engage_set_once"
    assert once["$set_once"] == {"$first_name": "Ana", "$city": "Oslo"}
    assert "$firstName" not in upd["$set"] and "$city" not in upd["$set"]


def test_drop_traits_in_track_event(mp):
    event = {"type": "track", "event": "E", "userId": "u", "context": {"traits": {"plan": "pro"}}}
    [(_, kept)] = bodies(run(mp, event))
    [(_, dropped)] = bodies(run(mp, event, {"dropTraitsInTrackEvent": True}))
    assert kept["properties"]["plan"] == "pro"
    assert "plan" not in dropped["properties"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Viewed {{ category }} {{ name }} screen", "Viewed Settings Privacy screen"),
        ("{{ name }} ({{ properties.tab }})", "Privacy (cookies)"),
        ("Viewed {{ tab }} {{ properties.tab }}", "Viewed cookies"),  # paths into the event payload
        ("Viewed {{ section }} {{ name }} screen", "Viewed Privacy screen"),  # no stray spaces
        ("{{ nothing }}", "Loaded a Screen"),  # renders empty: the default name
        ("{{ settings.token }}", "Loaded a Screen"),  # templates read the event only, never the settings
    ],
)
def test_screen_event_name_template(mp, template, expected):
    event = {"type": "screen", "userId": "u", "name": "Privacy", "category": "Settings",
             "properties": {"tab": "cookies"}}  # fmt: skip
    config = {"useUserDefinedScreenEventName": True, "userDefinedScreenEventTemplate": template}
    [(_, item)] = bodies(run(mp, event, config))
    assert item["event"] == expected
    [(_, default)] = bodies(run(mp, event, {**config, "useUserDefinedScreenEventName": False}))
    assert default["event"] == "Loaded a Screen"


def test_india_residency_host(mp):
    [req] = run(mp, {"type": "track", "event": "E", "userId": "u"}, {"dataResidency": "in"})
    assert req.url == "https://api-in.mixpanel.com/import"


@pytest.mark.parametrize(
    ("timestamp", "ok"),
    [
        ("2024-05-01T12:59:00Z", True),  # within the hour Mixpanel tolerates
        ("2024-05-01T13:01:00Z", False),
        ("2030-01-01T00:00:00Z", False),
        ("1970-06-01T00:00:00Z", False),  # before 1971
    ],
)
def test_time_window(mp, timestamp, ok):
    event = {"type": "track", "event": "E", "userId": "u", "timestamp": timestamp}
    if ok:
        assert run(mp, event)
    else:
        with pytest.raises(InstrumentationError):
            run(mp, event)


def test_five_years_are_counted_up_to_when_the_event_was_sent(mp):
    event = {"type": "track", "event": "E", "userId": "u", "timestamp": "2018-01-01T00:00:00Z"}
    with pytest.raises(InstrumentationError):
        run(mp, event)  # six years before now
    assert run(mp, {**event, "sentAt": "2018-01-02T00:00:00Z"})  # a day old when sent: a replay


def test_group_fans_out_per_key_and_id(mp):
    event = {"type": "group", "userId": "u", "groupId": "acme", "traits": {"team": ["red", "blue"], "n": 3}}
    config = {"groupKeySettings": [{"groupKey": "groupId"}, {"groupKey": "team"}, {"groupKey": "region"}]}
    out = bodies(run(mp, event, config))
    members = [b["$set"] for name, b in out if name == "engage"]
    groups = [(b["$group_key"], b["$group_id"]) for name, b in out if name == "groups"]
    assert members == [{"groupId": ["acme"]}, {"team": ["red", "blue"]}]
    assert groups == [("groupId", "acme"), ("team", "red"), ("team", "blue")]


def test_group_without_any_configured_key_is_a_configuration_error(mp):
    with pytest.raises(ConfigurationError):
        run(mp, {"type": "group", "userId": "u", "groupId": "g"}, {"groupKeySettings": [{"groupKey": " "}]})


def test_android_profile_fields(mp):
    event = {
        "type": "identify",
        "userId": "u",
        "context": {
            "device": {"type": "Android", "token": "fcm-1", "model": "Pixel 8"},
            "os": {"name": "Android", "version": "14"},
            "app": {"version": "2.1", "build": "210"},
        },
    }
    [(_, upd)] = bodies(run(mp, event))
    assert upd["$set"]["$android_devices"] == ["fcm-1"]
    assert upd["$set"]["$android_model"] == "Pixel 8"
    assert upd["$set"]["$android_os_version"] == "14"
    assert upd["$set"]["$android_app_version"] == "2.1"
    assert upd["$set"]["$android_app_version_code"] == "210"


def test_browser_names_follow_mixpanel(mp):
    edge = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91"
    )
    event = {"type": "track", "event": "E", "userId": "u", "channel": "web", "context": {"userAgent": edge}}
    [(_, item)] = bodies(run(mp, event))
    assert item["properties"]["$browser"] == "Microsoft Edge"
    assert item["properties"]["$browser_version"] == "120.0.2210.91"


def test_device_mode_settings_are_accepted_without_warnings(mp):
    config = {"token": TOKEN, "people": True, "sourceName": "web", "superProperties": [], "persistence": "x"}
    assert mp.config_warnings(config) == []


def test_misspelt_setting_is_refused(mp):
    with pytest.raises(ConfigurationError, match="identityMergeApi"):
        run(mp, {"type": "track", "event": "E", "userId": "u"}, {"identityMergeAPI": "simplified"})
