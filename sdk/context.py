"""The only source of time and randomness a mapper may use.

Mappers must be pure: the same event, config and context give the same
requests. So the clock and any generated identifiers come from here; tests
and ``sluice transform`` pin ``now`` and the id seed, production passes the
real clock and the event's messageId.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

_NAMESPACE = uuid.UUID("6f6c1d6e-8a1b-4c59-9f39-5a7a4e2b3c10")


def parse_now(value: str | None) -> dt.datetime:
    if not value:
        return dt.datetime.now(dt.UTC)
    parsed = _PARSED.get(value)
    if parsed is None:
        text = value.strip().replace("Z", "+00:00")
        parsed = dt.datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        if len(_PARSED) > 256:
            _PARSED.clear()
        _PARSED[value] = parsed
    return parsed


# A pinned clock is the same text for a whole run (tests, `sluice transform --jsonl`, replays): parse it once.
# (datetimes are immutable, so sharing one between contexts is safe.)
_PARSED: dict[str, dt.datetime] = {}
_new = object.__new__


@dataclass(slots=True)
class TransformContext:
    """Clock and deterministic id source for one event's transformation."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    seed: str = ""
    _counter: int = 0

    @classmethod
    def at(cls, now: str | dt.datetime | None, seed: str = "") -> TransformContext:
        when = now if isinstance(now, dt.datetime) else parse_now(now)
        # One per event: set the three fields directly rather than through the generated __init__.
        self = _new(cls)
        self.now, self.seed, self._counter = when, seed, 0
        return self

    @property
    def now_ms(self) -> int:
        return int(self.now.timestamp() * 1000)

    @property
    def now_s(self) -> int:
        return int(self.now.timestamp())

    def now_iso(self) -> str:
        return self.now.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def stable_id(self) -> str:
        """One UUID per event (the same however often it is asked for), for events without a messageId."""
        return str(uuid.uuid5(_NAMESPACE, f"{self.seed}:event"))

    def new_id(self) -> str:
        """A UUID that is stable for the same seed and call order."""
        self._counter += 1
        return str(uuid.uuid5(_NAMESPACE, f"{self.seed}:{self._counter}"))
