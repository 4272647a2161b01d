"""``sluice warehouse rows``: events in, warehouse rows out (the row model's debugging and scoring
interface). ``sluice warehouse status`` is added by the pipeline (``pipeline/warehouse/cli.py``)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, TextIO

import click

from sdk.errors import SluiceError
from sdk.warehouse import event_rows


def rows_line(line: str, now: str) -> dict[str, Any]:
    """One ``{"provider", "config", "event", "options"}`` line in, one result out; never raises."""
    try:
        rec = json.loads(line)
    except ValueError as e:
        return {"error": {"type": "invalid_input", "status": 400, "message": f"line is not JSON: {e}"}}
    if not isinstance(rec, dict):
        msg = "each line must be a JSON object"
        return {"error": {"type": "invalid_input", "status": 400, "message": msg}}
    options = dict(rec.get("options") or {}) if isinstance(rec.get("options"), dict) else {}
    options.setdefault("now", now)
    try:
        rows = event_rows(rec.get("event"), str(rec.get("provider") or ""), rec.get("config") or {}, options)
        return {"rows": [r.to_wire() for r in rows]}
    except SluiceError as e:
        return {"error": e.to_dict()}
    except Exception as e:  # noqa: BLE001 - the run must go on; the line says what broke
        return {"error": {"type": "internal_error", "status": 500, "message": f"{type(e).__name__}: {e}"}}


def run_jsonl(inp: TextIO, out: TextIO, now: str | None = None) -> int:
    stamp = now or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    n = 0
    for line in inp:
        if not line.strip():
            continue
        out.write(json.dumps(rows_line(line, stamp), ensure_ascii=False, default=str) + "\n")
        n += 1
    out.flush()
    return n


def warehouse_group(main: click.Group) -> click.Group:
    """The ``sluice warehouse`` group (shared with the pipeline's ``status`` command)."""
    group = main.commands.get("warehouse")
    if isinstance(group, click.Group):
        return group

    @main.group("warehouse")
    def warehouse() -> None:
        """Warehouse and lake destinations: the row model and the loads."""

    return warehouse


def register(main: click.Group) -> None:
    group = warehouse_group(main)

    @group.command("rows")
    @click.option("--jsonl", "jsonl", is_flag=True, required=True, help="read JSON lines on stdin")
    @click.option("--now", help="ISO-8601 time for events without receivedAt (default: now)")
    def rows_cmd(jsonl: bool, now: str | None) -> None:
        """Turn events into warehouse rows without loading them.

        Each input line is {"provider", "config", "event", "options"}; each output line is
        {"rows": [{"table", "columns": {name: type}, "data": {...}}]} or {"error": {...}}.
        """
        run_jsonl(sys.stdin, sys.stdout, now)
