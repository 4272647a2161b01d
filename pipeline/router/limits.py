"""Per-destination pacing: a token bucket for the vendor's rate limit and throttles for 429s."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit


class TokenBucket:
    """``rate`` requests per second with bursts of ``burst``; ``take`` waits for a token."""

    def __init__(self, rate: float, burst: int = 1):
        self.rate = rate
        self.capacity = float(max(1, burst))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class Throttle:
    """After a 429, what it applies to pauses: for Retry-After if given, else 1 s doubling to 60 s."""

    def __init__(self) -> None:
        self.until = 0.0
        self.backoff = 1.0

    def hit(self, retry_after: float | None) -> None:
        delay = retry_after if retry_after is not None else self.backoff
        self.backoff = min(self.backoff * 2, 60.0)
        self.until = max(self.until, time.monotonic() + min(delay, 600.0))

    def ok(self) -> None:
        self.backoff = 1.0

    @property
    def remaining(self) -> float:
        return max(0.0, self.until - time.monotonic())

    @property
    def active(self) -> bool:
        return time.monotonic() < self.until


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL: what a vendor's 429 throttles unless a connector says otherwise."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{scheme}://{(parts.hostname or '').lower()}:{port or (443 if scheme == 'https' else 80)}"


class Throttles:
    """One ``Throttle`` per origin: a vendor that throttles one host does not pause the others."""

    def __init__(self) -> None:
        self._by_origin: dict[str, Throttle] = {}

    def of(self, url: str) -> Throttle:
        key = origin(url)
        t = self._by_origin.get(key)
        if t is None:
            t = self._by_origin[key] = Throttle()
        return t

    @property
    def active(self) -> list[str]:
        return [k for k, t in self._by_origin.items() if t.active]
