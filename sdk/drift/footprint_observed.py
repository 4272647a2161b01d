"""The part of a connector's footprint its cassettes show: what it really sent and what came back.

Mappers can build fields, envelopes and whole requests the spec does not declare; every certified case
is recorded in a cassette, so the recorded requests complete the footprint. Fields the spec declares but
a mapper re-nests (one event object wrapped as ``{"events": [..]}``) are moved under the envelope the
recordings show (``remount``).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

from sdk.drift.cassettes import Exchange
from sdk.drift.footprint import FieldUse, OperationUse, ParamUse, ResponseUse
from sdk.drift.shapes import shape

_SKIP_HEADERS = {
    "content-type",
    "content-length",
    "user-agent",
    "accept",
    "accept-encoding",
    "host",
    "connection",
}


def observed_operations(
    exchanges: list[Exchange], endpoint_of: Callable[[str, str], str | None]
) -> dict[str, OperationUse]:
    """One partial operation per endpoint seen in ``exchanges`` (``endpoint_of(method, url)`` names it)."""
    ops: dict[str, OperationUse] = {}
    for ex in exchanges:
        name = endpoint_of(ex.method, ex.uri) or f"{ex.method} {urlsplit(ex.uri).path}"
        op = ops.setdefault(name, OperationUse(id=name, method=ex.method))
        src = f"cassette: {ex.case}"
        value = ex.request_value()
        if value is not None:
            for pointer, types in shape(value).items():
                if pointer:
                    _add(op.body, FieldUse(pointer=pointer, types=sorted(types), sources=[src]))
        for k, _value in parse_qsl(urlsplit(ex.uri).query, keep_blank_values=True):
            _add(op.params, ParamUse(pointer=k, location="query", types=["string"], sources=[src]))
        for k in ex.headers:
            if k.lower() not in _SKIP_HEADERS and k.lower() != "authorization":
                _add(op.params, ParamUse(pointer=k, location="header", types=["string"], sources=[src]))
        status = str(ex.status)
        if status != "0" and not any(r.status == status for r in op.responses):
            op.responses.append(ResponseUse(status=status, classifies=False))
        op.sources = list(dict.fromkeys([*op.sources, src]))
    return ops


def _add(fields: list, entry: FieldUse) -> None:
    for f in fields:
        if f.pointer == entry.pointer and getattr(f, "location", None) == getattr(entry, "location", None):
            f.types = sorted(set(f.types) | set(entry.types))
            if entry.sources[0] not in f.sources:
                f.sources.append(entry.sources[0])
            return
    fields.append(entry)


def remount(declared: list[FieldUse], observed: list[FieldUse]) -> list[FieldUse]:
    """Move declared fields under the envelope the recordings put them in, when that explains more."""
    seen = {f.pointer for f in observed}
    if not seen or not declared:
        return declared
    prefixes = {""}
    for p in seen:
        parts = p.split("/")
        prefixes.update("/".join(parts[:i]) for i in range(1, len(parts)))

    # Only mapping fields are relative to the event object; contract paths and batch lists are not.
    movable = [f for f in declared if any(s.startswith("spec: mappings") for s in f.sources)]

    def score(prefix: str) -> int:
        return sum(1 for f in movable if prefix + f.pointer in seen)

    best = max(sorted(prefixes), key=score)
    if best == "" or score(best) <= score(""):
        return declared
    out = []
    for f in declared:
        if f not in movable or f.pointer in seen or f.pointer.startswith(best + "/"):
            out.append(f)
        else:
            moved = f.model_copy(deep=True)
            moved.pointer = best + f.pointer
            moved.sources = [s + f" (under {best}, as recorded)" for s in f.sources]
            out.append(moved)
    return out
