"""The ``users`` table: one row per user id, from that user's latest identify.

The documented schema keeps "only the latest properties used to identify a user": a user's row is
the row of their most recent identify, replacing the previous one. "Most recent" is by the event's
own ``timestamp`` (falling back to ``received_at``), ties broken by arrival order, so a batch that
holds several identifies of one user keeps the newest even if they arrived out of order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sdk.warehouse import types as T


def _event_time(data: dict[str, Any]) -> str:
    """The row's event time as a sortable UTC ISO string ('' when it has none)."""
    for key in ("timestamp", "TIMESTAMP", "received_at", "RECEIVED_AT"):
        iso = T.to_utc_iso(data.get(key))
        if iso:
            return iso
    return ""


def latest_per_user(rows: Iterable[tuple[int, dict[str, Any]]], id_column: str = "id") -> dict[Any, int]:
    """``{user id: position}`` of the latest of ``(position, data)`` users rows (positions are the
    arrival order)."""
    best: dict[Any, tuple[str, int]] = {}
    for pos, data in rows:
        uid = data.get(id_column)
        if uid is None:
            continue
        key = (_event_time(data), pos)
        if uid not in best or key >= best[uid]:
            best[uid] = key
    return {uid: pos for uid, (_, pos) in best.items()}
