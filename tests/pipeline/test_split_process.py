"""`sluice up` as users run it: gateway process + supervised workers process, metrics from both."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
from pipeline_helpers import WRITE_KEY, fast_retry, track, wait_until
from support.pipeline_proc import SluiceProcess, webhook_config


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (Linux)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def test_split_processes_share_metrics_and_restart_a_dead_worker(tmp_path, sink, pg_dsn):
    cfg = webhook_config(
        {"hook": sink.url()}, write_key=WRITE_KEY, destination_overrides={"hook": {"retry": fast_retry()}}
    )
    with SluiceProcess(cfg, tmp_path, database_url=pg_dsn) as proc:
        assert httpx.get(f"{proc.url}/health").json()["workers"] == "running"
        r = httpx.post(
            f"{proc.url}/v1/batch", json={"batch": [track("u1", i) for i in range(5)]}, auth=(WRITE_KEY, "")
        )
        assert r.status_code == 200
        wait_until(lambda: sink.delivered_count() == 5)
        text = wait_until(
            lambda: (
                (m := httpx.get(f"{proc.url}/metrics").text)
                and 'sluice_router_jobs_total{destination="hook",outcome="succeeded"} 5.0' in m
                and m
            )
        )
        assert 'sluice_gateway_events_accepted_total{source="web"} 5.0' in text  # gateway process
        assert 'sluice_processor_events_total{outcome="accepted"} 5.0' in text  # workers process

        # The workers process dies: the gateway keeps accepting and a new one is started.
        children = child_pids(proc.proc.pid)
        assert len(children) == 1
        os.kill(children[0], signal.SIGKILL)
        r = httpx.post(f"{proc.url}/v1/track", json={**track("u1", 5)}, auth=(WRITE_KEY, ""))
        assert r.status_code == 200
        wait_until(lambda: sink.delivered_count() >= 6, timeout=60)
        new = child_pids(proc.proc.pid)
        assert len(new) == 1 and new[0] != children[0]
        assert proc.terminate() == 0
