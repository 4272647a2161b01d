"""A batch of delivery jobs → the tables of one load: rows, column types, discards.

Pure (no database, no dlt): given the jobs and the columns the warehouse already has, decide

* each job's rows (``sdk.warehouse.event_rows``); an event the row model rejects is set aside with
  the reason (it is dead-lettered, the rest of the batch loads);
* each column's type: an existing column keeps its type; a new column takes the type of its first
  value, ``int`` widening to ``float`` when both arrive in the same load;
* each value: converted to its column's type when that loses nothing, otherwise removed from the
  row and recorded in ``rudder_discards`` (row id, table, column, value, reason);
* ``users``: the latest identify per user; event tables: one row per id (a redelivered event is
  the same row, which is what makes a re-run load idempotent).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sdk.errors import SluiceError
from sdk.warehouse import event_rows, provider_for
from sdk.warehouse import types as T
from sdk.warehouse.users import latest_per_user

DISCARDS_TABLE = "rudder_discards"
_INT64 = (-(2**63), 2**63 - 1)
# Types whose values need no check when the column already has that type (ints are range-checked,
# strings may hold arrays that become JSON text).
_AS_IS = frozenset({T.FLOAT, T.BOOLEAN, T.DATETIME, T.JSON})


@dataclass
class Job:
    id: int
    event: dict[str, Any]
    created_at: dt.datetime | None = None


@dataclass
class Table:
    name: str
    primary_key: tuple[str, ...]
    columns: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Batch:
    tables: dict[str, Table]
    job_ids: list[int]
    rejected: dict[int, str]
    discards: int
    events: int
    tables_added: list[str]
    columns_added: list[str]

    @property
    def rows(self) -> int:
        return sum(len(t.rows) for t in self.tables.values())


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _fits(value: Any, kind: str) -> Any:
    """``value`` converted for a ``kind`` column; raises T.Discard when it cannot be."""
    if kind == T.INT and T.is_whole(value) and not isinstance(value, bool):
        if not _INT64[0] <= int(value) <= _INT64[1]:
            raise T.Discard("the number is beyond a 64-bit integer column")
    if kind in (T.STRING, T.TEXT) and isinstance(value, (list, dict)):
        return T.to_text(value)
    return value


class BatchBuilder:
    """Builds batches for one destination; ``known`` is {table: {column: type}} in the warehouse."""

    def __init__(self, row_provider: str, row_config: dict[str, Any]):
        self.provider = provider_for(row_provider)
        self.row_config = row_config
        upper = self.provider.upper_case
        self.users_table = "USERS" if upper else "users"
        self.discards_table = DISCARDS_TABLE.upper() if upper else DISCARDS_TABLE
        self._c = (lambda n: n.upper()) if upper else (lambda n: n)

    def build(
        self, jobs: list[Job], known: dict[str, dict[str, str]], now: dt.datetime | None = None
    ) -> Batch:
        now = now or dt.datetime.now(dt.UTC)
        rejected: dict[int, str] = {}
        produced: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        for job in jobs:
            try:
                rows = event_rows(job.event, self.provider, self.row_config, {"now": _iso(job.created_at)})
            except SluiceError as e:
                rejected[job.id] = f"warehouse rows: {e.type}: {e.message}"
                continue
            except Exception as e:  # noqa: BLE001 - one bad event must not stop the load
                rejected[job.id] = f"warehouse rows: internal_error: {type(e).__name__}: {e}"
                continue
            produced.extend((r.table, r.columns, r.data) for r in rows)
        produced = self._dedupe(produced)
        types = self._column_types(produced, known)
        tables: dict[str, Table] = {}
        discards: list[dict[str, Any]] = []
        load_columns = {self._c(c) for c in self.provider.load_columns}
        for table, columns, data in produced:
            t = tables.get(table)
            if t is None:
                t = tables[table] = Table(table, (self._c("id"),))
            row: dict[str, Any] = {}
            table_types = types[table]
            for col, value in data.items():
                target = table_types[col]
                if columns[col] == target and target in _AS_IS:
                    row[col] = value  # the common case: same type, nothing to convert
                else:
                    try:
                        row[col] = _fits(T.coerce(value, columns[col], target), target)
                    except T.Discard as e:
                        discards.append(self._discard(table, data, col, value, str(e), now))
                        continue
                t.columns[col] = target
            for col in load_columns:
                row[col] = now
                t.columns[col] = T.DATETIME
            t.rows.append(row)
        if discards:
            dt_ = tables[self.discards_table] = Table(
                self.discards_table, tuple(self._c(c) for c in ("table_name", "row_id", "column_name"))
            )
            dt_.columns = {
                self._c(c): k
                for c, k in (
                    ("table_name", T.STRING),
                    ("row_id", T.STRING),
                    ("column_name", T.STRING),
                    ("column_value", T.STRING),
                    ("reason", T.STRING),
                    ("received_at", T.DATETIME),
                    ("uuid_ts", T.DATETIME),
                )
            }
            dt_.rows = discards
        added_tables = sorted(t for t in tables if t not in known)
        added_columns = sorted(
            f"{t.name}.{c}" for t in tables.values() for c in t.columns if c not in known.get(t.name, {})
        )
        return Batch(
            tables=tables,
            job_ids=[j.id for j in jobs if j.id not in rejected],
            rejected=rejected,
            discards=len(discards),
            events=len(jobs) - len(rejected),
            tables_added=added_tables,
            columns_added=added_columns,
        )

    def _dedupe(
        self, produced: list[tuple[str, dict[str, str], dict[str, Any]]]
    ) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
        """One row per (table, id): the last for event tables, the latest identify for users."""
        idc = self._c("id")
        users = latest_per_user(
            ((i, data) for i, (table, _, data) in enumerate(produced) if table == self.users_table), idc
        )
        keep_users = set(users.values())
        last: dict[tuple[str, Any], int] = {}
        for i, (table, _, data) in enumerate(produced):
            if table != self.users_table:
                last[(table, data.get(idc))] = i
        keep = set(last.values()) | keep_users
        return [p for i, p in enumerate(produced) if i in keep]

    @staticmethod
    def _column_types(
        produced: list[tuple[str, dict[str, str], dict[str, Any]]], known: dict[str, dict[str, str]]
    ) -> dict[str, dict[str, str]]:
        types: dict[str, dict[str, str]] = {}
        for table, columns, _ in produced:
            have = known.get(table, {})
            mine = types.setdefault(table, {})
            for col, kind in columns.items():
                if col in have:
                    mine[col] = have[col]
                elif col in mine:
                    mine[col] = T.promote(mine[col], kind)
                else:
                    mine[col] = kind
        return types

    def _discard(
        self, table: str, data: dict[str, Any], col: str, value: Any, reason: str, now: dt.datetime
    ) -> dict[str, Any]:
        c = self._c
        received = T.to_utc_iso(data.get(c("received_at")))
        return {
            c("table_name"): table,
            c("row_id"): T.to_text(data.get(c("id"))),
            c("column_name"): col,
            c("column_value"): T.to_text(value),
            c("reason"): reason,
            c("received_at"): received or now,
            c("uuid_ts"): now,
        }
