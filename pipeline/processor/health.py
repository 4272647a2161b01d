"""What ``/health`` says about the processor, from the row ``processor_health`` returns.

Why in the database and not in memory: the processor usually runs in the workers process (or in
another ``sluice up``), while ``/health`` is answered by the gateway; the queue is what they share.
The gateway keeps answering 200 while degraded: it still accepts and persists events, which is what a
load balancer asks of it; monitoring reads ``status`` and ``problems``.
"""

from __future__ import annotations

from typing import Any

# A hand-off failing for less than this is a split in progress or a blip, not a problem to report.
FAILING_GRACE_S = 10.0


def processor_state(row: tuple[Any, ...] | None) -> dict[str, Any]:
    if row is None:
        return {}
    backlog, lag_s, failing_for_s, last_error, last_error_at, isolated = row
    return {
        "backlog": max(int(backlog or 0), 0),
        "lag_s": round(float(lag_s or 0.0), 3),
        "failing_for_s": None if failing_for_s is None else round(float(failing_for_s), 3),
        "last_error": last_error,
        "last_error_at": last_error_at.isoformat() if last_error_at is not None else None,
        "isolated_events": int(isolated or 0),
    }


def problems(state: dict[str, Any], max_lag_s: float) -> list[str]:
    """Human-readable reasons the processor is degraded; empty when it is fine."""
    out = []
    failing = state.get("failing_for_s")
    if failing is not None and failing >= FAILING_GRACE_S:
        out.append(f"the processor has been failing for {failing:.0f} s: {state.get('last_error')}")
    lag = state.get("lag_s") or 0.0
    if lag > max_lag_s:
        out.append(
            f"the oldest unprocessed event is {lag:.0f} s old (processor.max_lag_s is {max_lag_s:g}); "
            f"{state.get('backlog', 0)} events wait"
        )
    return out
