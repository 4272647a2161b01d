"""Fixtures for harness tests: a throw-away integrations tree built with `sluice new`, then filled in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.registry import clear_caches
from sdk.scaffold import scaffold

REPO = Path(__file__).resolve().parents[2]


DEMO_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "x-vendor-docs": {"url": "https://example.com/demo/api-docs", "section": "POST /v1/events request body"},
    "type": "object",
    "required": ["event", "user_id"],
    "properties": {"time": {"type": "integer"}},
}


def fill_demo(integrations: Path, name: str = "demo") -> Path:
    """Turn the scaffold's TODO fixture into a real one, plus an error case (hand-written data)."""
    folder = integrations / name
    fx = folder / "fixtures" / "track_basic.json"
    data = json.loads(fx.read_text())
    data["description"] = "a track call becomes one event"
    data["response"]["body"] = {"accepted": 1}
    data["response"]["classification"] = {
        "outcome": "success",
        "reason": "the demo API answers 200 when it stored the event",
        "doc": "https://example.com/demo/api-docs#responses",
    }
    # what the demo vendor's docs say this event must become (person-written, not from the connector)
    data["expect"] = {
        "status": "accepted",
        "doc": {"url": "https://example.com/demo/api-docs", "section": "POST /v1/events"},
        "requests": [
            {
                "method": "POST",
                "url": f"https://api.{name}.test/v1/events",
                "headers": {
                    "Authorization": f"Bearer test-api-key-{name}",
                    "Content-Type": "application/json",
                },
                "json": {
                    "event": "Order Completed",
                    "user_id": "user-1",
                    "time": 1714564800000,
                    "properties": {"revenue": 10.5, "currency": "EUR"},
                },
            }
        ],
    }
    fx.write_text(json.dumps(data, indent=2))
    # the demo vendor's request contract, as its (imaginary) docs describe the body
    (folder / "contract").mkdir(exist_ok=True)
    (folder / "contract" / "default.schema.json").write_text(json.dumps(DEMO_SCHEMA, indent=2))
    spec = folder / "spec.yaml"
    spec.write_text(spec.read_text() + "\nrequest_schemas:\n  default: contract/default.schema.json\n")
    bad = dict(
        data, description="no event name is an instrumentation error", expect_error="instrumentation_error"
    )
    bad.pop("response")
    bad.pop("expect")
    bad["event"] = {k: v for k, v in data["event"].items() if k != "event"}
    (folder / "fixtures" / "track_without_name.json").write_text(json.dumps(bad, indent=2))
    spec = folder / "spec.yaml"
    spec.write_text(
        spec.read_text()
        .replace("https://api.example.com/v1/events", f"https://api.{name}.test/v1/events")
        .replace(f"https://example.com/{name}/api-docs", f"https://docs.{name}.test/api")
    )
    (folder / "README.md").write_text(f"# {name}\n\nA test destination: track calls become events.\n")
    return folder


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``<tmp>/integrations`` with a scaffolded, filled-in ``demo``; SLUICE_INTEGRATIONS_DIR points at it."""
    integrations = tmp_path / "integrations"
    integrations.mkdir()
    scaffold("demo", integrations)
    fill_demo(integrations)
    monkeypatch.setenv("SLUICE_INTEGRATIONS_DIR", str(integrations))
    clear_caches()
    yield integrations
    clear_caches()


def run_cli(
    *args: str, env_dir: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``sluice`` in a subprocess (a nested pytest run must not share this process)."""
    env = dict(os.environ)
    if env_dir is not None:
        env["SLUICE_INTEGRATIONS_DIR"] = str(env_dir)
    return subprocess.run(
        [str(Path(sys.executable).parent / "sluice"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
