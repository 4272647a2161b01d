"""JSON in, COPY text out: the gateway's per-event byte work, on ``orjson`` where that is exact.

Why two paths: ``orjson`` parses and encodes several times faster than the stdlib (it was ~40% of the
gateway's CPU), but it is not a drop-in replacement for what the gateway has always accepted:

* it turns integers outside the 64-bit range into floats (the stdlib keeps them exact, and Postgres
  ``jsonb`` stores them exactly), so bodies with a run of 19+ digits take the stdlib path;
* it rejects some bodies the stdlib accepts (a UTF-8 BOM, UTF-16/32 bodies, lone surrogates, numbers
  that overflow a double, nesting deeper than 1024); those take the stdlib path too, which then gives
  exactly the old answer (accepted, or a 400 with the stdlib's message).

Every body ``orjson`` accepts, the stdlib accepts with the same value (tests/pipeline/test_gateway_wire.py
checks this property), so the fast path changes speed, not behaviour.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from pipeline.gateway.events import MAX_DEPTH, EventError, nesting_exceeds

# Server-added fields (messageId, receivedAt, timestamp) may push an event at the client's own
# limit slightly over; they are not the client's fault.
SERVER_FIELDS_SLACK = 512

# 1-9 -> 0, so one substring search finds any run of 19 digits (integers orjson would turn into floats
# have at least 19). A run inside a string only costs that request the slower path.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19
_STR_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")

_std_loads = json.loads
# allow_nan=False: a number the stdlib parsed as inf (1e400) must be a 400, not "Infinity" in a COPY
# that Postgres rejects (which would fail every request in the same group commit).
_std_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_dumps = orjson.dumps
_loads = orjson.loads
_OrjsonDecodeError = orjson.JSONDecodeError
_OrjsonEncodeError = orjson.JSONEncodeError


def _reject_constant(name: str) -> Any:
    raise EventError(f"{name} is not valid JSON; send numbers as finite values or strings")


def decode_body(body: bytes) -> tuple[Any, bool]:
    """Parse a request body; returns ``(payload, fast)``, ``fast`` when orjson parsed it.

    Raises EventError (400) with the stdlib's description when the body is not valid JSON.
    """
    if _LONG_DIGIT_RUN not in body.translate(_DIGITS_TO_ZERO):
        try:
            return _loads(body), True
        except _OrjsonDecodeError:
            pass  # maybe valid for the stdlib (BOM, UTF-16, lone surrogate, ...): let it decide
    try:
        return _std_loads(body, parse_constant=_reject_constant), False
    except (ValueError, RecursionError) as e:
        raise EventError(f"the body is not valid JSON ({e}); send a JSON object") from None


def loads_exact(text: str) -> Any:
    """Parse JSON text that is already known to be valid (a stored event) with the same exactness rule
    as ``decode_body``: orjson, unless a run of 19+ digits means an integer it would round.

    Raises ValueError (or RecursionError) when the stdlib cannot hold the value either, e.g. an integer
    of more than 4300 digits, which jsonb stores but Python refuses to convert.
    """
    if "0" * 19 not in text.translate(_STR_DIGITS_TO_ZERO):
        try:
            return _loads(text)
        except _OrjsonDecodeError:
            pass
    return _std_loads(text)


def _too_large(i: int, max_event: int) -> EventError:
    return EventError(f"event {i} is larger than {max_event} bytes; trim its properties", 413, "too_large")


def _too_deep(i: int) -> EventError:
    return EventError(
        f"event {i} nests objects/arrays more than {MAX_DEPTH} levels deep; flatten its properties"
    )


def _nul(i: int) -> EventError:
    return EventError(f"event {i} contains a NUL character (\\u0000), which cannot be stored")


def _has_nul_escape(text: bytes) -> bool:
    """True when the compact JSON ``text`` holds an escaped NUL (``\\u0000``), which jsonb refuses.

    The substring alone is not enough: a string holding a backslash followed by ``u0000`` is encoded
    as ``\\\\u0000`` and is storable. An escape is real when an even number of backslashes precede it.
    """
    start = 0
    while (at := text.find(b"\\u0000", start)) >= 0:
        k = at
        while k > 0 and text[k - 1] == 0x5C:  # backslash
            k -= 1
        if (at - k) % 2 == 0:
            return True
        start = at + 1
    return False


def copy_lines(events: list[Any], prefix: bytes, max_event: int, fast: bool) -> bytes:
    """COPY text lines ``<prefix><event json>\\n`` for every event, checking size and content.

    ``prefix`` is the already-escaped leading columns followed by a tab. Raises EventError: 413 for an
    event above ``max_event`` bytes (+ slack for server fields), 400 for a NUL character, an unpaired
    surrogate or a non-finite number.
    """
    limit = max_event + SERVER_FIELDS_SLACK
    if not fast:
        return _copy_lines_std(events, prefix, max_event, limit)
    parts: list[bytes] = []
    append = parts.append
    for i, ev in enumerate(events):
        try:
            text = _dumps(ev)
        except _OrjsonEncodeError:
            # Nesting deeper than orjson's encoder allows (it parses deeper than it writes).
            raise _too_deep(i) from None
        if len(text) > limit:
            raise _too_large(i, max_event)
        # Depth needs at least MAX_DEPTH brackets: two C-speed counts spare the walk for nearly every event.
        if text.count(b"{") + text.count(b"[") > MAX_DEPTH and nesting_exceeds(ev):
            raise _too_deep(i)
        if b"\\" in text:
            if b"\\u0000" in text and _has_nul_escape(text):
                raise _nul(i)
            text = text.replace(b"\\", b"\\\\")
        append(prefix)
        append(text)
        append(b"\n")
    return b"".join(parts)


def _copy_lines_std(events: list[Any], prefix: bytes, max_event: int, limit: int) -> bytes:
    """The stdlib path, for payloads orjson did not parse (rare: see the module docstring)."""
    texts = []
    for i, ev in enumerate(events):
        if nesting_exceeds(ev):
            raise _too_deep(i)
        try:
            text = _std_encode(ev)
        except ValueError:
            raise EventError(
                f"event {i} contains a number that is not finite (too large for a double); "
                "send it as a string"
            ) from None
        except RecursionError:
            raise EventError(f"event {i} is nested too deeply; flatten its properties") from None
        # Size in bytes, like the fast path; surrogatepass so an unpaired surrogate is reported below.
        if len(text.encode("utf-8", "surrogatepass")) > limit:
            raise _too_large(i, max_event)
        if "\\u0000" in text and _has_nul_escape(text.encode("utf-8", "surrogatepass")):
            raise _nul(i)
        texts.append(text.replace("\\", "\\\\") if "\\" in text else text)
    try:
        encoded = [t.encode("utf-8") for t in texts]
    except UnicodeEncodeError:
        raise EventError("the body contains an unpaired UTF-16 surrogate; send valid Unicode") from None
    parts: list[bytes] = []
    for t in encoded:
        parts += (prefix, t, b"\n")
    return b"".join(parts)
