"""XML request bodies (``body_format: xml``) from the same objects JSON bodies are built from.

The body object has one key, the root element. Inside it, keys become child elements in order, lists
repeat their element, ``@name`` keys are attributes and ``#text`` is text content; null and missing values
are left out. Text is escaped, so event values cannot inject markup.
"""

from __future__ import annotations

import re
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from sdk.errors import InstrumentationError
from sdk.mapping.formats import to_string

DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
_NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")


def to_xml(body: Any, declaration: bool = True) -> str:
    if not isinstance(body, dict) or len(body) != 1:
        raise InstrumentationError("an XML body is an object with exactly one key: the root element")
    out: list[str] = [DECLARATION] if declaration else []
    ((root, value),) = body.items()
    _element(str(root), value, out, 0)
    return "".join(out)


def _element(name: str, value: Any, out: list[str], depth: int) -> None:
    if depth > 64:
        raise InstrumentationError("XML body nested more than 64 levels deep")
    if not _NAME.match(name):
        raise InstrumentationError(f"{name[:40]!r} is not a valid XML element name; rename the field")
    if value is None:
        return
    if isinstance(value, list):
        for item in value:
            _element(name, item, out, depth + 1)
        return
    if not isinstance(value, dict):
        out.append(f"<{name}>{escape(to_string(value))}</{name}>")
        return
    attrs = "".join(
        f" {k[1:]}={quoteattr(to_string(v))}" for k, v in value.items() if k.startswith("@") and v is not None
    )
    out.append(f"<{name}{attrs}>")
    for k, v in value.items():
        if k.startswith("@"):
            continue
        if k == "#text":
            if v is not None:
                out.append(escape(to_string(v)))
            continue
        _element(k, v, out, depth + 1)
    out.append(f"</{name}>")
