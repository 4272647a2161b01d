"""The row model against the documented warehouse schema.

Every expectation here is taken from the warehouse-schema documentation (tables per event type,
standard columns, naming, flattening, JSON columns, timestamps, reserved words, length limits),
written out by hand; none is produced by the code under test.
"""

from __future__ import annotations

import json

import pytest

from sdk.errors import InstrumentationError
from sdk.warehouse import event_rows
from sdk.warehouse.errors import TooManyColumnsError, UnknownProviderError

MODERN = {"underscoreDivideNumbers": True, "allowUsersContextTraits": True}
BASE = {
    "messageId": "4d5a7681-e596-40ea-a81c-bf69f9b297f1",
    "anonymousId": "59b703e3-467a-4a1d-9fe6-da27ed319619",
    "channel": "web",
    "context": {"ip": "0.0.0.0", "app": {"version": "1.2.3"}, "screen": {"density": 2}},
    "originalTimestamp": "2020-04-26T07:00:43.400Z",
    "sentAt": "2020-04-26T07:00:45.124Z",
    "receivedAt": "2020-04-26T07:00:45.558Z",
    "timestamp": "2020-04-26T07:00:44.834Z",
}
STANDARD = {
    "id": "string",
    "anonymous_id": "string",
    "channel": "string",
    "context_ip": "string",
    "context_passed_ip": "string",
    "context_app_version": "string",
    "context_screen_density": "int",
    "original_timestamp": "datetime",
    "sent_at": "datetime",
    "received_at": "datetime",
    "timestamp": "datetime",
    "uuid_ts": "datetime",
}


def rows(event: dict, provider: str = "postgres", config: dict | None = None, **options):
    return [
        r.to_wire()
        for r in event_rows({**BASE, **event}, provider, MODERN if config is None else config, options)
    ]


def test_identify_makes_identifies_and_users_rows():
    out = rows(
        {
            "type": "identify",
            "userId": "userId",
            "traits": {"email": "alex@company.com", "first_name": "Alex", "last_name": "Keener", "age": 35},
        }
    )
    assert [r["table"] for r in out] == ["identifies", "users"]
    identifies, users = out
    assert identifies["columns"] == {
        **STANDARD,
        "user_id": "string",
        "email": "string",
        "first_name": "string",
        "last_name": "string",
        "age": "int",
    }
    assert identifies["data"]["id"] == BASE["messageId"] and identifies["data"]["age"] == 35
    # users: keyed by the user id, no anonymous_id (the docs' users table), latest traits.
    assert users["data"]["id"] == "userId"
    assert "anonymous_id" not in users["columns"] and "user_id" not in users["columns"]
    assert users["data"]["email"] == "alex@company.com"


def test_track_makes_tracks_row_without_properties_and_event_table_with_them():
    out = rows(
        {
            "type": "track",
            "event": "Add to Cart",
            "properties": {"price": 5, "currency": "USD", "product_id": "P12345", "product_name": "N95 Mask"},
        }
    )
    tracks, event_table = out
    assert tracks["table"] == "tracks" and event_table["table"] == "add_to_cart"
    for r in out:
        assert r["data"]["event"] == "add_to_cart" and r["data"]["event_text"] == "Add to Cart"
        assert r["columns"]["event"] == "string"
    assert "price" not in tracks["columns"]
    assert event_table["columns"]["price"] == "int" and event_table["data"]["product_id"] == "P12345"


def test_page_group_alias_tables_and_their_own_columns():
    page = rows(
        {"type": "page", "name": "Cart Viewed", "properties": {"path": "/cart", "title": "Shopping Cart"}}
    )
    assert page[0]["table"] == "pages" and page[0]["data"]["name"] == "Cart Viewed"
    assert page[0]["data"]["path"] == "/cart"
    group = rows({"type": "group", "groupId": "groupId", "traits": {"email": "alex@keener.com", "age": 35}})
    assert group[0]["table"] == "groups" and group[0]["data"]["group_id"] == "groupId"
    alias = rows({"type": "alias", "userId": "9bb5d4c2", "previousId": "e6ab2c5e"})
    assert alias[0]["table"] == "aliases"
    assert alias[0]["data"]["user_id"] == "9bb5d4c2" and alias[0]["data"]["previous_id"] == "e6ab2c5e"


def test_nested_properties_flatten_with_parent_prefix_and_arrays_stay_one_column():
    out = rows(
        {
            "type": "track",
            "event": "Viewed",
            "properties": {
                "product": {"name": "iPhone", "version": 11},
                "products": {"iPhone": {"version": 11}, "Android": {"version": 16}},
                "list": [{"name": "iPhone"}, {"name": "Android"}],
            },
        }
    )[1]
    assert out["data"]["product_name"] == "iPhone" and out["data"]["product_version"] == 11
    assert out["data"]["products_i_phone_version"] == 11 and out["data"]["products_android_version"] == 16
    assert out["columns"]["list"] == "string" and out["data"]["list"] == [
        {"name": "iPhone"},
        {"name": "Android"},
    ]


def test_timestamp_formats_documented_as_accepted_become_datetime_columns():
    accepted = [
        "2019-09-26",
        "2009-05-19 14:39:22",
        "2019-09-26T06:30:12.984Z",
        "2020-02-11 04:56:55.175116",
        "2019-09-26T06:30:12.984+0530",
        "2019-09-26T06:30:12.984+05:30",
    ]
    props = {f"t{i}": v for i, v in enumerate(accepted)} | {"not_a_date": "05/25/2020", "word": "abc"}
    out = rows({"type": "track", "event": "Dates", "properties": props})[1]["columns"]
    assert all(out[f"t_{i}"] == "datetime" for i in range(len(accepted)))
    assert out["not_a_date"] == "string" and out["word"] == "string"


