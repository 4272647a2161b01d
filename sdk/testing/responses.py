"""Classification expectations as data: what each vendor answer must mean, from the vendor's docs.

Two sources, neither of them the code under test:

* the suite's defaults for the generic error-path scenarios (``DEFAULT_OUTCOMES``): what a
  connector inherits when its vendor documents nothing else;
* ``integrations/<name>/contract/responses.json``, written from the vendor's docs::

    {"scenarios": {"http413": {"outcome": "abort", "reason": "...", "doc": "https://..."}},
     "responses": [
       {"name": "partial_batch", "doc": {"url": "https://...", "section": "..."},
        "status": 207, "headers": {}, "body": {...},
        "request": <the request body as sent>, "jobs": 2 | [<job body>, ...],
        "expect": {"outcome": "success", "events": ["success", "abort"], "reason": "..."}}]}

``scenarios`` overrides a default where the vendor documents a different meaning for that failure;
``responses`` are documented answers (errors, partial failures, rate limits) every connector's
``responses:`` rules must classify as stated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.classify import Outcome

RESPONSES_FILE = "contract/responses.json"

# What each generic failure means when the vendor documents nothing else (the inherited defaults).
DEFAULT_OUTCOMES: dict[str, Outcome] = {
    "http400": Outcome.ABORT,  # the request is wrong; the same bytes will be wrong again
    "http401": Outcome.ABORT,  # credentials refused: a person must fix the config
    "http404": Outcome.ABORT,
    "http408": Outcome.RETRY,  # the server timed out waiting: transient
    "http413": Outcome.ABORT,  # too large: resending the same body cannot help
    "http429": Outcome.THROTTLE,  # rate limited: back off (Retry-After honoured)
    "http500": Outcome.RETRY,
    "http503": Outcome.RETRY,
    "timeout": Outcome.RETRY,
    "connection_reset": Outcome.RETRY,
}


@dataclass
class DocumentedResponse:
    name: str
    status: int
    headers: dict[str, str]
    body: Any
    request: Any
    jobs: int | list[Any] | None
    outcome: str
    events: list[str] | None
    doc: dict[str, Any]


@dataclass
class DocumentedResponses:
    scenarios: dict[str, Outcome] = field(default_factory=dict)
    responses: list[DocumentedResponse] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_documented(folder: Path) -> DocumentedResponses:
    path = folder / RESPONSES_FILE
    out = DocumentedResponses()
    if not path.exists():
        return out
    rel = f"integrations/{folder.name}/{RESPONSES_FILE}"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        out.problems.append(f"{rel}: not valid JSON ({e})")
        return out
    outcomes = {o.value for o in Outcome}
    for name, sc in (raw.get("scenarios") or {}).items():
        if name not in DEFAULT_OUTCOMES:
            out.problems.append(
                f"{rel} scenarios.{name}: no such scenario; use one of {sorted(DEFAULT_OUTCOMES)}"
            )
        elif not isinstance(sc, dict) or sc.get("outcome") not in outcomes or not sc.get("doc"):
            out.problems.append(
                f"{rel} scenarios.{name}: give outcome (success/retry/throttle/abort) and doc"
            )
        else:
            out.scenarios[name] = Outcome(sc["outcome"])
    for i, r in enumerate(raw.get("responses") or []):
        w = f"{rel} responses[{i}]"
        exp = r.get("expect") if isinstance(r, dict) else None
        doc = r.get("doc") if isinstance(r, dict) else None
        if not isinstance(r, dict) or not isinstance(r.get("status"), int) or not isinstance(exp, dict):
            out.problems.append(f"{w}: give name, status, body and expect {{outcome, reason}}")
            continue
        if exp.get("outcome") not in outcomes or not str(exp.get("reason") or "").strip():
            out.problems.append(f"{w}: expect.outcome must be success/retry/throttle/abort, with a reason")
            continue
        if not isinstance(doc, dict) or not str(doc.get("url", "")).startswith("https://"):
            out.problems.append(f"{w}: doc.url must name the vendor page documenting this answer")
            continue
        events = exp.get("events")
        out.responses.append(
            DocumentedResponse(
                name=str(r.get("name") or f"response{i}"),
                status=r["status"],
                headers={str(k): str(v) for k, v in (r.get("headers") or {}).items()},
                body=r.get("body"),
                request=r.get("request"),
                jobs=r.get("jobs"),
                outcome=exp["outcome"],
                events=events if isinstance(events, list) else None,
                doc=doc,
            )
        )
    return out


def scenario_outcome(folder: Path | None, scenario: str) -> Outcome:
    """The documented outcome of a generic scenario for this connector: its override, else the default."""
    if folder is not None:
        override = load_documented(folder).scenarios.get(scenario)
        if override is not None:
            return override
    return DEFAULT_OUTCOMES[scenario]
