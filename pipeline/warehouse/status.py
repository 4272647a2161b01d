"""What ``sluice warehouse status`` shows: per warehouse destination, its last load, totals since
the start, what waits and for how long (lag), and dead letters."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from pipeline.warehouse.sql import wq


def warehouse_status(dsn: str, destinations: list[str]) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    params = {"destinations": destinations}
    with psycopg.connect(dsn, autocommit=True) as conn:
        last = {r[0]: r for r in conn.execute(wq("status_last"), params).fetchall()}
        totals = {r[0]: r for r in conn.execute(wq("status_totals"), params).fetchall()}
        backlog = {r[0]: r for r in conn.execute(wq("status_backlog"), params).fetchall()}
        dead = {r[0]: r[1] for r in conn.execute(wq("status_dead_letters"), params).fetchall()}
    out = []
    for d in destinations:
        item: dict[str, Any] = {"destination": d, "last_load": None}
        if d in last:
            r = last[d]
            item["last_load"] = {
                "load_id": r[2], "state": r[3], "events": r[4], "rows": r[5], "tables": r[6],
                "discards": r[7], "tables_added": list(r[8]), "columns_added": list(r[9]),
                "attempts": r[10], "error": r[11], "started_at": r[12], "finished_at": r[13],
                "seconds": r[14],
            }  # fmt: skip
        t = totals.get(d)
        item["totals"] = {
            "loads": t[1] if t else 0,
            "events": int(t[2]) if t else 0,
            "rows": int(t[3]) if t else 0,
            "discards": int(t[4]) if t else 0,
            "tables_added": int(t[5]) if t else 0,
            "columns_added": int(t[6]) if t else 0,
            "aborted_loads": t[7] if t else 0,
        }
        b = backlog.get(d)
        item["waiting"] = b[1] if b else 0
        item["lag_s"] = round((now - b[2]).total_seconds(), 3) if b and b[2] else 0.0
        item["dead_letters"] = dead.get(d, 0)
        out.append(item)
    return out


def _ts(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def format_status(items: list[dict[str, Any]]) -> str:
    lines = []
    for it in items:
        t, last = it["totals"], it["last_load"]
        lines.append(f"{it['destination']}")
        if last:
            took = f" in {last['seconds']:.2f}s" if last["seconds"] is not None else ""
            lines.append(
                f"  last load   {last['state']:<8} {_ts(last['finished_at'] or last['started_at'])}{took}: "
                f"{last['events']} events, {last['rows']} rows, {last['tables']} tables, "
                f"+{len(last['tables_added'])} tables, +{len(last['columns_added'])} columns, "
                f"{last['discards']} discards"
            )
            if last["error"]:
                lines.append(f"              error: {last['error'][:300]}")
        else:
            lines.append("  last load   none yet")
        lines.append(
            f"  totals      {t['loads']} loads, {t['events']} events, {t['rows']} rows, "
            f"{t['tables_added']} tables and {t['columns_added']} columns added, {t['discards']} discards, "
            f"{t['aborted_loads']} aborted loads"
        )
        lines.append(
            f"  waiting     {it['waiting']} events, lag {it['lag_s']:.1f}s, {it['dead_letters']} dead letters"
        )
    return "\n".join(lines) if lines else "no warehouse destinations"
