"""How much of each connector is declared and how much is code: what ``sluice list --stats`` prints.

The spec language is meant to carry destinations; mapper code is the measure of where it does not yet.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

MAX_MAPPER_LINES = 120


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def connector_stats(folder: Path) -> dict[str, Any]:
    mapper = folder / "mapper.py"
    functions: list[str] = []
    if mapper.exists():
        tree = ast.parse(mapper.read_text())
        functions = [
            n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
        ]
    extra = sorted(p.name for p in folder.glob("*.yaml") if p.name != "spec.yaml")
    return {
        "name": folder.name,
        "spec_lines": _lines(folder / "spec.yaml"),
        "mapper_lines": _lines(mapper),
        "mapper_functions": functions,
        "other_mapping_files": extra,
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    mappers = [r for r in rows if r["mapper_lines"]]
    return {
        "connectors": len(rows),
        "without_mapper": len(rows) - len(mappers),
        "mapper_lines": sum(r["mapper_lines"] for r in rows),
        "spec_lines": sum(r["spec_lines"] for r in rows),
        "longest_mapper": max((r["mapper_lines"] for r in rows), default=0),
    }
