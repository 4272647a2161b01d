"""Validate and normalise incoming events, the way Segment-compatible clients expect.

Plain dict checks rather than a pydantic model: this runs for every event on the hot path and a
handful of ``isinstance`` tests is several times cheaper than model validation (measured), while
still reporting which field is wrong.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")
_TYPE_SET = frozenset(EVENT_TYPES)
_ID_TYPES = (str, int)  # exact types: a JSON true/false (bool) is not an id
_UTC = dt.UTC
_fromisoformat = dt.datetime.fromisoformat
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_NAIVE = dt.datetime(1970, 1, 1)
_US = dt.timedelta(microseconds=1)
_MAX_US = (dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC) - _EPOCH) // _US
_MS_SUFFIX = tuple(f".{ms:03d}Z" for ms in range(1000))
_SECOND_PREFIX: dict[int, str] = {}

# Documented limits (pipeline/README.md, *Gateway limits*). Identifiers become index keys downstream
# (delivery_jobs.user_key, dedupe keys); the processor hashes long ones, but an id this long is a client
# bug, and a 400 that names the field is the useful answer.
MAX_ID_BYTES = 1024
ID_FIELDS = ("userId", "anonymousId", "messageId", "groupId", "previousId")
# How deep objects and arrays may nest; the event object itself is level 1. Far below any recursion limit
# on the way to the vendor (mappers, batching, JSON encoders), far above what real events use.
MAX_DEPTH = 64
# An int id this many bits long prints as more than MAX_ID_BYTES digits.
_MAX_INT_ID_BITS = int(MAX_ID_BYTES * 3.32)


class EventError(Exception):
    """The request cannot be accepted; ``status`` is the HTTP answer (400, 401, 408, 413 or 503)."""

    def __init__(
        self, message: str, status: int = 400, code: str = "invalid_request", retry_after: int | None = None
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after


def parse_time(value: Any, field: str, where: str) -> dt.datetime:
    if not isinstance(value, str) or not value:
        raise EventError(f"{where}: {field} must be an ISO-8601 string such as 2024-05-01T12:00:00.000Z")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise EventError(
            f"{where}: {field} {value!r} is not an ISO-8601 timestamp; send e.g. 2024-05-01T12:00:00.000Z"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    if parsed.utcoffset():
        # 9999-12-31T23:59:59-01:00 is a valid ISO string whose UTC time (year 10000) no datetime holds.
        try:
            parsed.astimezone(_UTC)
        except OverflowError:
            raise EventError(
                f"{where}: {field} {value!r} is outside the supported range (years 0001 to 9999 in UTC); "
                "send the client's real clock time"
            ) from None
    return parsed


def iso(ts: dt.datetime) -> str:
    """``2024-05-01T12:00:00.000Z`` (positional ``isoformat`` arguments: keywords cost ~2x per call)."""
    if ts.tzinfo is not _UTC:
        ts = ts.astimezone(_UTC)
    return ts.isoformat("T", "milliseconds")[:-6] + "Z"


def _iso_us(us: int) -> str:
    """``iso`` of a time given in microseconds since 1970 (0 <= us <= _MAX_US), without a datetime.

    ``isoformat`` was the largest single cost of ``normalise`` (profiled); the events of a batch fall
    in a few distinct seconds, so the ``YYYY-MM-DDTHH:MM:SS`` part is remembered per second. Truncates
    to milliseconds like ``isoformat(timespec="milliseconds")``.
    """
    sec, frac = divmod(us, 1_000_000)
    prefix = _SECOND_PREFIX.get(sec)
    if prefix is None:
        if len(_SECOND_PREFIX) > 8192:
            _SECOND_PREFIX.clear()
        prefix = _SECOND_PREFIX[sec] = (_EPOCH_NAIVE + dt.timedelta(seconds=sec)).isoformat("T", "seconds")
    return prefix + _MS_SUFFIX[frac // 1000]


def _time(value: Any, field: str, where: str) -> dt.datetime:
    """``parse_time`` with a shortcut for the usual ``...Z`` strings.

    ``fromisoformat`` reads a trailing ``Z`` as UTC exactly as it reads the ``+00:00`` that
    ``parse_time`` puts in its place, so when it accepts the string as is the result is the same;
    anything it refuses goes through ``parse_time`` for the full treatment and the error message.
    """
    if type(value) is str and value[-1:] == "Z":
        try:
            return _fromisoformat(value)
        except ValueError:
            pass
    return parse_time(value, field, where)


def _iso_or_400(received: dt.datetime, sent: dt.datetime, orig: dt.datetime, where: str) -> str:
    try:
        return iso(received - (sent - orig))
    except OverflowError:
        raise EventError(
            f"{where}: sentAt and originalTimestamp are too far apart; send the client's real clock times"
        ) from None


def _too_long(value: Any) -> bool:
    """True for an id above MAX_ID_BYTES (UTF-8); ids of other types are checked elsewhere or not at all."""
    t = type(value)
    if t is str:
        # 256 characters are at most 1024 UTF-8 bytes: only longer strings need encoding.
        return len(value) > 256 and len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES
    if t is int:
        return value.bit_length() > _MAX_INT_ID_BITS and len(str(value)) > MAX_ID_BYTES
    return False


def _long_id(where: str, field: str) -> EventError:
    return EventError(
        f"{where}: {field} is longer than {MAX_ID_BYTES} bytes; send a shorter id (for example a hash of it)"
    )


def nesting_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when objects/arrays in ``value`` nest more than ``limit`` levels (``value`` itself is level 1).

    Iterative, so it cannot hit the recursion limit it guards against; the gateway calls it only for
    events whose text has more than ``limit`` brackets (see wire.copy_lines), so it is off the hot path.
    """
    if type(value) not in (dict, list):
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if type(node) is dict else node
        for child in children:
            if type(child) in (dict, list):
                stack.append((child, depth + 1))
    return False


