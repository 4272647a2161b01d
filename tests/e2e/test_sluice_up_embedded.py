"""``sluice up`` on a machine with no database configured: the README's main command.

Promise under test: with no DATABASE_URL, ``sluice up`` starts its own Postgres with the data in the
project folder (``.sluice/pgdata``), applies migrations, becomes healthy, delivers an event, and stops
cleanly (exit 0) on SIGTERM. The Postgres keeps running after that, so ``sluice up`` says whether it
started or reused it, and ``sluice down`` stops it (issue 11 item 11).
"""

from __future__ import annotations

import shutil
import socket

import httpx
import pytest
from support.pg import reachable_tmpdir
from support.pipeline_proc import SluiceProcess, webhook_config
from support.sink import Sink

from pipeline.postgres import local_postgres_status, stop_local_postgres


@pytest.mark.timeout(240)
def test_sluice_up_without_database_url_runs_its_own_postgres():
    project = reachable_tmpdir()
    try:
        with Sink() as sink:
            cfg = webhook_config({"hook": sink.url("/hook")}, write_key="embedded-key")
            sluice = SluiceProcess(cfg, project, database_url=None)
            sluice.start(timeout=120)
            try:
                assert (project / ".sluice" / "pgdata" / "PG_VERSION").exists()
                assert "started a local Postgres" in sluice.log_tail() and "sluice down" in sluice.log_tail()
                r = httpx.post(
                    f"{sluice.url}/v1/track",
                    json={"userId": "u1", "event": "Signed Up", "messageId": "emb-1"},
                    auth=("embedded-key", ""),
                    timeout=10,
                )
                assert r.status_code == 200, r.text
                assert not sink.wait_for_message_ids({"emb-1"}, timeout=30, path="/hook")
            finally:
                code = sluice.terminate(timeout=60)
            assert code == 0, f"sluice up exited {code} on SIGTERM:\n{sluice.log_tail()}"
            # The database outlives sluice up; a second start says it reuses it.
            assert local_postgres_status(project / ".sluice")["running"]
            sluice.start(timeout=120)
            assert "reusing the local Postgres already running" in sluice.log_tail(2000)
            assert sluice.terminate(timeout=60) == 0
        down = sluice.cli("down")
        assert down.returncode == 0 and "stopped the local Postgres" in down.stdout, down.stdout + down.stderr
        assert not local_postgres_status(project / ".sluice")["running"]
        again = sluice.cli("down")
        assert again.returncode == 0 and "no local Postgres is running" in again.stdout
    finally:
        stop_local_postgres(project / ".sluice")
        shutil.rmtree(project, ignore_errors=True)


def test_a_port_in_use_is_one_line_suggesting_another(pg_dsn, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sluice = SluiceProcess(
            webhook_config({"hook": "http://127.0.0.1:9/h"}), tmp_path, database_url=pg_dsn, port=port
        )
        done = sluice.cli(
            "up", "--config", str(sluice.config_path), "--port", str(port), "--allow-uncertified"
        )
    assert done.returncode != 0
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("Error:")]
    assert errors == [
        f"Error: port {port} on 127.0.0.1 is already in use (another sluice up?); stop that process or pick "
        f"another port with --port {port + 1}"
    ], done.stderr
    assert "Traceback" not in done.stderr
