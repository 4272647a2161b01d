"""A connector's success fixtures, mapped the way certification maps them (same event, same pinned clock).

Drift tooling needs the connector's certified requests without the test harness (``sdk.testing``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sdk.context import TransformContext
from sdk.request import VendorRequest

DEFAULT_NOW = "2024-01-01T00:00:00Z"


def success_fixtures(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """(case name, fixture) for every readable fixture of ``folder`` that is not an error case."""
    out = []
    for path in sorted((folder / "fixtures").glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(data, dict) and not data.get("expect_error") and isinstance(data.get("event"), dict):
            out.append((path.stem, data))
    return out


def fixture_requests(
    connector: Any, fixture: dict[str, Any], config: dict[str, Any] | None = None
) -> list[VendorRequest]:
    """The requests ``connector`` makes for ``fixture`` (with ``config`` in place of its own, if given)."""
    event = fixture["event"]
    ctx = TransformContext.at(fixture.get("now") or DEFAULT_NOW, seed=str(event.get("messageId") or ""))
    return connector.transform(event, fixture.get("config") if config is None else config, ctx)
