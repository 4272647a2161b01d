"""Column types: what a value is, how types combine, and which values a column can still take.

Types are the schema's portable names: ``int``, ``float``, ``boolean``, ``datetime``, ``string``,
``json`` (and ``text`` for Redshift's full-event column); each loader maps them to its warehouse.

* Inference: booleans, whole numbers (JavaScript has one number type, so ``2.0`` is ``int``),
  other numbers, timestamp strings in the documented ISO-8601 subsets, other strings; arrays are
  ``string`` columns that keep the array as their value.
* A column's type is set by the first value it sees. Within one load, a new column seen as both
  ``int`` and ``float`` becomes ``float`` (:func:`promote`); any other mix keeps the first type.
* Once a column exists, a value of another type is converted when that loses nothing (anything
  to ``string``/``json``, ``int`` to ``float``, a whole ``float`` to ``int``) and otherwise goes to
  the discards table (:func:`coerce` raises :class:`Discard`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

INT, FLOAT, BOOLEAN, DATETIME = "int", "float", "boolean", "datetime"
STRING, JSON, TEXT = "string", "json", "text"
TYPES = (INT, FLOAT, BOOLEAN, DATETIME, STRING, JSON, TEXT)

# The documented subsets of ISO 8601: 2019-09-26, 2009-05-19 14:39:22, 2019-09-26T06:30:12.984Z,
# 2020-02-11 04:56:55.175116, 2019-09-26T06:30:12.984+0530 and +05:30.
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$"
)


def _parse(value: str) -> dt.datetime | None:
    if len(value) < 10 or value[4] != "-" or not value[:4].isdigit():
        return None  # the common case, decided without the regex
    m = _TIMESTAMP.match(value)
    if not m:
        return None
    y, mo, d, hh, mm, ss, frac, zone = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        tz = dt.UTC
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
            tz = dt.timezone(sign * offset)
        return dt.datetime(
            int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), micro, tzinfo=tz
        )
    except ValueError:
        return None


def parse_timestamp(value: Any) -> dt.datetime | None:
    """The instant a timestamp string names (timezone-aware), or None."""
    return _parse(value) if isinstance(value, str) else None


def is_timestamp(value: Any) -> bool:
    """True for a string in one of the documented timestamp formats that names a real instant."""
    return isinstance(value, str) and _parse(value) is not None


def to_utc_iso(value: Any) -> str | None:
    """``2020-01-24T11:59:02.403+05:30`` → ``2020-01-24T06:29:02.403Z`` (millisecond precision, as
    the event timestamps are documented); None when it is not a timestamp."""
    if not isinstance(value, str):
        return None
    parsed = _parse(value)
    if parsed is None:
        return None
    return parsed.astimezone(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def is_whole(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def data_type(value: Any) -> str:
    """The column type a value asks for (see the module docstring)."""
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return INT if value.is_integer() else FLOAT
    if isinstance(value, str):
        return DATETIME if is_timestamp(value) else STRING
    return STRING


def promote(first: str, other: str) -> str:
    """The type of a new column that saw ``first`` and then ``other`` in the same load."""
    if first == other:
        return first
    if {first, other} == {INT, FLOAT}:
        return FLOAT
    return first


class Discard(ValueError):
    """The value cannot be stored in the column's type; it belongs in the discards table."""


def to_text(value: Any) -> str:
    """How a value reads in a string column: JSON for arrays and objects, ``true``/``false``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def coerce(value: Any, value_type: str, column_type: str) -> Any:
    """``value`` (inferred as ``value_type``) made fit for a ``column_type`` column, or Discard."""
    if value is None or value_type == column_type:
        return value
    if column_type in (STRING, TEXT):
        return to_text(value)
    if column_type == JSON:
        if value_type in (STRING, DATETIME) and isinstance(value, str):
            return json.dumps(value, ensure_ascii=False)
        return to_text(value) if isinstance(value, (list, dict)) else json.dumps(value)
    if column_type == FLOAT and value_type == INT and not isinstance(value, bool):
        return float(value)
    if column_type == INT and value_type == FLOAT and is_whole(value):
        return int(value)
    if column_type == DATETIME and value_type == STRING and is_timestamp(value):
        return value
    raise Discard(f"a {value_type} value does not fit a {column_type} column")
