"""Deep copies of JSON-shaped values, fast and total.

Outputs must never share a container with the event they came from or with another output: the router
batches (and so mutates) request bodies, and a mapper may refine them in place. ``copy.deepcopy`` is
general and slow, and recursion-bound on hostile nesting; this copies only dicts and lists (everything
else in a decoded JSON event is immutable) and turns runaway depth into a typed error.
"""

from __future__ import annotations

from typing import Any

from sdk.errors import InstrumentationError

MAX_DEPTH = 200


def json_copy(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return _copy_dict(v, 0)
    if t is list:
        return _copy_list(v, 0)
    return v


def _copy_dict(d: dict, depth: int) -> dict:
    if depth > MAX_DEPTH:
        raise InstrumentationError(f"the event is nested more than {MAX_DEPTH} levels deep; flatten it")
    # A C-level shallow copy, then only the nested containers replaced: most values are scalars, so this
    # touches far fewer keys in Python than building the copy key by key.
    out = d.copy()
    for k, x in d.items():
        t = type(x)
        if t is dict:
            out[k] = _copy_dict(x, depth + 1)
        elif t is list:
            out[k] = _copy_list(x, depth + 1)
    return out


def _copy_list(items: list, depth: int) -> list:
    if depth > MAX_DEPTH:
        raise InstrumentationError(f"the event is nested more than {MAX_DEPTH} levels deep; flatten it")
    out = items.copy()
    for i, x in enumerate(items):
        t = type(x)
        if t is dict:
            out[i] = _copy_dict(x, depth + 1)
        elif t is list:
            out[i] = _copy_list(x, depth + 1)
    return out
