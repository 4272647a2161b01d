"""The embedded local Postgres behind ``sluice up`` with no DATABASE_URL.

Why these tests: "works on a fresh machine with nothing configured" is a promise of the product; these
check that the data survives a stop/start, that a second call reuses the running server instead of
starting another, and that a folder that is not a database gets a helpful error instead of being wiped.
"""

from __future__ import annotations

import psycopg
import pytest

from pipeline.postgres import (
    EmbeddedPostgresError,
    ensure_local_postgres,
    local_postgres_status,
    remove_local_postgres,
    stop_local_postgres,
)


@pytest.mark.timeout(120)
def test_start_reuse_stop_restart_keeps_data(tmp_path_factory):
    project = tmp_path_factory.mktemp("proj")
    base = project / ".sluice"
    try:
        dsn = ensure_local_postgres(base)
        assert (base / "pgdata" / "PG_VERSION").exists(), "data must live in the project folder"
        pid = local_postgres_status(base)["pid"]
        with psycopg.connect(dsn) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('survives restarts')")
        assert ensure_local_postgres(base) == dsn
        assert local_postgres_status(base)["pid"] == pid, "a running server must be reused, not restarted"

        assert stop_local_postgres(base) is True
        assert local_postgres_status(base)["running"] is False
        assert stop_local_postgres(base) is False
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2)

        assert ensure_local_postgres(base) == dsn
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT v FROM kept").fetchone() == ("survives restarts",)
            # durability settings are not weakened for speed
            assert conn.execute("SHOW fsync").fetchone() == ("on",)
            assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    finally:
        remove_local_postgres(base)
    assert not (base / "pgdata").exists()


def test_refuses_a_folder_that_is_not_a_database(tmp_path_factory):
    base = tmp_path_factory.mktemp("proj") / ".sluice"
    (base / "pgdata").mkdir(parents=True)
    (base / "pgdata" / "notes.txt").write_text("my files")
    with pytest.raises(EmbeddedPostgresError, match="not a Postgres data folder"):
        ensure_local_postgres(base)
    assert (base / "pgdata" / "notes.txt").read_text() == "my files"
