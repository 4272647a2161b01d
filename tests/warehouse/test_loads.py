"""Loads through the pipeline into real warehouses: DuckDB (a file), Postgres (a database on the
test server) and a Parquet lake (local files), with schema evolution and discards."""

from __future__ import annotations

import json

import duckdb
import pytest
from click.testing import CliRunner
from pipeline_helpers import pipeline_config, send, sql, wait_until, webhook
from warehouse_helpers import columns, duckdb_dest, identify, postgres_dest, query, track

from pipeline.app import ThreadedPipeline
from pipeline.config import parse_config
from sdk.cli import main


def _all_loaded(dsn: str, n: int, dest: str) -> bool:
    rows = sql(dsn, "SELECT state, count(*) FROM delivery_jobs WHERE destination = %s GROUP BY 1", (dest,))
    return dict(rows).get("succeeded", 0) == n


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_loads_evolve_schema_and_discard_conflicts(kind, pg_dsn, tmp_path, request):
    if kind == "duckdb":
        dest = duckdb_dest("wh", tmp_path)
    else:
        dest = postgres_dest("wh", request.getfixturevalue("warehouse_pg"), tmp_path)
    cfg = parse_config(pipeline_config([dest]))
    first = [track(f"u{i % 3}", i, "Order Completed", price=10 + i, currency="EUR") for i in range(20)]
    first += [identify(f"u{i}", 0, plan="free", email=f"u{i}@example.com") for i in range(3)]
    second = [
        track(f"u{i % 3}", 100 + i, "Order Completed", price="unknown", coupon="SPRING") for i in range(10)
    ]
    second += [identify("u0", 1, plan="pro", email="u0@example.com")]
    with ThreadedPipeline(cfg, pg_dsn) as p:
        send(p, first)
        wait_until(lambda: _all_loaded(pg_dsn, 23, "wh"), timeout=60)
        send(p, second)
        send(p, first[:5])  # redelivered events (same messageIds) inside the dedupe window: dropped
        wait_until(lambda: _all_loaded(pg_dsn, 34, "wh"), timeout=60)

    assert query(dest, "SELECT count(*), count(DISTINCT id) FROM {s}.tracks") == [(30, 30)]
    assert query(dest, "SELECT count(*) FROM {s}.order_completed") == [(30,)]
    cols = columns(dest, "order_completed")
    assert cols["price"] == "bigint" and "coupon" in cols  # first type kept; new column added
    assert query(dest, "SELECT count(*) FROM {s}.order_completed WHERE price IS NULL") == [(10,)]
    discards = query(dest, "SELECT table_name, column_name, column_value FROM {s}.rudder_discards")
    assert sorted(set(discards)) == [("order_completed", "price", "unknown")] and len(discards) == 10
    users = dict(query(dest, "SELECT id, plan FROM {s}.users"))
    assert users == {"u0": "pro", "u1": "free", "u2": "free"}  # latest identify per user
    loads = sql(pg_dsn, "SELECT state, events, discards, columns_added FROM warehouse_loads ORDER BY id")
    assert [r[0] for r in loads] == ["done"] * len(loads) and sum(r[1] for r in loads) == 34
    assert sum(r[2] for r in loads) == 10 and any("order_completed.coupon" in r[3] for r in loads)

    config_file = tmp_path / "sluice.yaml"
    config_file.write_text(json.dumps(pipeline_config([dest])))
    out = CliRunner().invoke(
        main, ["warehouse", "status", "--config", str(config_file), "--database-url", pg_dsn]
    )
    assert out.exit_code == 0, out.output
    assert "last load   done" in out.output and "34 events" in out.output and "10 discards" in out.output
    assert "waiting     0 events" in out.output
    js = CliRunner().invoke(
        main, ["warehouse", "status", "--config", str(config_file), "--database-url", pg_dsn, "--json"]
    )
    status = json.loads(js.output)
    assert status["totals"]["events"] == 34 and status["totals"]["discards"] == 10
    assert status["last_load"]["state"] == "done" and status["waiting"] == 0 and status["dead_letters"] == 0


def test_parquet_lake_on_local_disk(pg_dsn, tmp_path):
    lake = tmp_path / "lake"
    dest = {
        "name": "lake",
        "integration": "warehouse",
        "config": {
            "provider": "filesystem",
            "bucket_url": str(lake),
            "work_dir": str(tmp_path / "lake-work"),
            "sync_every": 0.3,
        },
    }
    events = [track(f"u{i % 4}", i, "Page Scrolled", depth=i) for i in range(40)]
    with ThreadedPipeline(parse_config(pipeline_config([dest])), pg_dsn) as p:
        send(p, events)
        wait_until(lambda: _all_loaded(pg_dsn, 40, "lake"), timeout=60)
    files = sorted(str(f) for f in (lake / "lake").glob("page_scrolled/*.parquet"))
    assert files, f"no parquet files under {lake}"
    con = duckdb.connect()
    got = con.execute(
        f"SELECT count(*), count(DISTINCT id), sum(depth) FROM read_parquet({files!r})"
    ).fetchall()
    assert got == [(40, 40, sum(range(40)))]
    tracks = sorted(str(f) for f in (lake / "lake").glob("tracks/*.parquet"))
    assert con.execute(f"SELECT count(*) FROM read_parquet({tracks!r})").fetchall() == [(40,)]


def test_a_failing_warehouse_does_not_hold_up_other_destinations(pg_dsn, tmp_path, sink):
    broken = postgres_dest("wh", "postgresql://loader:pw-123456@127.0.0.1:9/none", tmp_path)
    hook = webhook("hook", sink.url("/hook"))
    events = [track(f"u{i % 5}", i, "Clicked") for i in range(50)]
    with ThreadedPipeline(parse_config(pipeline_config([broken, hook])), pg_dsn) as p:
        send(p, events)
        missing = sink.wait_for_message_ids({e["messageId"] for e in events}, timeout=30, path="/hook")
        assert not missing
        waiting = sql(
            pg_dsn, "SELECT count(*) FROM delivery_jobs WHERE destination = 'wh' AND state <> 'succeeded'"
        )
        assert waiting == [(50,)]  # the warehouse keeps its events (retrying) while the webhook got all


def test_rows_cli_answers_every_line():
    lines = [
        {"provider": "postgres", "config": {}, "event": {"type": "track", "event": "A B", "messageId": "m"}},
        {"provider": "oracle", "config": {}, "event": {"type": "track", "event": "x"}},
        "not json",
    ]
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    out = CliRunner().invoke(main, ["warehouse", "rows", "--jsonl"], input=text)
    assert out.exit_code == 0, out.output
    answers = [json.loads(x) for x in out.output.splitlines()]
    assert [r["table"] for r in answers[0]["rows"]] == ["tracks", "a_b"]
    assert (
        answers[1]["error"]["type"] == "unknown_provider" and answers[2]["error"]["type"] == "invalid_input"
    )
