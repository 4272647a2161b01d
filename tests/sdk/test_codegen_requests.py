"""Whole requests agree between the generated fast path and the closures, on every connector.

``test_codegen.py`` compares what the mappings plan (endpoint, body, headers, params). Endpoint templates
(URLs, headers, params) are rendered after that, and read lets through ``env.let``; with the fast path
those lets run as generated functions too. So here each fixture event goes through ``Connector.transform``
twice, once on a connector built with ``SLUICE_CODEGEN=0`` (closures only), and the requests on the wire
(method, URL, headers, params, body) or the errors must be equal.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import SluiceError
from sdk.registry import integration_folders

FOLDERS = [f for f in integration_folders() if (f / "spec.yaml").exists()]


def _fixtures(folder: Path) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for f in sorted((folder / "fixtures").glob("*.json")):
        data = json.loads(f.read_text())
        if isinstance(data.get("event"), dict):
            out.append((f.name, data["event"], data.get("config") or {}))
    return out


def _wire(conn: Connector, event: dict[str, Any], config: dict[str, Any]) -> Any:
    ctx = TransformContext.at("2024-05-01T12:00:00Z", seed="requests")
    try:
        return [r.to_wire() for r in conn.transform(copy.deepcopy(event), config, ctx)]
    except SluiceError as e:
        return (type(e).__name__, e.message)


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_generated_requests_equal_closure_requests(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = Connector.from_folder(folder)
    monkeypatch.setenv("SLUICE_CODEGEN", "0")
    slow = Connector.from_folder(folder)
    assert fast.plan.generated and not slow.plan.generated  # the two really take different paths
    fixtures = _fixtures(folder)
    assert fixtures, f"{folder.name} has no fixture events"
    for name, event, config in fixtures:
        assert _wire(fast, event, config) == _wire(slow, event, config), f"{folder.name}/{name}"
