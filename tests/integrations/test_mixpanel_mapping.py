"""Mixpanel mapping: hand-written events, asserting the behaviour users depend on."""

from __future__ import annotations

import base64
import json

import pytest

from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, UnsupportedEventError
from sdk.registry import load_connector

TOKEN = "test-token-mixpanel"
CFG = {"token": TOKEN}
NOW = "2024-05-01T12:00:00Z"
OLD = "2015-01-01T00:00:00Z"  # more than five years before NOW


def ctx(seed: str = "t") -> TransformContext:
    return TransformContext.at(NOW, seed=seed)


@pytest.fixture(scope="module")
def mp():
    return load_connector("mp")


def run(mp, event, config=None):
    return mp.transform(event, {**CFG, **(config or {})}, ctx())


def only(reqs):
    [req] = reqs
    [item] = req.json_body
    return req, item


def test_lookup_by_peer_type_and_rudder_type(mp):
    assert load_connector("MP") is mp
    assert load_connector("mixpanel") is mp


def test_track_goes_to_import_with_token_basic_auth(mp):
    event = {
        "type": "track",
        "event": "Kettle Boiled",
        "userId": "u-1",
        "anonymousId": "a-1",
        "messageId": "m-1",
        "timestamp": "2024-04-30T10:00:00.500Z",
        "properties": {"litres": 1.5},
        "context": {"os": {"name": ""}, "app": {"version": "2.0"}, "traits": {"plan": "free"}},
    }
    req, item = only(run(mp, event))
    assert req.url == "https://api.mixpanel.com/import"
    assert req.params == {"strict": "0"}
    assert req.headers["Authorization"] == "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()
    props = item["properties"]
    assert item["event"] == "Kettle Boiled"
    assert props["distinct_id"] == "u-1" and props["$user_id"] == "u-1"
    assert props["time"] == 1714471200500
    assert props["$insert_id"] == "m-1"
    assert props["token"] == TOKEN
    assert props["litres"] == 1.5 and props["plan"] == "free"  # properties, then context.traits
    assert props["$app_version_string"] == "2.0"
    assert "$os" not in props  # empty SDK placeholders are not sent
    assert "$device_id" not in props  # original ID merge


def test_simplified_anonymous_track_uses_device_prefix_and_eu_host(mp):
    event = {"type": "track", "event": "Opened", "anonymousId": "dev-9", "timestamp": "2024-04-30T00:00:00Z"}
    req, item = only(
        run(mp, event, {"identityMergeApi": "simplified", "dataResidency": "eu", "strictMode": True})
    )
    assert req.url == "https://api-eu.mixpanel.com/import"
    assert req.params == {"strict": "1"}
    assert item["properties"]["distinct_id"] == "$device:dev-9"
    assert item["properties"]["$device_id"] == "dev-9"
    assert "$user_id" not in item["properties"]


def test_browser_only_for_web_channel(mp):
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
    base = {"type": "track", "event": "E", "userId": "u", "context": {"userAgent": ua}}
    _, web = only(run(mp, {**base, "channel": "web"}))
    _, mobile = only(run(mp, {**base, "channel": "mobile"}))
    assert web["properties"]["$browser"] == "Firefox"
    assert web["properties"]["$browser_version"] == "125.0"
    assert "$browser" not in mobile["properties"]


def test_revenue_and_counters_become_profile_updates_before_the_event(mp):
    event = {
        "type": "track",
        "event": "Paid",
        "userId": "u-2",
        "timestamp": "2024-04-30T10:00:00Z",
        "properties": {"revenue": "12.5", "logins": 1, "empty": ""},
    }
    append, add, imp = run(mp, event, {"propIncrements": [{"property": "logins"}, {"property": "empty"}]})
    assert append.url == add.url == "https://api.mixpanel.com/engage"
    assert append.json_body == [
        {
            "$append": {"$transactions": {"$time": "2024-04-30T10:00:00.000Z", "$amount": 12.5}},
            "$token": TOKEN,
            "$distinct_id": "u-2",
        }
    ]
    assert add.json_body[0]["$add"] == {"logins": 1}
    assert imp.url.endswith("/import")


