"""The contract suite must FAIL for broken connectors: crashes, nondeterminism, leaked secrets, schema drift.

Four deliberately broken integrations are scaffolded into a tmp tree and the suite runs on them in a
subprocess; each must fail with a message that names the problem.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sdk.connector import Connector
from sdk.scaffold import scaffold
from sdk.testing.cases import build_cassettes

from .conftest import REPO, fill_demo

CRASHY = """
def refine_body(body, event, settings, ctx):
    props = event.get("properties")
    if isinstance(props, dict) and len(props) > 3:
        raise RuntimeError("boom")
    return body
"""
CLOCKY = """
import uuid


def refine_body(body, event, settings, ctx):
    body["insert_id"] = str(uuid.uuid4())
    return body
"""
VENDOR_DOC = {
    "openapi": "3.0.3",
    "info": {"title": "shapey", "version": "9"},
    "paths": {
        "/v1/events": {
            "post": {
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["event_name"],
                                "properties": {"event_name": {"type": "string"}},
                            }
                        }
                    }
                }
            }
        }
    },
    "x-sluice-source": {
        "file": "hand-written",
        "sha256": "0",
        "info_version": "9",
        "extracted_at": "2024-01-01",
    },
}


def test_broken_connectors_fail_the_suite(tmp_path: Path) -> None:
    integrations = tmp_path / "integrations"
    integrations.mkdir()
    for name in ("crashy", "clocky", "leaky", "shapey"):
        scaffold(name, integrations)
        fill_demo(integrations, name)
    for name, mapper in (("crashy", CRASHY), ("clocky", CLOCKY)):
        (integrations / name / "mapper.py").write_text(mapper)
        spec_file = integrations / name / "spec.yaml"
        text = spec_file.read_text().replace(
            "    endpoint: default\n", "    endpoint: default\n    refine: refine_body\n", 1
        )
        spec_file.write_text(text)
    shapey = integrations / "shapey"
    (shapey / "openapi").mkdir()
    (shapey / "openapi" / "vendor.json").write_text(json.dumps(VENDOR_DOC))
    spec = (shapey / "spec.yaml").read_text()
    spec = spec.replace(
        "# openapi:\n#   document: openapi/shapey.json", "openapi:\n  document: openapi/vendor.json"
    )
    spec = spec.replace('# openapi_operation: "POST /v1/events"', 'openapi_operation: "POST /v1/events"')
    (shapey / "spec.yaml").write_text(spec)
    for name in ("crashy", "clocky", "leaky", "shapey"):
        build_cassettes(Connector.from_folder(integrations / name), integrations / name, integrations)
    leaky = tmp_path / "cassettes" / "leaky" / "track_basic.yaml"
    leaky.write_text(leaky.read_text() + "# note: key was test-api-key-leaky\n")

    env = dict(os.environ, SLUICE_INTEGRATIONS_DIR=str(integrations))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(REPO / "contract_tests"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--import-mode=importlib",
            "-k",
            "fuzz or hygiene or vendor_contract or replay",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = r.stdout
    assert r.returncode == 1, out[-3000:]
    failed = {line.split("::")[1].split(" ")[0] for line in out.splitlines() if line.startswith("FAILED")}
    assert failed == {
        "test_fuzz[crashy-track]",
        "test_fuzz[clocky-track]",
        "test_cassette_replay[clocky-track_basic]",
        "test_cassette_hygiene[leaky]",
        "test_vendor_contract[shapey-track_basic]",
        "test_fuzz_vendor_contract[shapey-track]",
    }, out[-4000:]
    assert "crashed the connector with RuntimeError" in out
    assert "gave different requests twice; take time and ids from kit.ctx" in out
    assert "leaky/track_basic.yaml: contains the value of a secret setting" in out
    assert "'event_name' is a required property" in out
    assert "test-api-key-" not in out.replace("test-api-key-leaky", "")  # only the planted leak's own name
