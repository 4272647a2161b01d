"""Postgres helpers for tests: a shared server, throwaway databases, and private stoppable instances.

Why: pipeline tests must run against a real Postgres (no mocked database), yet stay independent of each
other and of test order. Each test gets its own database on a shared server (CREATE DATABASE is cheap), and
the fault test that stops Postgres gets its own private cluster so it cannot disturb other xdist workers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pipeline.postgres import ensure_local_postgres, remove_local_postgres, stop_local_postgres

REPO = Path(__file__).resolve().parents[2]
ENV_VAR = "SLUICE_TEST_DATABASE_URL"


def shared_server_dsn() -> str:
    """DSN of the server tests share: ``$SLUICE_TEST_DATABASE_URL`` (CI) or the embedded test instance."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    return ensure_local_postgres(REPO / ".sluice" / "test", dbname="postgres")


def with_dbname(dsn: str, dbname: str) -> str:
    """The same server and credentials, another database (works for URL and key=value DSNs)."""
    return make_conninfo(dsn, dbname=dbname)


def dbname_of(dsn: str) -> str:
    return conninfo_to_dict(dsn).get("dbname") or ""


def create_database(server_dsn: str, prefix: str = "sluice_t") -> str:
    """Create an empty database with a unique name; return its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return with_dbname(server_dsn, name)


def drop_database(server_dsn: str, dsn: str) -> None:
    """Drop a database made by ``create_database``, disconnecting stragglers (e.g. a killed pipeline)."""
    name = dbname_of(dsn)
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def fresh_database(server_dsn: str) -> Iterator[str]:
    dsn = create_database(server_dsn)
    try:
        yield dsn
    finally:
        try:
            drop_database(server_dsn, dsn)
        except psycopg.Error:
            pass  # the server may be down at the end of a fault test; the database is throwaway anyway


def reachable_tmpdir(prefix: str = "sluice-t-") -> Path:
    """A fresh folder the Postgres service user can pass through (0711), for embedded clusters.

    pytest's own temporary folders sit under a 0700 directory, and the embedded Postgres never opens up
    parent directories by itself (it fails and says how to fix it instead), so tests that start one
    make their folder here, and say so, as an administrator would. Remove it with ``shutil.rmtree``.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o711)
    return path


class PrivatePostgres:
    """A Postgres cluster owned by one test, which may stop and start it at will (fault tests).

    It listens on a Unix socket inside ``base_dir``, so its DSN is stable across restarts.
    """

    def __init__(self, base_dir: Path):
        self.base_dir = Path(base_dir)
        self.data_dir = self.base_dir / "pgdata"
        self.dsn: str | None = None

    def start(self) -> str:
        self.dsn = ensure_local_postgres(self.data_dir, dbname="sluice")
        return self.dsn

    def stop(self, mode: str = "immediate") -> bool:
        """``immediate`` is a crash-like stop (no checkpoint, clients cut off); ``fast`` is a clean one."""
        return stop_local_postgres(self.data_dir, mode=mode)

    def remove(self) -> None:
        remove_local_postgres(self.data_dir)
        shutil.rmtree(self.base_dir, ignore_errors=True)
