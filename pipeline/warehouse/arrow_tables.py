"""Batch tables → Arrow tables with exact column types, the form dlt loads fastest.

Why Arrow rather than Python dicts: the batch already knows every column's type, so dlt's own
type inference (its slowest step) has nothing to do; dlt writes the Arrow data straight to Parquet
(DuckDB, lakes) or CSV for ``COPY`` (Postgres).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa

from pipeline.warehouse.batch import Table
from sdk.warehouse import types as T

ARROW_TYPES = {
    T.INT: pa.int64(),
    T.FLOAT: pa.float64(),
    T.BOOLEAN: pa.bool_(),
    T.DATETIME: pa.timestamp("us", tz="UTC"),
    T.STRING: pa.string(),
    T.TEXT: pa.string(),
    T.JSON: pa.string(),
}
# dlt's names for the schema's types (dlt maps them to each warehouse's own).
DLT_TYPES = {
    T.INT: "bigint",
    T.FLOAT: "double",
    T.BOOLEAN: "bool",
    T.DATETIME: "timestamp",
    T.STRING: "text",
    T.TEXT: "text",
    T.JSON: "json",
}
FROM_DLT = {
    "bigint": T.INT,
    "wei": T.INT,
    "double": T.FLOAT,
    "decimal": T.FLOAT,
    "bool": T.BOOLEAN,
    "timestamp": T.DATETIME,
    "date": T.DATETIME,
    "text": T.STRING,
    "time": T.STRING,
    "binary": T.STRING,
    "json": T.JSON,
}


def _timestamp(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return T.parse_timestamp(value)


def _convert(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == T.DATETIME:
        return _timestamp(value)
    if kind in (T.STRING, T.TEXT):
        return T.to_text(value)
    if kind == T.JSON:
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if kind == T.INT:
        return int(value)
    if kind == T.FLOAT:
        return float(value)
    return bool(value)


# Python types Arrow takes as they are for each column type (the common case: no per-value work).
_NATIVE = {T.INT: int, T.FLOAT: float, T.BOOLEAN: bool, T.STRING: str, T.TEXT: str, T.JSON: str}


def to_arrow(table: Table) -> pa.Table:
    names = list(table.columns)
    arrays = []
    for name in names:
        kind = table.columns[name]
        values = [r.get(name) for r in table.rows]
        native = _NATIVE.get(kind)
        if native is None or not all(v is None or type(v) is native for v in values):
            values = [_convert(v, kind) for v in values]
        arrays.append(pa.array(values, type=ARROW_TYPES[kind]))
    return pa.Table.from_arrays(arrays, names=names)


def dlt_hints(table: Table) -> dict[str, dict[str, Any]]:
    """Column hints for dlt: the types Arrow cannot say (JSON), and the key columns."""
    hints: dict[str, dict[str, Any]] = {}
    for name, kind in table.columns.items():
        if kind == T.JSON:
            hints[name] = {"data_type": "json"}
    for key in table.primary_key:
        hints.setdefault(key, {})["nullable"] = False
    return hints