def test_page_name_default_and_template(mp):
    event = {"type": "page", "name": "Home", "category": "Top", "userId": "u", "properties": {"path": "/"}}
    _, item = only(run(mp, event))
    assert item["event"] == "Loaded a Page"
    assert item["properties"]["name"] == "Home" and item["properties"]["category"] == "Top"
    templ = {
        "useUserDefinedPageEventName": True,
        # Placeholders are paths into the event payload (RudderStack's setting note), properties included.
        "userDefinedPageEventTemplate": "Saw {{ category }}/{{ properties.path }}",
    }
    _, item = only(run(mp, event, templ))
    assert item["event"] == "Saw Top//"


def test_long_message_id_keeps_its_last_36_characters(mp):
    uuid = "0123abcd-4567-89ef-0123-456789abcdef"
    _, item = only(run(mp, {"type": "screen", "userId": "u", "messageId": f"1714550400123-{uuid}"}))
    assert item["properties"]["$insert_id"] == uuid
    assert item["event"] == "Loaded a Screen"


def test_identify_new_mapping_set_once_and_merge(mp):
    event = {
        "type": "identify",
        "userId": "u-3",
        "anonymousId": "a-3",
        "traits": {"firstName": "Ana", "lastName": "Lind", "hobby": "chess", "address": {"city": "Oslo"}},
        "context": {"ip": "192.0.2.1", "traits": {"email": "ana@example.com"}},
    }
    # Mixpanel accepts $merge only from projects holding the API secret (Merge Identities reference), and
    # RudderStack sends it only "along with the Mixpanel API Secret": without it, no $merge.
    config = {"useNewMapping": True, "setOnceProperties": [{"property": "hobby"}]}
    assert len(run(mp, event, config)) == 2
    once, setter, merge = run(mp, event, {**config, "apiSecret": "secret-1"})
    assert once.json_body == [{"$set_once": {"hobby": "chess"}, "$token": TOKEN, "$distinct_id": "u-3"}]
    [upd] = setter.json_body
    assert upd["$distinct_id"] == "u-3" and upd["$ip"] == "192.0.2.1"
    assert upd["$time"] is None  # the event has no time
    assert upd["$set"] == {
        "$first_name": "Ana",
        "$last_name": "Lind",
        "$name": "Ana Lind",
        "$email": "ana@example.com",
        "$city": "Oslo",
    }
    assert merge.url.endswith("/import")
    assert merge.json_body == [
        {"event": "$merge", "properties": {"$distinct_ids": ["u-3", "a-3"], "token": TOKEN}}
    ]


def test_identify_legacy_names_and_ios_push_token(mp):
    event = {
        "type": "identify",
        "userId": "u-4",
        "traits": {"first_name": "Bo"},
        "context": {"active": False, "device": {"type": "iOS", "token": "apns-1", "model": "iPad8,1"}},
    }
    [req] = run(mp, event, {"identityMergeApi": "simplified"})
    [upd] = req.json_body
    assert upd["$set"]["$firstName"] == "Bo"
    assert upd["$set"]["$ios_devices"] == ["apns-1"]
    assert upd["$set"]["$ios_device_model"] == "iPad8,1"
    assert upd["$ignore_time"] is True


def test_group_fans_out_per_group_id(mp):
    event = {"type": "group", "userId": "u-5", "traits": {"team": ["red", "blue"], "size": 4}}
    member, red, blue = run(mp, event, {"groupKeySettings": [{"groupKey": "team"}]})
    assert member.json_body[0]["$set"] == {"team": ["red", "blue"]}
    assert red.url == "https://api.mixpanel.com/groups"
    assert [r.json_body[0]["$group_id"] for r in (red, blue)] == ["red", "blue"]
    assert red.json_body[0]["$set"] == {"team": ["red", "blue"], "size": 4}


