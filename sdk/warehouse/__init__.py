"""The warehouse row model: an event → the rows analysts' warehouse schema expects.

``event_rows(event, provider, config, options)`` is pure and deterministic: the same inputs give
the same rows (a missing ``messageId`` gets an id derived from the event; a missing
``receivedAt`` is taken from ``options["now"]``). It never touches a database; loading is the
pipeline's job (``pipeline/warehouse``).

Modules, one job each: ``words`` (word splitting, snake_case), ``keywords`` (reserved words per
warehouse), ``providers`` (per-warehouse rules), ``naming`` (table and column names), ``types``
(type inference, promotion, conversion), ``flatten`` (nested objects to columns), ``settings``
(destination and per-event options), ``tables`` (event to rows), ``users`` (latest traits).
"""

from __future__ import annotations

from typing import Any

from sdk.warehouse.errors import TooManyColumnsError, UnknownProviderError
from sdk.warehouse.providers import PROVIDERS, Provider, provider_for
from sdk.warehouse.settings import Settings
from sdk.warehouse.tables import EventRows, Row


def event_rows(
    event: dict[str, Any],
    provider: str | Provider,
    config: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> list[Row]:
    """The warehouse rows for one event; raises a typed ``SluiceError`` for an unusable event."""
    p = provider if isinstance(provider, Provider) else provider_for(provider)
    options = options or {}
    settings = Settings.build(p, config or {}, event if isinstance(event, dict) else {}, options)
    now = options.get("now") if isinstance(options.get("now"), str) else None
    return EventRows(event, settings, now).rows()


__all__ = [
    "PROVIDERS",
    "Provider",
    "Row",
    "TooManyColumnsError",
    "UnknownProviderError",
    "event_rows",
    "provider_for",
]
