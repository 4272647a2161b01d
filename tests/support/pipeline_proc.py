"""Run ``sluice up`` as a real subprocess, the way users run it, for end-to-end and fault tests.

Why a subprocess and not an in-process app: kill -9, SIGTERM drain and "restart after a crash" can only be
tested on a real process, and the gateway must be reached over real HTTP by real client libraries.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]
SLUICE_BIN = Path(sys.executable).parent / "sluice"

# Every process started here, so none outlives the test session even if a test dies mid-way.
_LIVE: set[subprocess.Popen] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def webhook_config(
    destinations: dict[str, str],
    *,
    write_key: str = "test-write-key",
    source: str = "web",
    destination_overrides: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A sluice.yaml (as a dict) with one source fanning out to webhook destinations ``{name: url}``.

    ``destination_overrides[name]`` is merged into that destination (e.g. a short retry policy so a
    test does not wait the production default of 10 s for the first retry).
    """
    overrides = destination_overrides or {}
    dests = []
    for name, url in destinations.items():
        d: dict[str, Any] = {
            "name": name,
            "integration": "webhook",
            "config": {"webhookUrl": url, "webhookMethod": "POST"},
        }
        d.update(overrides.get(name, {}))
        dests.append(d)
    cfg: dict[str, Any] = {
        "sources": [{"name": source, "write_key": write_key}],
        "destinations": dests,
        "connections": [{"source": source, "destinations": list(destinations)}],
        "network": {"allow_private": ["127.0.0.0/8"]},
    }
    cfg.update(extra or {})
    return cfg


class SluiceProcess:
    """One ``sluice up`` subprocess with its config file and log file in ``workdir``."""

    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path,
        *,
        database_url: str | None,
        port: int | None = None,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ):
        self.config = config
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.port = port or free_port()
        self.extra_args = list(extra_args) if extra_args is not None else ["--allow-uncertified"]
        self.env = dict(env or {})
        self.config_path = self.workdir / "sluice.yaml"
        self.log_path = self.workdir / "sluice.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def write_key(self) -> str:
        return self.config["sources"][0]["write_key"]

    def start(self, wait: bool = True, timeout: float = 60) -> SluiceProcess:
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        env.pop("SLUICE_TEST_DATABASE_URL", None)  # the child must use exactly the database we give it
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self.env)
        args = [str(SLUICE_BIN), "up", "--config", str(self.config_path), "--port", str(self.port)]
        args += self.extra_args
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self.starts + 1}: {' '.join(args)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            args, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        _LIVE.add(self.proc)
        self.starts += 1
        if wait:
            try:
                self.wait_healthy(timeout)
            except RuntimeError:
                self.kill9()  # an unhealthy process must not outlive the failing test
                raise
        return self

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                code = self.proc.returncode
                tail = self.log_tail()
                raise RuntimeError(f"sluice up exited with {code} before becoming healthy:\n{tail}")
            try:
                r = httpx.get(f"{self.url}/health", timeout=2)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        raise RuntimeError(f"sluice up not healthy after {timeout}s (last: {last}):\n{self.log_tail()}")

    def kill9(self) -> None:
        """SIGKILL the whole process group: no drain, no cleanup, like a power cut for the pipeline."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM and wait for the drain; returns the exit code (kills if it does not exit in time)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill9()
            tail = self.log_tail()
            raise RuntimeError(f"sluice up did not exit within {timeout}s of SIGTERM:\n{tail}") from exc

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run another ``sluice`` command (e.g. ``dlq list``) against the same config and database."""
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        env.pop("SLUICE_TEST_DATABASE_URL", None)  # the child must use exactly the database we give it
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        env.update(self.env)
        return subprocess.run(
            [str(SLUICE_BIN), *args],
            cwd=self.workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def __enter__(self) -> SluiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.alive():
            try:
                self.terminate(timeout=30)
            except RuntimeError:
                pass
