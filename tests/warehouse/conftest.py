"""Fixtures for warehouse tests: a real Postgres warehouse (a throwaway database on the test server),
DuckDB files and Parquet lakes in the test's tmp dir."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict

# Test modules here import ``warehouse_helpers`` and the pipeline tests' ``pipeline_helpers``.
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "pipeline"))

from support.pg import fresh_database  # noqa: E402
from support.sink import Sink  # noqa: E402


def pg_url(dsn: str) -> str:
    """A key=value or URL DSN as a postgresql:// URL (the form dlt's credentials take)."""
    d = conninfo_to_dict(dsn)
    auth = quote(d.get("user", ""), safe="") + (
        ":" + quote(d["password"], safe="") if d.get("password") else ""
    )
    return f"postgresql://{auth}@{d.get('host', '127.0.0.1')}:{d.get('port', 5432)}/{d['dbname']}"


@pytest.fixture
def warehouse_pg(pg_server_dsn: str) -> Iterator[str]:
    """URL of an empty database used as the Postgres warehouse."""
    with fresh_database(pg_server_dsn) as dsn:
        yield pg_url(dsn)


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s
