"""Connections, migrations and named queries.

SQL lives in ``queries.sql`` (``-- name: x`` blocks) and ``migrations/NNN_*.sql``; Python looks
statements up by name and passes parameters, so no SQL is ever assembled from strings here.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
MIGRATIONS_DIR = HERE / "migrations"
QUERIES_FILE = HERE / "queries.sql"

_NAME_RE = re.compile(r"^--\s*name:\s*([a-z0-9_]+)\s*$", re.MULTILINE)


@lru_cache(maxsize=1)
def queries() -> dict[str, str]:
    """All named queries of the queue."""
    return parse_queries(QUERIES_FILE.read_text())


def parse_queries(text: str) -> dict[str, str]:
    """Named queries of a SQL file; a block runs from its ``-- name:`` line to the next one."""
    out: dict[str, str] = {}
    marks = list(_NAME_RE.finditer(text))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = "\n".join(
            line for line in text[m.end() : end].strip().splitlines() if not line.lstrip().startswith("--")
        ).strip()
        out[m.group(1)] = (
            body.rstrip(";").strip() if not body.upper().startswith("COPY") else body.rstrip(";")
        )
    return out


def q(name: str) -> str:
    """The SQL text of query ``name`` (KeyError names the missing query)."""
    try:
        return queries()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in {QUERIES_FILE}") from None


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every ``NNN_name.sql`` file, in version order."""
    out = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = re.match(r"^(\d+)_(.+)\.sql$", path.name)
        if not m:
            continue
        out.append((int(m.group(1)), m.group(2), path.read_text()))
    return out


def migrate(dsn: str) -> list[int]:
    """Apply pending migrations in one transaction each, under an advisory lock; returns versions applied."""
    applied_now: list[int] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(q("migrations_table"))
        for version, name, sql in migrations():
            with conn.transaction():
                conn.execute(q("migrations_lock"))
                done = {r[0] for r in conn.execute(q("migrations_applied")).fetchall()}
                if version in done:
                    continue
                conn.execute(sql)
                conn.execute(q("migration_record"), {"version": version, "name": name})
                applied_now.append(version)
        conn.execute(q("ensure_gateway_partitions"), {"extra": 0})
        conn.execute(q("ensure_delivery_partitions"), {"extra": 0})
        conn.execute(q("ensure_dedupe_partitions"))
    return applied_now


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for log lines and error messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", re.sub(r"password=\S+", "password=***", dsn))


async def connect(dsn: str, **kwargs: Any) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(dsn, autocommit=True, connect_timeout=5, **kwargs)


def copy_text(value: str | None) -> str:
    """Escape one field for COPY's text format."""
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


def copy_json(text: str) -> str:
    """Escape compact JSON (which has no raw control characters) for COPY's text format."""
    return text.replace("\\", "\\\\") if "\\" in text else text
