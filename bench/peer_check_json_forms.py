"""peer_check, with form fields that carry JSON compared as JSON.

The peer cases' form bodies hold JSON *text* (Meta's ``data`` field: a list of JSON strings), and the shared
``peer_check`` tool compares form fields as text, so key order decides the match. The cases' input events were
stored with their keys sorted, while the expected JSON text keeps the order the peer built it in (the event's
original property order), so no connector can reproduce that text for events with several properties. This
wrapper decodes JSON text in form fields on both sides (and accepts the JSON array of objects Meta documents,
``data=[{...}]``) before comparing, so the figure measures what is sent. Everything else is peer_check's own
comparison; arguments are peer_check's.

    .venv/bin/python bench/peer_check_json_forms.py --only facebook_pixel,facebook_conversions \\
        --cmd ".venv/bin/sluice transform --jsonl"

The tool is read from ``$PEER_CHECK`` (default: ``shared/tools/peer_check`` beside the repository or one level
up, as in a worktree).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

_REPO = Path(__file__).resolve().parents[1]
_NEAR = [base / "shared" / "tools" / "peer_check" for base in (_REPO.parent, _REPO.parents[1])]
TOOL = os.environ.get("PEER_CHECK") or str(next((p for p in _NEAR if p.exists()), _NEAR[0]))


def _load(path: str) -> Any:
    loader = importlib.machinery.SourceFileLoader("peer_check", path)
    spec = importlib.util.spec_from_loader("peer_check", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _decode(v: Any) -> Any:
    if isinstance(v, str) and v[:1] in "[{":
        try:
            return _decode(json.loads(v))
        except ValueError:
            return v
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def main() -> int:
    pc = _load(TOOL)

    def as_json(form: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return "form", {str(k): pc.norm_num(_decode(v)) for k, v in form.items()}

    expected_body, actual_body = pc.expected_body, pc.actual_body
    pc.expected_body = lambda body: as_json(body["FORM"]) if (body or {}).get("FORM") else expected_body(body)
    pc.actual_body = lambda req: as_json(req["form"]) if req.get("form") is not None else actual_body(req)
    return pc.main()


if __name__ == "__main__":
    sys.exit(main())
