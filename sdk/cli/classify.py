"""``sluice classify --jsonl``: what the router would do with vendor answers, one JSON line each.

Input lines: ``{"destination", "config", "events", "request": {method, url, headers, params, body},
"response": {status, headers, body}}``; ``events`` is the number of queue jobs merged into the
request (or their own bodies). Output, one line per input line and in order:
``{"outcome", "reason", "status", "retry_after"?, "events"?: [outcome per job]}``, or
``{"error": {"type", "message"}}`` for a line that cannot be classified (an unknown destination,
unparseable JSON); the run goes on either way.
"""

from __future__ import annotations

import json
import sys
from typing import IO, Any

import click

from sdk.classify import classify_response
from sdk.errors import SluiceError


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


def classify_line(line: str, load: Any) -> dict[str, Any]:
    """Classify one input line; ``load(name)`` returns a connector or raises a ``SluiceError``."""
    try:
        item = json.loads(line)
    except ValueError as e:
        return _error("invalid_json", f"line is not JSON ({e}); send one JSON object per line")
    if not isinstance(item, dict):
        return _error("invalid_input", "each line must be a JSON object with destination, request, response")
    dest = item.get("destination")
    try:
        connector = load(str(dest))
    except SluiceError as e:
        kind = "unknown_destination" if e.type == "unknown_destination" else e.type
        return _error(kind, e.message)
    resp = item.get("response")
    if not isinstance(resp, dict) or not isinstance(resp.get("status"), int):
        return _error("invalid_input", "response.status must be the vendor's HTTP status code")
    request = item.get("request") if isinstance(item.get("request"), dict) else {}
    jobs = item.get("events")
    c = classify_response(
        resp["status"],
        {str(k): str(v) for k, v in (resp.get("headers") or {}).items()},
        resp.get("body"),
        connector.spec.responses,
        request=request.get("body"),
        jobs=jobs if isinstance(jobs, (int, list)) and not isinstance(jobs, bool) else None,
    )
    out: dict[str, Any] = {"outcome": c.outcome.value, "reason": c.reason, "status": c.status}
    if c.retry_after is not None:
        out["retry_after"] = c.retry_after
    if c.jobs is not None:
        out["events"] = [j.outcome.value for j in c.jobs]
        out["event_reasons"] = [j.reason for j in c.jobs]
    return out


def run_jsonl(stdin: IO[str], stdout: IO[str]) -> None:
    from sdk.registry import load_connector

    cache: dict[str, Any] = {}

    def load(name: str) -> Any:
        key = name.strip().lower()
        if key not in cache:
            try:
                cache[key] = load_connector(name)
            except SluiceError as e:
                cache[key] = e
        got = cache[key]
        if isinstance(got, SluiceError):
            raise got
        return got

    for line in stdin:
        if not line.strip():
            continue
        stdout.write(json.dumps(classify_line(line, load), ensure_ascii=False) + "\n")
        stdout.flush()


def register(main: click.Group) -> None:
    @main.command("classify")
    @click.option("--jsonl", is_flag=True, required=True, help="read request/response lines on stdin")
    def classify_cmd(jsonl: bool) -> None:
        """Classify vendor answers (success/retry/throttle/abort, per job for partial batches)."""
        run_jsonl(sys.stdin, sys.stdout)