def test_alias_original_and_refusals(mp):
    _, item = only(run(mp, {"type": "alias", "userId": "new", "previousId": "old"}))
    assert item == {
        "event": "$create_alias",
        "properties": {"distinct_id": "old", "alias": "new", "token": TOKEN},
    }
    with pytest.raises(InstrumentationError):
        run(mp, {"type": "alias", "userId": "same", "previousId": "same"})
    with pytest.raises(InstrumentationError):
        run(mp, {"type": "alias", "userId": "only"})
    with pytest.raises(UnsupportedEventError):
        run(mp, {"type": "alias", "userId": "new", "previousId": "old"}, {"identityMergeApi": "simplified"})


@pytest.mark.parametrize(
    ("event", "config", "error"),
    [
        ({"type": "track", "userId": "u"}, {}, InstrumentationError),  # no event name
        ({"type": "track", "event": "E"}, {}, InstrumentationError),  # no user at all
        ({"type": "track", "event": "E", "userId": "u", "messageId": 7}, {}, InstrumentationError),
        ({"type": "track", "event": "E", "userId": True}, {}, InstrumentationError),  # not an id
        ({"type": "track", "event": "E", "userId": "u", "timestamp": OLD}, {}, InstrumentationError),
        ({"type": "group", "userId": "u", "traits": {"x": 1}}, {}, ConfigurationError),
        ({"type": "group", "userId": "u", "traits": {"x": 1}}, {"groupKeySettings": [{"groupKey": "team"}]},
         InstrumentationError),
    ],
)  # fmt: skip
def test_typed_errors(mp, event, config, error):
    with pytest.raises(error):
        run(mp, event, config)


def test_missing_token_is_a_configuration_error(mp):
    with pytest.raises(ConfigurationError):
        mp.transform({"type": "track", "event": "E", "userId": "u"}, {}, ctx())


@pytest.mark.parametrize(
    "event",
    [
        {"type": "track", "event": "E", "userId": "u", "properties": "not-a-dict", "context": ["x"]},
        {"type": "identify", "userId": 42, "traits": None, "context": {"traits": "s", "device": {"type": 5}}},
        {
            "type": "page",
            "anonymousId": "a",
            "name": {"deep": [1, {"x": None}]},
            "context": {"campaign": [1]},
        },
        {"type": "group", "userId": "u", "groupId": {"a": 1}, "traits": {"team": [None, 3, "x" * 5000]}},
    ],
)
def test_odd_shapes_map_or_fail_typed(mp, event):
    config = {"groupKeySettings": [{"groupKey": "team"}]}
    first = [r.to_wire() for r in run(mp, event, config)]
    assert first == [r.to_wire() for r in run(mp, event, config)]  # deterministic
    for r in first:
        assert r["url"].startswith("https://")
        json.dumps(r["json"])


def test_batching_merges_import_events_and_caps_groups(mp):
    reqs = []
    for i in range(3):
        reqs += run(mp, {"type": "track", "event": "E", "userId": f"u{i}", "messageId": f"m{i}"})
    reqs += run(mp, {"type": "group", "userId": "u", "traits": {"team": [f"t{i}" for i in range(250)]}},
                {"groupKeySettings": [{"groupKey": "team"}]})  # fmt: skip
    batches = mp.batch(reqs, CFG)
    imports = [(idx, r) for idx, r in batches if r.url.endswith("/import")]
    assert imports == [([0, 1, 2], imports[0][1])]
    assert [p["properties"]["$insert_id"] for p in imports[0][1].json_body] == ["m0", "m1", "m2"]
    groups = [r for _, r in batches if r.url.endswith("/groups")]
    assert [len(r.json_body) for r in groups] == [200, 50]
