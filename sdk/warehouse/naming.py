"""Table and column names: snake_case, safe characters, reserved words, length, case.

The rules (from the warehouse-schema documentation):

* names are snake-cased: ``Added to Cart`` → ``added_to_cart``, ``camelCase`` → ``camel_case``;
  with ``underscoreDivideNumbers`` (the default for new destinations) digits become their own
  words (``omega v2`` → ``omega_v_2``), without it they stay attached (``omega_v2``);
* anything but ASCII letters, digits and ``_`` becomes ``_`` (``Cízǔ`` → ``c_z``), runs of ``_``
  collapse, trailing ``_`` go; leading underscores of the original name are kept (``__ts``);
* a name that starts with a digit gets a leading ``_`` (``9omega`` → ``_9_omega``);
* a reserved word of the warehouse, or (for tables) one of the schema's own table names, gets a
  leading ``_`` unless the event asks ``skipReservedKeywordsEscaping``;
* names are cut to the warehouse's limit (63 on PostgreSQL, none on object-store lakes, else 127);
* Snowflake names are upper case.

``useBlendoCasing`` (a per-event option kept for users migrating from Blendo) only lower-cases,
and for columns replaces characters other than letters, digits, ``_``, ``$`` and ``\\``.
"""

from __future__ import annotations

import re

from sdk.warehouse.providers import RESERVED_TABLES, Provider
from sdk.warehouse.words import snake_case

_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_BLENDO_UNSAFE = re.compile(r"[^a-z0-9_$\\]")
_RUNS = re.compile(r"_+")
_LEADING = re.compile(r"^_+")


class Naming:
    """How one destination names things (provider rules plus the event's and config's options).

    Names repeat across events (every event has ``context_library_name``), so each instance keeps
    the names it has computed; instances are shared between events with the same settings."""

    __slots__ = ("provider", "divide_numbers", "blendo", "escape_keywords", "_columns", "_plain", "_tables")

    def __init__(
        self,
        provider: Provider,
        divide_numbers: bool = True,
        blendo: bool = False,
        escape_keywords: bool = True,
    ):
        self.provider = provider
        self.divide_numbers = divide_numbers
        self.blendo = blendo
        self.escape_keywords = escape_keywords
        self._columns: dict[str, str] = {}
        self._plain: dict[str, str] = {}
        self._tables: dict[str, str] = {}

    def column(self, raw: str) -> str:
        return self._column_memo(self._columns, raw, self.escape_keywords)

    def plain_column(self, raw: str) -> str:
        """The column name without reserved-word escaping: what user data may not use when the
        schema sets this column itself."""
        return self._column_memo(self._plain, raw, False)

    def _column_memo(self, memo: dict[str, str], raw: str, escape: bool) -> str:
        name = memo.get(raw)
        if name is None:
            name = _remember(memo, raw, _column(self, raw, escape=escape))
        return name

    def table(self, raw: str) -> str:
        name = self._tables.get(raw)
        if name is None:
            name = _remember(self._tables, raw, _table(self, raw, escape=self.escape_keywords))
        return name

    def event_name(self, raw: str) -> str:
        """The ``event`` column of a track row: the table name before reserved-word escaping and
        before upper-casing (it is a value, not an identifier)."""
        name = _table(self, raw, escape=False)
        return name.lower() if self.provider.upper_case else name

    def own_table(self, name: str) -> str:
        """One of the schema's own tables (``tracks``, ``users``...): escaped only if it is a
        reserved word of the warehouse (``groups`` on BigQuery)."""
        return _finish(self, name, escape=self.escape_keywords, table=False)


def _remember(memo: dict[str, str], raw: str, name: str) -> str:
    if len(memo) > 100_000:  # unbounded key spaces (ids as keys) must not grow memory forever
        memo.clear()
    memo[raw] = name
    return name


def _snake(raw: str, divide_numbers: bool) -> str:
    lead = _LEADING.match(raw)
    name = snake_case(raw, with_numbers=not divide_numbers)
    name = _RUNS.sub("_", _UNSAFE.sub("_", name)).strip("_")
    if lead and name:
        name = lead.group(0) + name
    return name


def _finish(n: Naming, name: str, *, escape: bool, table: bool) -> str:
    if name[:1].isdigit():
        name = "_" + name
    if escape and name:
        lowered = name.lower()
        if lowered.upper() in n.provider.keywords or (table and lowered in RESERVED_TABLES):
            name = "_" + name
    if n.provider.max_name is not None:
        name = name[: n.provider.max_name]
    return name.upper() if n.provider.upper_case else name


def _column(n: Naming, raw: str, *, escape: bool) -> str:
    raw = str(raw)
    if n.blendo:
        name = _BLENDO_UNSAFE.sub("_", raw.lower())
    else:
        name = _snake(raw, n.divide_numbers)
    return _finish(n, name, escape=escape, table=False)


def _table(n: Naming, raw: str, *, escape: bool) -> str:
    raw = str(raw)
    name = raw.lower() if n.blendo else _snake(raw, n.divide_numbers)
    return _finish(n, name, escape=escape, table=True)
