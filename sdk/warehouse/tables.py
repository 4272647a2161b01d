"""One event → its warehouse rows: which tables, which columns, which values.

The layout analysts' dbt models expect (the documented warehouse schema):

=========  ===================================================================================
track      a ``tracks`` row (standard columns only) and a row in the event's own table
           (``Added to Cart`` → ``added_to_cart``) with the properties too
identify   an ``identifies`` row and a ``users`` row keyed by the user id (latest traits win)
page       ``pages``        screen    ``screens``      group     ``groups``      alias  ``aliases``
extract    a row in the table named after the event (cloud extracts: ``id`` is the ``recordId``)
=========  ===================================================================================

Every row carries the flattened ``context_*`` columns and the standard columns (``id``,
``anonymous_id``, ``user_id``, ``sent_at``, ``timestamp``, ``received_at``,
``original_timestamp``, ``channel``, ``context_ip``...). The standard columns belong to Sluice: a
property or trait with the same (snake-cased) name is dropped, never mixed in, and the standard
value keeps its own type. Timestamps are normalised to UTC ISO-8601 with milliseconds. ``uuid_ts``
(and ``loaded_at`` on BigQuery) are typed here and filled by the loader at load time.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from sdk.warehouse import types as T
from sdk.warehouse.errors import InstrumentationError, TooManyColumnsError
from sdk.warehouse.flatten import CLOUD_MAX_DEPTH, Flat, Flattener, event_json_paths, is_empty
from sdk.warehouse.settings import Settings

EVENT_TABLES = {
    "identify": "identifies",
    "page": "pages",
    "screen": "screens",
    "group": "groups",
    "alias": "aliases",
}
TIMESTAMP_FIELDS = (
    ("sent_at", "sentAt"),
    ("timestamp", "timestamp"),
    ("received_at", "receivedAt"),
    ("original_timestamp", "originalTimestamp"),
)
# RudderStack sources (warehouse syncs, ETL) set this channel; their rows may be wide.
SOURCES_CHANNEL = "sources"
_CLOUD = ("cloud", "singer-protocol")


@dataclass
class Row:
    """One warehouse row: the table, its columns' types and the values (``None`` never stored)."""

    table: str
    columns: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {"table": self.table, "columns": self.columns, "data": self.data}


class _Builder:
    """Collects one row: user data first (later sources win), then the standard columns."""

    def __init__(self, settings: Settings, flattener: Flattener):
        self.s = settings
        self.f = flattener
        self.columns: dict[str, str] = {}
        self.data: dict[str, Any] = {}

    def put(self, flat: Flat) -> None:
        name = self.s.naming.column(flat.raw)
        if not name:
            return
        self.columns[name] = flat.type
        self.data[name] = flat.value

    def add(self, obj: Any, path: str, prefix: str = "", *, deep_limit: bool = False) -> None:
        f = self.f
        if deep_limit and f.max_depth is None and self.s.source_category == "cloud":
            f = Flattener(f.provider, f.json_paths, CLOUD_MAX_DEPTH)
        for flat in f.flatten(obj, path=path, prefix=prefix):
            self.put(flat)

    def standard(self, values: dict[str, tuple[Any, str | None]]) -> None:
        """Set the standard columns: ``{name: (value, type or None to infer)}``. User data named
        like a standard column is dropped whether or not the column gets a value; the column itself
        is written under its escaped name where the name is a reserved word (``_timestamp``)."""
        for raw, (value, kind) in values.items():
            plain = self.s.naming.plain_column(raw)
            self.columns.pop(plain, None)
            self.data.pop(plain, None)
            if is_empty(value):
                continue
            name = self.s.naming.column(raw)
            self.columns[name] = kind or T.data_type(value)
            self.data[name] = value

    def load_columns(self) -> None:
        for raw in self.s.provider.load_columns:
            self.columns[self.s.naming.column(raw)] = T.DATETIME

    def row(self, table: str) -> Row:
        return Row(table, self.columns, self.data)


def _timestamp(value: Any) -> tuple[Any, str | None]:
    iso = T.to_utc_iso(value)
    return (iso, T.DATETIME) if iso is not None else (value, None)


def _scalar(value: Any) -> Any:
    """Objects are never standard-column values (``channel: {}`` is dropped, not stored)."""
    return None if isinstance(value, (dict, list)) else value


