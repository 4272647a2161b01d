"""The embedded local Postgres behind ``sluice up`` with no DATABASE_URL.

Why these tests: "works on a fresh machine with nothing configured" is a promise of the product; these
check that the data survives a stop/start, that a second call reuses the running server instead of
starting another, and that a folder that is not a database gets a helpful error instead of being wiped.
And, since the cluster holds every event (issue 11 item 10): other local users can neither reach its
socket nor log in without the password, and parent directories are never opened up silently.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from support.pg import reachable_tmpdir

from pipeline.postgres import (
    EmbeddedPostgresError,
    ensure_local_postgres,
    local_postgres_status,
    remove_local_postgres,
    start_local_postgres,
    stop_local_postgres,
)
from pipeline.postgres.embedded import _pick_runner

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="switching to other local users needs root (CI is root)"
)


@pytest.fixture
def project():
    path = reachable_tmpdir()
    try:
        yield path
    finally:
        remove_local_postgres(path / ".sluice")
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.timeout(120)
def test_start_reuse_stop_restart_keeps_data(project):
    base = project / ".sluice"
    dsn = ensure_local_postgres(base)
    assert (base / "pgdata" / "PG_VERSION").exists(), "data must live in the project folder"
    pid = local_postgres_status(base)["pid"]
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('survives restarts')")
    again = start_local_postgres(base)
    assert again.dsn == dsn and again.started is False and again.pid == pid
    assert local_postgres_status(base)["pid"] == pid, "a running server must be reused, not restarted"

    assert stop_local_postgres(base) is True
    assert local_postgres_status(base)["running"] is False
    assert stop_local_postgres(base) is False
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)

    assert start_local_postgres(base).started is True
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT v FROM kept").fetchone() == ("survives restarts",)
        # durability settings are not weakened for speed
        assert conn.execute("SHOW fsync").fetchone() == ("on",)
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    remove_local_postgres(base)
    assert not (base / "pgdata").exists()


def test_refuses_a_folder_that_is_not_a_database(project):
    base = project / ".sluice"
    (base / "pgdata").mkdir(parents=True)
    (base / "pgdata" / "notes.txt").write_text("my files")
    with pytest.raises(EmbeddedPostgresError, match="not a Postgres data folder"):
        ensure_local_postgres(base)
    assert (base / "pgdata" / "notes.txt").read_text() == "my files"


def psql_as(user: str, socket_dir: str, *extra: str) -> subprocess.CompletedProcess:
    psql = _pick_runner().bindir / "psql"
    return subprocess.run(
        [
            "runuser",
            "-u",
            user,
            "--",
            str(psql),
            "-h",
            socket_dir,
            "-p",
            "5432",
            "-U",
            "postgres",
            "-w",
            "-d",
            "postgres",
            "-c",
            "SELECT 1",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )


@as_root
@pytest.mark.timeout(120)
def test_other_local_users_cannot_connect_without_the_password(project):
    base = project / ".sluice"
    dsn = ensure_local_postgres(base)
    sock = base / "run"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o700
    passfile = base / "pgpass"
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600 and passfile.stat().st_uid == os.geteuid()
    assert "password" not in dsn and passfile.read_text().split(":")[3] == "postgres"
    hba = (base / "pgdata" / "pg_hba.conf").read_text()
    assert not [ln for ln in hba.splitlines() if ln.strip() and not ln.startswith("#") and "trust" in ln]
    # Any local account: cannot even reach the socket.
    nobody = psql_as("nobody", str(sock))
    assert nobody.returncode != 0 and "Permission denied" in nobody.stderr, nobody.stderr
    # The service account itself, which owns the socket: still needs the password (no trust).
    service = local_postgres_status(base)
    owner = Path(sock).owner()
    own = psql_as(owner, str(sock))
    assert own.returncode != 0 and "password" in own.stderr, own.stderr
    # Whoever started it (this process) connects with the password file the DSN names.
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    assert service["running"]


@as_root
@pytest.mark.timeout(120)
def test_a_trust_cluster_from_an_older_sluice_is_converted_on_start(project):
    base = project / ".sluice"
    dsn = ensure_local_postgres(base)
    hba = base / "pgdata" / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    (base / "pgpass").unlink()
    (base / "run").chmod(0o777)
    os.kill(local_postgres_status(base)["pid"], signal.SIGHUP)  # reload pg_hba.conf
    time.sleep(1)
    assert psql_as(Path(base / "run").owner(), str(base / "run")).returncode == 0, "trust, as before"
    assert ensure_local_postgres(base) == dsn
    assert stat.S_IMODE((base / "run").stat().st_mode) == 0o700
    assert "trust" not in "".join(ln for ln in hba.read_text().splitlines() if not ln.startswith("#"))
    denied = psql_as(Path(base / "run").owner(), str(base / "run"))
    assert denied.returncode != 0 and "password" in denied.stderr
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@as_root
@pytest.mark.timeout(180)
def test_parent_directories_are_never_opened_up_silently(project, monkeypatch):
    """A clone under a home like /root (0700): the old code added o+x to it with only a log line. Now the
    folder keeps its mode and the cluster lives in a folder of its own the service user can reach."""
    import pipeline.postgres.embedded as embedded

    monkeypatch.setattr(embedded, "RELOCATED_BASE", project / "var-lib-sluice")
    closed = project / "home"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    sluice_dir = closed / "proj" / ".sluice"
    try:
        dsn = ensure_local_postgres(sluice_dir)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert stat.S_IMODE(closed.stat().st_mode) == 0o700, "the mode must be left as it was"
        where = (sluice_dir / "PGDATA-LOCATION").read_text().splitlines()[0]
        assert where.startswith(str(project / "var-lib-sluice")) and Path(where, "PG_VERSION").exists()
        assert ensure_local_postgres(sluice_dir) == dsn, "the same cluster is found again"
    finally:
        remove_local_postgres(sluice_dir)
