"""Dead letters over plain psycopg (the CLI is synchronous and short-lived).

Replay inserts new delivery jobs, in the original event order, with ``requests`` left NULL so the
router maps the stored event again with the connector and config it runs *now*: a replay after
fixing either the vendor side or the destination config delivers the fixed form.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg.rows import dict_row

from pipeline.config import SluiceConfig
from pipeline.queue.db import q
from sdk.errors import SluiceError
from sdk.registry import load_connector
from sdk.secrets import Secrets, redact


class ReplayRefused(Exception):
    """The replay would create jobs nothing delivers; the message names the destinations and the fix."""


def list_dead_letters(
    dsn: str,
    *,
    destination: str | None = None,
    since: dt.datetime | None = None,
    reason: str | None = None,
    include_replayed: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(
            q("dlq_list"),
            {
                "destination": destination,
                "since": since,
                "reason": reason,
                "include_replayed": include_replayed,
                "limit": limit,
            },
        ).fetchall()


def destination_secrets(config: SluiceConfig | None, destination: str) -> Secrets | None:
    """The secret setting values of ``destination`` in ``config`` (None if it is not there)."""
    dest = next((d for d in (config.destinations if config else []) if d.name == destination), None)
    if dest is None:
        return None
    try:
        connector = load_connector(dest.integration)
    except SluiceError:
        return Secrets({str(i): str(v) for i, v in enumerate(dest.config.values()) if isinstance(v, str)})
    try:
        settings = connector.check_config(dest.config)
    except SluiceError:
        settings = dest.config
    return Secrets.for_destination(connector, settings)


def show_dead_letter(dsn: str, dl_id: int, config: SluiceConfig | None = None) -> dict[str, Any] | None:
    """One dead letter for display: stored credentials are placeholders and show as ``***``, and with
    the pipeline's ``config`` every value of its destination's secret settings is hidden too (rows
    written before secrets were sealed, or an event or vendor answer that happened to contain one)."""
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        row = conn.execute(q("dlq_show"), {"id": dl_id}).fetchone()
    if row is None:
        return None
    return redact(row, destination_secrets(config, row["destination"]))


def replay(
    dsn: str,
    *,
    deliverable: set[str],
    disabled: set[str] | frozenset[str] = frozenset(),
    ids: list[int] | None = None,
    destination: str | None = None,
    since: dt.datetime | None = None,
    reason: str | None = None,
) -> list[tuple[int, int]]:
    """Re-enqueue matching, not yet replayed dead letters; returns (dead letter id, new job id) pairs.

    ``deliverable`` are the destinations the pipeline's config delivers (enabled ones); ``disabled`` the
    ones it has but switched off. A replay that includes any other destination is refused as a whole
    (ReplayRefused): its jobs would stay pending for ever and leave ``dlq list`` at the same time.
    """
    with psycopg.connect(dsn) as conn, conn.transaction():
        conn.execute(q("ensure_delivery_partitions"), {"extra": 0})
        selected = [
            r[0]
            for r in conn.execute(
                q("dlq_replay_select"),
                {"ids": ids or None, "destination": destination, "since": since, "reason": reason},
            ).fetchall()
        ]
        if not selected:
            return []
        per_destination = dict(conn.execute(q("dlq_replay_destinations"), {"ids": selected}).fetchall())
        stranded = {d: n for d, n in per_destination.items() if d not in deliverable}
        if stranded:
            raise ReplayRefused(_refusal(stranded, deliverable, set(disabled)))
        conn.execute(q("ensure_delivery_partitions"), {"extra": len(selected)})
        rows = conn.execute(q("dlq_replay_insert"), {"ids": selected}).fetchall()
        conn.execute(q("ensure_delivery_partitions"), {"extra": 0})
        return sorted((r[0], r[1]) for r in rows)


def _refusal(stranded: dict[str, int], deliverable: set[str], disabled: set[str]) -> str:
    parts = []
    for name, n in sorted(stranded.items()):
        why = "is disabled (enabled: false)" if name in disabled else "is not in the config"
        parts.append(f"{n} dead letter(s) for destination {name!r}, which {why}")
    known = ", ".join(sorted(deliverable)) or "none"
    return (
        "nothing replayed: " + "; ".join(parts) + f" (destinations delivered now: {known}). "
        "Add or enable the destination in sluice.yaml first, or narrow the replay with --destination"
    )