def _auto_message_id(event: dict[str, Any]) -> str:
    """A stable id for an event that came without one: the same event always gets the same id,
    so a replayed or re-loaded event still merges onto its first row."""
    text = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "auto-" + str(uuid.uuid5(uuid.NAMESPACE_URL, "sluice:" + text))


class EventRows:
    """Builds the rows of one event (see the module docstring)."""

    def __init__(self, event: dict[str, Any], settings: Settings, now: str | None = None):
        if not isinstance(event, dict):
            raise InstrumentationError("the event must be a JSON object")
        self.event = event
        self.s = settings
        self.type = str(event.get("type") or "").strip().lower()
        if not self.type:
            raise InstrumentationError("the event has no type; set type to track, identify, page, ...")
        self.message_id = event.get("messageId")
        if is_empty(self.message_id) or isinstance(self.message_id, (dict, list)):
            self.message_id = _auto_message_id(event)
        self.received_at = event.get("receivedAt")
        if is_empty(self.received_at):
            self.received_at = now
        ctx = event.get("context")
        self.context = ctx if isinstance(ctx, dict) else {}
        self.flattener = Flattener(settings.provider, event_json_paths(settings.json_paths, self.type))
        sources = self.context.get("sources")
        self.cloud = (
            self.type == "track"
            and settings.source_category in _CLOUD
            and isinstance(sources, dict)
            and not is_empty(sources.get("version"))
        )
        if self.cloud and is_empty(event.get("recordId")):
            raise InstrumentationError("recordId cannot be empty for cloud sources events")
        self._context_flat: list[Flat] | None = None
        self._standard_cols: dict[str, tuple[Any, str | None]] | None = None

    # -- pieces -----------------------------------------------------------------------------------
    def _builder(self) -> _Builder:
        b = _Builder(self.s, self.flattener)
        if self._context_flat is None:
            self._context_flat = list(self.flattener.flatten(self.context, path="context", prefix="context_"))
        for flat in self._context_flat:
            b.put(flat)
        return b

    def _ips(self) -> dict[str, tuple[Any, str | None]]:
        passed = _scalar(self.context.get("ip"))
        request = _scalar(self.event.get("request_ip"))
        return {
            "context_ip": (passed if not is_empty(passed) else request, None),
            "context_request_ip": (request, None),
            "context_passed_ip": (passed, None),
        }

    def _standard(self) -> dict[str, tuple[Any, str | None]]:
        """The standard columns (a fresh copy each time: callers add their own)."""
        if self._standard_cols is None:
            self._standard_cols = self._compute_standard()
        return dict(self._standard_cols)

    def _compute_standard(self) -> dict[str, tuple[Any, str | None]]:
        ev = self.event
        out: dict[str, tuple[Any, str | None]] = {
            "id": (self.message_id, None),
            "anonymous_id": (_scalar(ev.get("anonymousId")), None),
            "user_id": (_scalar(ev.get("userId")), None),
            "channel": (_scalar(ev.get("channel")), None),
        }
        for col, key in TIMESTAMP_FIELDS:
            out[col] = _timestamp(self.received_at if key == "receivedAt" else ev.get(key))
        out.update(self._ips())
        return out

    def _finish(
        self, b: _Builder, table: str, standard: dict[str, tuple[Any, str | None]], *, main: bool = True
    ) -> Row:
        """``main``: the event's primary table (tracks, identifies, pages...), the one that also
        keeps the full event when ``storeFullEvent`` is on."""
        b.standard(standard)
        if self.s.store_full_event and main:
            b.standard({"rudder_event": (self._full_event(), self.s.provider.rudder_event_type)})
        b.load_columns()
        return b.row(table)

    def _full_event(self) -> str:
        return json.dumps(self.event, separators=(",", ":"), ensure_ascii=False, default=str)

    def _user_data(self, b: _Builder) -> None:
        """identify: userProperties, then context.traits (when allowed), then traits (which win)."""
        ev = self.event
        b.add(ev.get("userProperties"), "userProperties", deep_limit=True)
        if self.s.users_context_traits:
            b.add(self.context.get("traits"), "context.traits", deep_limit=True)
        b.add(ev.get("traits"), "traits", deep_limit=True)

    # -- per event type ---------------------------------------------------------------------------
    def rows(self) -> list[Row]:
        handler = {
            "track": self._track,
            "identify": self._identify,
            "page": self._page,
            "screen": self._page,
            "group": lambda: self._traits_row("group_id", "groupId"),
            "alias": lambda: self._traits_row("previous_id", "previousId"),
            "extract": self._extract,
        }.get(self.type)
        if handler is None:
            raise InstrumentationError(
                f"unknown event type {self.type!r}; warehouses take track, identify, page, screen, "
                "group, alias and extract events"
            )
        rows = handler()
        self._check_width(rows)
        return rows

    def _event_name(self) -> str | None:
        name = self.event.get("event")
        if isinstance(name, (dict, list)) or is_empty(name):
            return None
        return str(name)

    def _track(self) -> list[Row]:
        name = self._event_name()
        standard = self._standard()
        standard["event_text"] = (name, None)
        standard["event"] = (self.s.naming.event_name(name) if name else None, None)
        rows: list[Row] = []
        if self.cloud:
            standard["record_id"] = (None, None)
        if not self.s.skip_tracks:
            tracks = dict(standard)
            if self.cloud:
                tracks["record_id"] = (T.to_text(self.event.get("recordId")), T.STRING)
            rows.append(self._finish(self._builder(), self.s.naming.own_table("tracks"), tracks))
        table = self.s.naming.table(name) if name else ""
        if table:
            b = self._builder()
            b.add(self.event.get("userProperties"), "userProperties", deep_limit=True)
            b.add(self.event.get("properties"), "properties", deep_limit=True)
            own = dict(standard)
            if self.cloud:
                own["id"] = (self.event.get("recordId"), None)
            rows.append(self._finish(b, table, own, main=False))
        return rows

    def _identify(self) -> list[Row]:
        b = self._builder()
        self._user_data(b)
        rows = [self._finish(b, self.s.naming.own_table("identifies"), self._standard())]
        user_id = _scalar(self.event.get("userId"))
        if self.s.provider.users_table and not self.s.skip_users and not is_empty(user_id):
            u = self._builder()
            self._user_data(u)
            not_users = ("anonymous_id", "user_id", "channel")
            std = {k: v for k, v in self._standard().items() if k not in not_users}
            if self.s.provider.lake:
                # Lakes' users rows carry only the receipt time (the other times stay reserved).
                for col in ("sent_at", "timestamp", "original_timestamp"):
                    std[col] = (None, None)
            std["id"] = (user_id, None)
            u.standard({"anonymous_id": (None, None), "user_id": (None, None), "channel": (None, None)})
            rows.append(self._finish(u, self.s.naming.own_table("users"), std, main=False))
        return rows

    def _page(self) -> list[Row]:
        b = self._builder()
        props = self.event.get("properties")
        b.add(props, "properties", deep_limit=True)
        standard = self._standard()
        name = _scalar(self.event.get("name"))
        if is_empty(name) and isinstance(props, dict):
            name = _scalar(props.get("name"))
        standard["name"] = (name, None)
        return [self._finish(b, self.s.naming.own_table(EVENT_TABLES[self.type]), standard)]

    def _traits_row(self, own_column: str, event_key: str) -> list[Row]:
        """group and alias: traits as columns, plus the event's own id column (group_id, previous_id)."""
        b = self._builder()
        b.add(self.event.get("traits"), "traits", deep_limit=True)
        standard = self._standard()
        standard[own_column] = (_scalar(self.event.get(event_key)), None)
        return [self._finish(b, self.s.naming.own_table(EVENT_TABLES[self.type]), standard)]

    def _extract(self) -> list[Row]:
        name = self._event_name()
        if not name:
            raise InstrumentationError("an extract event needs an event name: it names the table")
        record_id = self.event.get("recordId")
        if is_empty(record_id):
            raise InstrumentationError("an extract event needs a recordId: it is the row's id")
        b = self._builder()
        b.add(self.event.get("properties"), "properties", deep_limit=True)
        standard = {
            "id": (record_id, None),
            "event": (name, None),
            "received_at": _timestamp(self.received_at),
        }
        return [self._finish(b, self.s.naming.table(name), standard)]

    def _check_width(self, rows: list[Row]) -> None:
        if self.s.provider.lake or self.event.get("channel") == SOURCES_CHANNEL:
            return
        for r in rows:
            if len(r.columns) > self.s.max_columns:
                raise TooManyColumnsError(
                    f"Too many columns outputted from the event: {len(r.columns)} columns for table "
                    f"{r.table!r}, the limit is {self.s.max_columns}; send nested data as a JSON "
                    "column (jsonPaths) or drop unneeded properties"
                )
