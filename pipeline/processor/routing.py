"""Which destinations an event goes to: connections, the event's ``integrations`` object, filters."""

from __future__ import annotations

from typing import Any

from pipeline.config import Destination


def user_key(event: dict[str, Any]) -> str:
    """The ordering key: userId if present, else anonymousId."""
    uid = event.get("userId")
    if uid not in (None, ""):
        return str(uid)
    return str(event.get("anonymousId") or "")


def integration_enabled(integrations: Any, names: list[str]) -> bool:
    """Honour ``integrations``: a key naming the destination (its name in sluice.yaml, the connector's
    name, display name, alias or RudderStack type; case-insensitive) decides; else ``All`` (default true).

    A non-boolean value (an options object) means "enabled, with options", as in Segment.
    """
    if not isinstance(integrations, dict) or not integrations:
        return True
    lowered = {str(k).strip().lower(): v for k, v in integrations.items()}
    for n in names:
        key = n.strip().lower()
        if key in lowered:
            v = lowered[key]
            return v is not False and v is not None and v != 0 if not isinstance(v, dict) else True
    v = lowered.get("all", True)
    return bool(v) if not isinstance(v, dict) else True


def passes_filters(event: dict[str, Any], dest: Destination) -> bool:
    f = dest.filters
    etype = event.get("type")
    if f.event_types is not None and etype not in f.event_types:
        return False
    if f.events is not None and etype == "track" and event.get("event") not in f.events:
        return False
    return True
