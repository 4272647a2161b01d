"""``sluice transform``: events in, vendor requests out. The debugging and scoring interface."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

import click

from sdk.context import TransformContext
from sdk.errors import EventDropped, SluiceError
from sdk.registry import load_connector
from sdk.steps import resolve_offline


def transform_line(line: str, step_answers: dict[str, Any] | None = None) -> dict[str, Any]:
    """One JSON-lines record in, one out; never raises. ``step_answers`` (``{"token": {status, body},
    "lookup": {...}}``) resolves declared steps: "requests" are then the writes as sent, and
    "step_requests" the token and lookup requests before them (secret settings redacted)."""
    try:
        rec = json.loads(line)
    except ValueError as e:
        return {"error": {"type": "invalid_input", "status": 400, "message": f"line is not JSON: {e}"}}
    if not isinstance(rec, dict):
        return {
            "error": {"type": "invalid_input", "status": 400, "message": "each line must be a JSON object"}
        }
    try:
        connector = load_connector(str(rec.get("destination", "")))
        event = rec.get("event")
        seed = str(event.get("messageId") or "") if isinstance(event, dict) else ""
        ctx = TransformContext.at(rec.get("now"), seed=seed)
        config = rec.get("config") or {}
        _warn_once(connector, config)
        requests = connector.transform(event, config, ctx, rec.get("source_type"))
        if step_answers and connector.has_steps:
            return _resolved(connector, config, requests, step_answers)
        return {"requests": [r.to_wire() for r in requests]}
    except EventDropped as e:
        return {"requests": [], "dropped": {"reason": e.message}}
    except SluiceError as e:
        return {"error": e.to_dict()}
    except Exception as e:  # noqa: BLE001 - the run must go on; the line says what broke
        return {"error": {"type": "internal_error", "status": 500, "message": f"{type(e).__name__}: {e}"}}


def _resolved(connector: Any, config: dict[str, Any], requests: list[Any], answers: dict[str, Any]) -> dict:
    pairs = [p for r in requests for p in resolve_offline(connector, config, r, answers)]
    secrets = connector.spec.secret_values(config)

    def hide(wire: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(wire, ensure_ascii=False)
        for v in secrets:
            text = text.replace(json.dumps(v)[1:-1], "[redacted]")
        return json.loads(text)

    return {
        "requests": [q.to_wire() for q, a in pairs if a is None],
        "step_requests": [{"request": hide(q.to_wire()), "answer": a} for q, a in pairs if a is not None],
    }


_WARNED: set[str] = set()


def _warn_once(connector: Any, config: Any) -> None:
    """Settings the connector ignores, said once per run on stderr (stdout stays one line per input)."""
    try:
        warnings = connector.config_warnings(config)
    except SluiceError:
        return  # the transform itself reports the config error
    for w in warnings:
        if w not in _WARNED:
            _WARNED.add(w)
            print(f"warning: {w}", file=sys.stderr)


def run_jsonl(inp: TextIO, out: TextIO, step_answers: dict[str, Any] | None = None) -> int:
    n = 0
    for line in inp:
        if not line.strip():
            continue
        out.write(json.dumps(transform_line(line, step_answers), ensure_ascii=False, default=str) + "\n")
        n += 1
    out.flush()
    return n


def register(main: click.Group) -> None:
    @main.command("transform")
    @click.option(
        "--jsonl", "jsonl", is_flag=True, help="read JSON lines on stdin, write one result line each"
    )
    @click.option("-d", "--destination", help="destination name or alias (single-event mode)")
    @click.option("-c", "--config", "config", help="destination config as JSON (single-event mode)")
    @click.option("-e", "--event", "event", help="event as JSON, or @file (single-event mode)")
    @click.option("--now", help="ISO-8601 clock to map with (default: now)")
    @click.option(
        "--steps-answers",
        "steps_answers",
        type=click.Path(exists=True, dir_okay=False),
        help='JSON file {"token": {"status", "body"}, "lookup": {...}}: resolve declared steps (token '
        "exchange, lookups) against these vendor answers instead of showing placeholders",
    )
    def transform_cmd(
        jsonl: bool,
        destination: str | None,
        config: str | None,
        event: str | None,
        now: str | None,
        steps_answers: str | None,
    ):
        """Map events to vendor requests without sending them.

        With --jsonl, each input line is
        {"destination", "config", "event", "now"} and each output line is
        {"requests": [...]} (with "dropped": {"reason"} when the destination
        deliberately sends nothing) or {"error": {"type", "status", "message"}}.
        An optional "source_type" (web, ios, android, cloud, ...) selects
        per-source consent settings.
        """
        answers = None
        if steps_answers:
            with open(steps_answers) as f:
                answers = json.load(f)
            if not isinstance(answers, dict):
                raise click.UsageError('--steps-answers: the file must hold {"token": ..., "lookup": ...}')
        if jsonl:
            run_jsonl(sys.stdin, sys.stdout, answers)
            return
        if not destination or not event:
            raise click.UsageError("give --jsonl, or --destination and --event")
        ev = open(event[1:]).read() if event.startswith("@") else event
        rec = {
            "destination": destination,
            "config": json.loads(config or "{}"),
            "event": json.loads(ev),
            "now": now,
        }
        click.echo(json.dumps(transform_line(json.dumps(rec), answers), indent=2, ensure_ascii=False))