def test_standard_timestamps_are_utc_with_milliseconds():
    out = rows({"type": "track", "event": "X", "receivedAt": "2020-01-24T11:59:02.403+05:30"})[0]
    assert out["data"]["received_at"] == "2020-01-24T06:29:02.403Z"


def test_user_values_never_override_standard_columns():
    out = rows(
        {
            "type": "track",
            "event": "X",
            "properties": {
                "id": True,
                "received_at": "user value",
                "anonymousId": "user value",
                "channel": 1,
            },
        }
    )[1]
    assert out["data"]["id"] == BASE["messageId"] and out["columns"]["id"] == "string"
    assert out["data"]["received_at"] == BASE["receivedAt"]
    assert out["data"]["anonymous_id"] == BASE["anonymousId"] and out["data"]["channel"] == "web"


def test_names_snake_case_and_leading_digits_get_an_underscore():
    out = rows({"type": "track", "event": "25dollarpurchase", "properties": {"camelCaseKey": 1, "9lives": 2}})
    assert out[1]["table"] == "_25_dollarpurchase"
    assert out[1]["columns"]["camel_case_key"] == "int" and out[1]["columns"]["_9_lives"] == "int"
    legacy = rows({"type": "track", "event": "25dollarpurchase"}, config={})
    assert legacy[1]["table"] == "_25dollarpurchase"  # without underscoreDivideNumbers, as in the docs


@pytest.mark.parametrize(
    ("provider", "prefixed", "plain"),
    [
        ("postgres", "select", "tag"),
        ("rs", "tag", "account"),
        ("bq", "groups", "select_me"),
        ("snowflake", "account", "tag"),
    ],
)
def test_reserved_words_get_an_underscore_per_warehouse(provider, prefixed, plain):
    out = rows({"type": "track", "event": "X", "properties": {prefixed: 1, plain: 2}}, provider)[1]["columns"]
    case = str.upper if provider == "snowflake" else str
    assert case("_" + prefixed) in out and case(prefixed) not in out and case(plain) in out


@pytest.mark.parametrize(
    ("provider", "limit"), [("postgres", 63), ("rs", 127), ("bq", 127), ("s3_datalake", None)]
)
def test_name_length_limits(provider, limit):
    long = "a" * 200
    out = rows({"type": "track", "event": long, "properties": {long: 1}}, provider)[1]
    expected = long if limit is None else long[:limit]
    assert out["table"] == expected and expected in out["columns"]


def test_snowflake_names_are_upper_case_but_values_are_not():
    out = rows({"type": "track", "event": "Add to Cart", "properties": {"price": 5}}, "snowflake")
    assert [r["table"] for r in out] == ["TRACKS", "ADD_TO_CART"]
    assert out[1]["data"]["PRICE"] == 5 and out[1]["data"]["EVENT"] == "add_to_cart"


def test_json_paths_keep_a_nested_object_as_one_json_column_on_json_warehouses():
    event = {
        "type": "track",
        "event": "Sample",
        "properties": {"testMap": {"nestedMap": {"sample": {"p1": "v1"}}}},
        "integrations": {"All": True, "POSTGRES": {"options": {"jsonPaths": ["testMap.nestedMap"]}}},
    }
    pg = rows(event, "postgres")[1]
    assert pg["columns"]["test_map_nested_map"] == "json"
    assert json.loads(pg["data"]["test_map_nested_map"]) == {"sample": {"p1": "v1"}}
    # BigQuery treats JSON columns as strings (json-column-support docs); here the BQ key is absent,
    # so its rows flatten as usual.
    bq = rows(event, "bq")[1]
    assert bq["columns"]["test_map_nested_map_sample_p_1"] == "string"
    bq_event = {
        **event,
        "integrations": {"BQ": {"options": {"jsonPaths": ["track.properties.testMap.nestedMap"]}}},
    }
    assert rows(bq_event, "bq")[1]["columns"]["test_map_nested_map"] == "string"


def test_skip_tracks_and_users_tables():
    t = rows({"type": "track", "event": "X"}, config={**MODERN, "skipTracksTable": True})
    assert [r["table"] for r in t] == ["x"]
    u = rows({"type": "identify", "userId": "u1"}, config={**MODERN, "skipUsersTable": True})
    assert [r["table"] for r in u] == ["identifies"]


def test_lakes_have_no_column_limit_but_warehouses_do():
    props = {f"p{i}": i for i in range(250)}
    with pytest.raises(TooManyColumnsError):
        rows({"type": "track", "event": "Wide", "properties": props}, "postgres")
    assert (
        len(rows({"type": "track", "event": "Wide", "properties": props}, "s3_datalake")[1]["columns"]) > 250
    )


def test_missing_message_id_gets_a_stable_auto_id():
    event = {k: v for k, v in BASE.items() if k != "messageId"} | {"type": "track", "event": "X"}
    a = event_rows(event, "postgres", MODERN)[0].data["id"]
    b = event_rows(dict(event), "postgres", MODERN)[0].data["id"]
    assert a.startswith("auto-") and a == b


def test_bad_input_is_a_typed_error():
    with pytest.raises(InstrumentationError, match="unknown event type"):
        rows({"type": "shout"})
    with pytest.raises(UnknownProviderError, match="unknown warehouse provider"):
        rows({"type": "track", "event": "X"}, "oracle")
