"""Batches: column types across events, conversions, discards, users, one row per event.

Expectations come from the warehouse docs' "data type mismatch" section (its worked example is
reproduced below) and the conversion table in the warehouse FAQ.
"""

from __future__ import annotations

import datetime as dt

from pipeline.warehouse.batch import BatchBuilder, Job

CONFIG = {"underscoreDivideNumbers": True, "allowUsersContextTraits": True}
T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def track(i: int, props: dict, event: str = "Add to Cart", ts: str | None = None) -> Job:
    ev = {
        "type": "track",
        "event": event,
        "messageId": f"m{i}",
        "userId": "u1",
        "receivedAt": ts or f"2024-05-01T12:00:{i:02d}.000Z",
        "properties": props,
    }
    return Job(i, ev, T0)


def identify(i: int, user: str, traits: dict, ts: str) -> Job:
    return Job(
        i, {"type": "identify", "messageId": f"i{i}", "userId": user, "traits": traits, "timestamp": ts}, T0
    )


def test_docs_type_mismatch_example_discards_what_cannot_be_cast():
    first = {"price": 5, "currency": "USD", "product_id": "P12345", "added_at": "2020-05-19 14:39:22"}
    second = {"price": "NA", "currency": "USD", "product_id": 789, "added_at": "05/25/2020"}
    b = BatchBuilder("postgres", CONFIG)
    one = b.build([track(1, first)], {})
    known = {t.name: dict(t.columns) for t in one.tables.values()}
    two = b.build([track(2, second)], known)
    table = two.tables["add_to_cart"]
    row = table.rows[0]
    assert "price" not in row and "added_at" not in row  # set NULL in the table...
    assert row["product_id"] == "789"  # ...an int casts into the string column
    discards = {(d["column_name"], d["column_value"]) for d in two.tables["rudder_discards"].rows}
    assert discards == {("price", "NA"), ("added_at", "05/25/2020")}
    assert all(
        d["row_id"] == "m2" and d["table_name"] == "add_to_cart" for d in two.tables["rudder_discards"].rows
    )
    assert two.discards == 2 and two.columns_added == [
        f"rudder_discards.{c}"
        for c in sorted(
            ["table_name", "row_id", "column_name", "column_value", "reason", "received_at", "uuid_ts"]
        )
    ]


def test_conversions_that_lose_nothing_are_applied():
    known = {"add_to_cart": {"price": "float", "qty": "int", "note": "string", "meta": "json"}}
    out = BatchBuilder("postgres", CONFIG).build(
        [track(1, {"price": 5, "qty": 2.0, "note": True, "meta": 3})], known
    )
    row = out.tables["add_to_cart"].rows[0]
    assert row["price"] == 5.0 and isinstance(row["price"], float)
    assert row["qty"] == 2 and row["note"] == "true" and row["meta"] == "3"
    assert out.discards == 0


def test_new_column_seen_as_int_and_float_in_one_load_is_float():
    out = BatchBuilder("postgres", CONFIG).build([track(1, {"amount": 1}), track(2, {"amount": 2.5})], {})
    t = out.tables["add_to_cart"]
    assert t.columns["amount"] == "float" and [r["amount"] for r in t.rows] == [1.0, 2.5]


def test_new_column_keeps_first_type_and_discards_others_in_the_same_load():
    out = BatchBuilder("postgres", CONFIG).build([track(1, {"size": 10}), track(2, {"size": "large"})], {})
    t = out.tables["add_to_cart"]
    assert t.columns["size"] == "int" and "size" not in t.rows[1] and out.discards == 1


def test_users_row_is_the_latest_identify_even_out_of_arrival_order():
    jobs = [
        identify(1, "u1", {"plan": "pro"}, "2024-05-01T12:00:02Z"),
        identify(2, "u1", {"plan": "free"}, "2024-05-01T12:00:01Z"),  # older, arrived later
        identify(3, "u2", {"plan": "team"}, "2024-05-01T12:00:00Z"),
    ]
    out = BatchBuilder("postgres", CONFIG).build(jobs, {})
    users = {r["id"]: r["plan"] for r in out.tables["users"].rows}
    assert users == {"u1": "pro", "u2": "team"}
    assert len(out.tables["identifies"].rows) == 3


def test_one_row_per_event_id_and_load_columns_filled():
    out = BatchBuilder("postgres", CONFIG).build([track(1, {"a": 1}), track(1, {"a": 1})], {}, now=T0)
    t = out.tables["tracks"]
    assert len(t.rows) == 1 and t.rows[0]["uuid_ts"] == T0 and t.columns["uuid_ts"] == "datetime"


def test_rejected_events_are_set_aside_with_the_reason():
    bad = Job(7, {"type": "shout", "messageId": "x"}, T0)
    out = BatchBuilder("postgres", CONFIG).build([track(1, {}), bad], {})
    assert out.job_ids == [1] and "unknown event type" in out.rejected[7] and out.events == 1
