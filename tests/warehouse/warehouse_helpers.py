"""Helpers for warehouse tests: destination configs, events, and reading the warehouse back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import psycopg

FAST_RETRY = {"initial_s": 0.1, "max_backoff_s": 0.3, "max_age_s": 600, "min_attempts": 3, "jitter": 0}


def duckdb_dest(name: str, tmp: Path, **config: Any) -> dict[str, Any]:
    return {
        "name": name,
        "integration": "warehouse",
        "config": {
            "provider": "duckdb",
            "path": str(tmp / f"{name}-warehouse.duckdb"),
            "work_dir": str(tmp / f"{name}-work"),
            "sync_every": 0.3,
            **config,
        },
        "retry": FAST_RETRY,
    }


def postgres_dest(name: str, url: str, tmp: Path, **config: Any) -> dict[str, Any]:
    return {
        "name": name,
        "integration": "warehouse",
        "config": {
            "provider": "postgres",
            "credentials": url,
            "work_dir": str(tmp / f"{name}-work"),
            "sync_every": 0.3,
            **config,
        },
        "retry": FAST_RETRY,
    }


def query(dest: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` in the destination's warehouse; ``{s}`` is its schema (dataset)."""
    cfg = dest["config"]
    schema = cfg.get("dataset") or dest["name"].replace("-", "_")
    text = sql.format(s=schema)
    if cfg["provider"] == "duckdb":
        con = duckdb.connect(cfg["path"], read_only=True)
        try:
            return con.execute(text).fetchall()
        finally:
            con.close()
    with psycopg.connect(cfg["credentials"], autocommit=True) as conn:
        return conn.execute(text).fetchall()


def columns(dest: dict[str, Any], table: str) -> dict[str, str]:
    schema = dest["config"].get("dataset") or dest["name"].replace("-", "_")
    rows = query(
        dest,
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_schema = '{schema}' AND table_name = '{table}'",
    )
    return {r[0]: r[1].lower() for r in rows}


def track(user: str, i: int, event: str, **props: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "messageId": f"t-{user}-{i}",
        "properties": props,
    }


def identify(user: str, i: int, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "messageId": f"i-{user}-{i}", "traits": traits}
