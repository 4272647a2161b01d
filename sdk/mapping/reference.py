"""Generated parts of ``docs/spec-language.md``: the formats table comes from the registry, so the reference
cannot drift from the code (``tests/sdk/test_reference_doc.py`` fails when it is out of date).

    .venv/bin/python -m sdk.mapping.reference   # rewrites the generated sections in place
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sdk.mapping.formats import FORMATS

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec-language.md"
_SECTION = re.compile(r"(<!-- formats:start -->\n)(.*?)(<!-- formats:end -->)", re.DOTALL)


def _show(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False).replace("|", "\\|")


def formats_table() -> str:
    rows = ["| format | what it does | example: value, argument → result |", "|---|---|---|"]
    for name in sorted(FORMATS):
        f = FORMATS[name]
        value, arg, out = f.example or (None, None, None)
        call = f"`{name}`" + (f" `({_show(arg)})`" if arg is not None else "")
        each = " Per element of a list." if f.per_element else ""
        rows.append(f"| {call} | {f.doc.replace('|', '/')}.{each} | `{_show(value)}` → `{_show(out)}` |")
    return "\n".join(rows) + "\n"


def render(doc: str) -> str:
    return _SECTION.sub(lambda m: m.group(1) + formats_table() + m.group(3), doc)


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text()))
    print(f"updated {DOC}")
