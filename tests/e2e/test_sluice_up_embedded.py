"""``sluice up`` on a machine with no database configured: the README's main command.

Promise under test: with no DATABASE_URL, ``sluice up`` starts its own Postgres with the data in the
project folder (``.sluice/pgdata``), applies migrations, becomes healthy, delivers an event, and stops
cleanly (exit 0) on SIGTERM.
"""

from __future__ import annotations

import httpx
import pytest
from support.pipeline_proc import SluiceProcess, webhook_config
from support.sink import Sink

from pipeline.postgres import stop_local_postgres


@pytest.mark.timeout(180)
def test_sluice_up_without_database_url_runs_its_own_postgres(tmp_path_factory):
    project = tmp_path_factory.mktemp("proj")
    try:
        with Sink() as sink:
            cfg = webhook_config({"hook": sink.url("/hook")}, write_key="embedded-key")
            sluice = SluiceProcess(cfg, project, database_url=None)
            sluice.start(timeout=120)
            try:
                assert (project / ".sluice" / "pgdata" / "PG_VERSION").exists()
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
    finally:
        stop_local_postgres(project / ".sluice")
