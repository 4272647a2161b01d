"""Value formats a spec field can apply, in order: ``format: [trim, lower, sha256]``.

Each format is a small function registered by name. A format that cannot
convert a value raises ``FormatError``; the engine turns it into an
instrumentation error naming the field. Add a format here when two or more
connectors need it (declarative first).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

FormatFn = Callable[[Any, Any], Any]
FORMATS: dict[str, FormatFn] = {}

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class FormatError(ValueError):
    pass


def register(name: str) -> Callable[[FormatFn], FormatFn]:
    def deco(fn: FormatFn) -> FormatFn:
        FORMATS[name] = fn
        return fn

    return deco


@register("string")
def to_string(v: Any, _: Any = None) -> Any:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@register("number")
def to_number(v: Any, _: Any = None) -> Any:
    if isinstance(v, bool):
        raise FormatError(f"expected a number, got boolean {v}")
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError as e:
            raise FormatError(f"expected a number, got {v!r}") from e
        if f != f or f in (float("inf"), float("-inf")):
            raise FormatError(f"expected a finite number, got {v!r}")
        return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f
    raise FormatError(f"expected a number, got {type(v).__name__}")


@register("integer")
def to_integer(v: Any, _: Any = None) -> Any:
    n = to_number(v)
    return int(n)


@register("boolean")
def to_boolean(v: Any, _: Any = None) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("true", "1", "yes", "y"):
            return True
        if s in ("false", "0", "no", "n", ""):
            return False
    raise FormatError(f"expected a boolean, got {v!r}")


def parse_time(v: Any) -> dt.datetime:
    """Parse ISO-8601 strings and epoch numbers (seconds or milliseconds, guessed by size)."""
    if isinstance(v, dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    if isinstance(v, bool):
        raise FormatError(f"expected a timestamp, got {v!r}")
    if isinstance(v, (int, float)):
        secs = v / 1000 if abs(v) > 1e11 else v
        try:
            return dt.datetime.fromtimestamp(secs, dt.UTC)
        except (OverflowError, OSError, ValueError) as e:
            raise FormatError(f"timestamp {v!r} is out of range") from e
    if isinstance(v, str):
        s = v.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", s):
            return parse_time(float(s))
        s = s.replace("Z", "+00:00").replace("z", "+00:00")
        if re.search(r"[+-]\d{4}$", s):
            s = s[:-2] + ":" + s[-2:]
        try:
            t = dt.datetime.fromisoformat(s)
        except ValueError:
            try:
                t = dt.datetime.strptime(v.strip(), "%a, %d %b %Y %H:%M:%S %Z")
            except ValueError as e:
                raise FormatError(f"expected an ISO-8601 timestamp, got {v!r}") from e
        return t if t.tzinfo else t.replace(tzinfo=dt.UTC)
    raise FormatError(f"expected a timestamp, got {type(v).__name__}")


@register("iso8601")
def to_iso(v: Any, _: Any = None) -> Any:
    t = parse_time(v).astimezone(dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@register("epoch_s")
def to_epoch_s(v: Any, _: Any = None) -> Any:
    return int(parse_time(v).timestamp())


@register("epoch_ms")
def to_epoch_ms(v: Any, _: Any = None) -> Any:
    t = parse_time(v)
    return int(round(t.timestamp() * 1000))


@register("epoch_us")
def to_epoch_us(v: Any, _: Any = None) -> Any:
    t = parse_time(v)
    return int(round(t.timestamp() * 1_000_000))


@register("date")
def to_date(v: Any, fmt: Any = None) -> Any:
    return parse_time(v).strftime(fmt or "%Y-%m-%d")


@register("lower")
def lower(v: Any, _: Any = None) -> Any:
    return v.lower() if isinstance(v, str) else v


@register("upper")
def upper(v: Any, _: Any = None) -> Any:
    return v.upper() if isinstance(v, str) else v


@register("trim")
def trim(v: Any, _: Any = None) -> Any:
    return v.strip() if isinstance(v, str) else v


@register("sha256")
def sha256(v: Any, _: Any = None) -> Any:
    """Hash PII as vendors require, leaving values that are already SHA-256 hex alone."""
    s = to_string(v).strip()
    if _HEX64.match(s.lower()):
        return s.lower()
    return hashlib.sha256(s.encode()).hexdigest()


@register("json")
def json_stringify(v: Any, _: Any = None) -> Any:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _flatten(prefix: str, v: Any, sep: str, out: dict) -> None:
    if isinstance(v, dict) and v:
        for k, x in v.items():
            _flatten(f"{prefix}{sep}{k}" if prefix else str(k), x, sep, out)
    elif isinstance(v, list) and v:
        for i, x in enumerate(v):
            _flatten(f"{prefix}{sep}{i}" if prefix else str(i), x, sep, out)
    else:
        out[prefix] = v


@register("flatten")
def flatten(v: Any, sep: Any = None) -> Any:
    if not isinstance(v, dict):
        return v
    out: dict[str, Any] = {}
    _flatten("", v, sep or ".", out)
    return out


@register("list")
def to_list(v: Any, _: Any = None) -> Any:
    return v if isinstance(v, list) else [v]


@register("truncate")
def truncate(v: Any, n: Any = None) -> Any:
    return v[: int(n)] if isinstance(v, str) and n else v


@register("round")
def round_to(v: Any, n: Any = None) -> Any:
    return round(to_number(v), int(n or 0))


@register("map")
def map_values(v: Any, table: Any = None) -> Any:
    """Translate via a lookup table, e.g. ``{map: {Male: M, Female: F}}``; unknown values pass through."""
    if isinstance(table, dict) and isinstance(v, (str, int, float, bool)):
        key = to_string(v)
        return table.get(key, table.get(key.lower(), v)) if isinstance(key, str) else v
    return v


@register("compact")
def compact(v: Any, _: Any = None) -> Any:
    """Drop null entries from an object."""
    if isinstance(v, dict):
        return {k: x for k, x in v.items() if x is not None}
    return v


def resolve(spec: str | dict[str, Any]) -> tuple[str, FormatFn, Any]:
    """``"lower"`` or ``{"truncate": 100}`` → (name, function, argument)."""
    if isinstance(spec, str):
        name, arg = spec, None
    elif isinstance(spec, dict) and len(spec) == 1:
        name, arg = next(iter(spec.items()))
    else:
        raise ValueError(f"a format is a name or a one-key mapping, got {spec!r}")
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; known formats: {', '.join(sorted(FORMATS))}")
    return name, FORMATS[name], arg