def _merge(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """Deep merge where the event's own values win over the batch's top-level ones."""
    out = dict(base)
    for k, v in own.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def normalise(
    event: Any,
    *,
    etype: str | None,
    received: dt.datetime,
    received_iso: str,
    where: str,
    batch_sent_at: Any = None,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
    received_us: int | None = None,
) -> dict[str, Any]:
    """Check one event and fill in what the server owns; mutates and returns ``event``.

    Written for speed (``type(x) is dict`` where ``json.loads`` guarantees exact types, one bound
    ``get``): it runs for every event the gateway accepts.
    """
    if type(event) is not dict:
        raise EventError(f"{where}: an event must be a JSON object, got {type(event).__name__}")
    get = event.get
    if etype is None:
        t = get("type")
        lowered = t.lower() if type(t) is str else None
        if lowered not in _TYPE_SET:
            raise EventError(f"{where}: type must be one of {', '.join(EVENT_TYPES)}, got {t!r}")
        etype = lowered
    event["type"] = etype
    uid = get("userId")
    aid = get("anonymousId")
    if (uid is None or uid == "") and (aid is None or aid == ""):
        raise EventError(f"{where}: the event needs a userId or an anonymousId; set one of them")
    if uid is not None:
        if type(uid) not in _ID_TYPES:
            raise EventError(f"{where}: userId must be a string, got {type(uid).__name__}")
        if _too_long(uid):
            raise _long_id(where, "userId")
    if aid is not None:
        if type(aid) not in _ID_TYPES:
            raise EventError(f"{where}: anonymousId must be a string, got {type(aid).__name__}")
        if _too_long(aid):
            raise _long_id(where, "anonymousId")
    for f in _OBJECT_FIELDS:
        v = get(f)
        if v is not None and type(v) is not dict:
            raise EventError(f"{where}: {f} must be a JSON object, got {type(v).__name__}")
    if etype == "track":
        name = get("event")
        if type(name) is not str or not name.strip():
            raise EventError(f"{where}: a track event needs an 'event' name (a non-empty string)")
    elif etype == "group":
        gid = get("groupId")
        if gid in (None, ""):
            raise EventError(f"{where}: a group event needs a groupId")
        if _too_long(gid):
            raise _long_id(where, "groupId")
    elif etype == "alias":
        pid = get("previousId")
        if pid in (None, ""):
            raise EventError(f"{where}: an alias event needs a previousId (the old id)")
        if _too_long(pid):
            raise _long_id(where, "previousId")
    mid = get("messageId")
    if mid is None or mid == "":
        event["messageId"] = str(uuid.uuid4())
    elif type(mid) not in _ID_TYPES:
        raise EventError(f"{where}: messageId must be a string, got {type(mid).__name__}")
    elif _too_long(mid):
        raise _long_id(where, "messageId")
    if batch_context:
        event["context"] = _merge(batch_context, event.get("context") or {})
    if batch_integrations:
        event["integrations"] = _merge(batch_integrations, event.get("integrations") or {})
    if batch_sent_at is not None and get("sentAt") is None:
        event["sentAt"] = batch_sent_at
    event["receivedAt"] = received_iso
    ts = get("timestamp")
    if ts is None or ts == "":
        orig = get("originalTimestamp")
        sent = get("sentAt")
        if orig is not None and orig != "":
            o = _time(orig, "originalTimestamp", where)
            if sent is not None and sent != "":
                s = _time(sent, "sentAt", where)
                # The client's clock may be wrong; the offset between its two readings is not.
                if received_us is None:
                    received_us = (received - _EPOCH) // _US
                us = received_us - (s - o) // _US
                event["timestamp"] = _iso_us(us) if 0 <= us <= _MAX_US else _iso_or_400(received, s, o, where)
            else:
                us = (o - _EPOCH) // _US
                event["timestamp"] = _iso_us(us) if 0 <= us <= _MAX_US else iso(o)
        else:
            event["timestamp"] = received_iso
    else:
        _time(ts, "timestamp", where)
    return event


def normalise_batch(
    events: list[Any],
    *,
    received: dt.datetime,
    received_iso: str,
    batch_sent_at: Any = None,
    batch_context: dict[str, Any] | None = None,
    batch_integrations: dict[str, Any] | None = None,
) -> None:
    """``normalise`` every event of a ``/v1/batch`` request (in place) and drop their ``writeKey``."""
    received_us = (received - _EPOCH) // _US
    for i, ev in enumerate(events):
        normalise(
            ev,
            etype=None,
            received=received,
            received_iso=received_iso,
            where=f"batch[{i}]",
            batch_sent_at=batch_sent_at,
            batch_context=batch_context,
            batch_integrations=batch_integrations,
            received_us=received_us,
        )
        ev.pop("writeKey", None)
