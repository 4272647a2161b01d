"""End to end: ``sluice up`` → Postgres and DuckDB warehouses, with a schema change and a kill -9.

5,000 events (30 track event names and identifies) from 100 users go through the real gateway,
processor and warehouse loaders. Midway a property changes type (``amount``: number → text) and a
new one appears (``coupon``). While loads are running the whole process group is killed with
SIGKILL, then restarted. Afterwards, in both warehouses:

* every acknowledged event is in ``tracks`` (or ``identifies``) and in its event table exactly once;
* ``users`` holds each user's latest traits;
* the new column exists; the values that no longer fit ``amount`` are in ``rudder_discards``.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from typing import Any

import duckdb
import httpx
import psycopg
import pytest
from support.pipeline_proc import SluiceProcess

USERS = 100
NAMES = [f"Step {i:02d}" for i in range(30)]
TOTAL = 5000
WRITE_KEY = "e2e-wh-key"


def make_events(seed: int = 7) -> list[dict[str, Any]]:
    """First half: ``amount`` is a number; second half: text for ``Step 00`` and a new ``coupon``."""
    rnd = random.Random(seed)
    events: list[dict[str, Any]] = []
    identify_seq: Counter[str] = Counter()
    for i in range(TOTAL):
        user = f"user-{rnd.randrange(USERS):03d}"
        late = i >= TOTAL // 2
        ts = f"2024-05-01T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
        if i % 10 == 0:
            identify_seq[user] += 1
            k = identify_seq[user]
            traits = {"plan": f"plan-{k}", "email": f"{user}@example.com", "logins": k}
            events.append(
                {
                    "type": "identify",
                    "userId": user,
                    "messageId": f"id-{i}",
                    "timestamp": ts,
                    "traits": traits,
                }
            )
            continue
        name = NAMES[rnd.randrange(len(NAMES))]
        props: dict[str, Any] = {"amount": rnd.randrange(1, 500), "page": f"/p/{i % 17}"}
        if late:
            props["coupon"] = f"C{i % 5}"
            if name == NAMES[0]:
                props["amount"] = "N/A"
        events.append(
            {
                "type": "track",
                "userId": user,
                "event": name,
                "messageId": f"tr-{i}",
                "timestamp": ts,
                "properties": props,
            }
        )
    return events


def send_all(url: str, events: list[dict[str, Any]], acked: set[str]) -> None:
    with httpx.Client(timeout=30) as client:
        for k in range(0, len(events), 100):
            chunk = events[k : k + 100]
            r = client.post(f"{url}/v1/batch", json={"batch": chunk}, auth=(WRITE_KEY, ""))
            assert r.status_code == 200, r.text
            acked.update(e["messageId"] for e in chunk)


def queue_rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def warehouse_facts(query: Any, schema: str) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    facts["tracks"] = query(f"SELECT id FROM {schema}.tracks")
    facts["identifies"] = query(f"SELECT id FROM {schema}.identifies")
    per_name = {}
    for name in NAMES:
        table = name.lower().replace(" ", "_")
        per_name[name] = query(f"SELECT id FROM {schema}.{table}")
    facts["per_name"] = per_name
    facts["users"] = dict(query(f"SELECT id, plan FROM {schema}.users"))
    facts["discards"] = query(
        f"SELECT table_name, column_name, column_value, row_id FROM {schema}.rudder_discards"
    )
    facts["coupon"] = query(
        f"SELECT count(*) FROM information_schema.columns WHERE table_schema = '{schema}' "
        "AND table_name = 'step_05' AND column_name = 'coupon'"
    )[0][0]
    return facts


@pytest.mark.timeout(240)
def test_e2e_postgres_and_duckdb_exactly_once_through_kill9(
    request, pg_dsn, warehouse_pg, tmp_path, measurement
):
    duck_path = tmp_path / "analytics.duckdb"
    retry = {"initial_s": 0.2, "max_backoff_s": 1, "max_age_s": 3600, "min_attempts": 3, "jitter": 0}
    wh = {"sync_every": 0.5, "max_events": 2500}
    cfg = {
        "sources": [{"name": "web", "write_key": WRITE_KEY}],
        "destinations": [
            {
                "name": "pg-wh",
                "integration": "warehouse",
                "config": {"provider": "postgres", "credentials": warehouse_pg, "dataset": "events", **wh},
                "retry": retry,
            },
            {
                "name": "duck-wh",
                "integration": "warehouse",
                "config": {"provider": "duckdb", "path": str(duck_path), "dataset": "events", **wh},
                "retry": retry,
            },
        ],
        "connections": [{"source": "web", "destinations": ["pg-wh", "duck-wh"]}],
    }
    sluice = SluiceProcess(cfg, tmp_path / "sluice", database_url=pg_dsn)
    request.addfinalizer(sluice.close)
    events = make_events()
    acked: set[str] = set()
    t0 = time.monotonic()
    sluice.start()
    send_all(sluice.url, events[: TOTAL // 2], acked)
    send_all(sluice.url, events[TOTAL // 2 :], acked)
    # Kill -9 while a load is open (recorded, being loaded) in either warehouse.
    open_load = wait_for(
        lambda: queue_rows(
            pg_dsn, "SELECT destination, load_id, events FROM warehouse_loads WHERE state = 'loading'"
        ),
        60,
        "a load in progress",
    )
    sluice.kill9()
    at_kill = dict(
        queue_rows(
            pg_dsn, "SELECT destination, count(*) FROM warehouse_loads WHERE state = 'done' GROUP BY 1"
        )
    )
    sluice.start(timeout=60)
    wait_for(
        lambda: queue_rows(
            pg_dsn, "SELECT count(*) = 0 FROM delivery_jobs WHERE state IN ('pending', 'failed')"
        )[0][0],
        150,
        "every delivery job to be loaded",
    )
    assert sluice.terminate() == 0
    elapsed = time.monotonic() - t0

    jobs = dict(queue_rows(pg_dsn, "SELECT state, count(*) FROM delivery_jobs GROUP BY 1"))
    loads = queue_rows(
        pg_dsn, "SELECT destination, state, count(*) FROM warehouse_loads GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert jobs == {"succeeded": 2 * TOTAL}, jobs
    assert len(acked) == TOTAL

    expected_tracks = {e["messageId"] for e in events if e["type"] == "track"}
    expected_identifies = {e["messageId"] for e in events if e["type"] == "identify"}
    expected_per_name = {n: {e["messageId"] for e in events if e.get("event") == n} for n in NAMES}
    latest_plan: dict[str, str] = {}
    for e in events:
        if e["type"] == "identify":
            latest_plan[e["userId"]] = e["traits"]["plan"]
    conflicts = {
        e["messageId"] for e in events if e.get("event") == NAMES[0] and e["properties"]["amount"] == "N/A"
    }

    with psycopg.connect(warehouse_pg, autocommit=True) as conn:
        pg = warehouse_facts(lambda q: conn.execute(q).fetchall(), "events")
    con = duckdb.connect(str(duck_path), read_only=True)
    try:
        duck = warehouse_facts(lambda q: con.execute(q).fetchall(), "events")
    finally:
        con.close()

    for label, facts in (("postgres", pg), ("duckdb", duck)):
        tracks = [r[0] for r in facts["tracks"]]
        assert len(tracks) == len(set(tracks)) and set(tracks) == expected_tracks, label
        identifies = [r[0] for r in facts["identifies"]]
        assert len(identifies) == len(set(identifies)) and set(identifies) == expected_identifies, label
        for name in NAMES:
            ids = [r[0] for r in facts["per_name"][name]]
            assert len(ids) == len(set(ids)) and set(ids) == expected_per_name[name], (label, name)
        assert facts["users"] == latest_plan, label
        assert facts["coupon"] == 1, label
        assert {(t, c, v) for t, c, v, _ in facts["discards"]} == {("step_00", "amount", "N/A")}, label
        assert {r[3] for r in facts["discards"]} == conflicts and len(facts["discards"]) == len(conflicts), (
            label
        )

    measurement(
        f"[warehouse e2e] {TOTAL} events x 2 warehouses in {elapsed:.1f}s; killed -9 during load "
        f"{open_load[0][1]} of {open_load[0][0]} ({open_load[0][2]} events), loads done before the kill "
        f"{at_kill}; loads {loads}; tracks once: pg {len(pg['tracks'])} duckdb {len(duck['tracks'])}; "
        f"discards {len(conflicts)} each; users {len(latest_plan)}"
    )
