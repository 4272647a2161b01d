"""Per-destination pacing: a token bucket for the vendor's rate limit and a throttle for 429s."""

from __future__ import annotations

import asyncio
import time


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
    """After a 429 the destination pauses: for Retry-After if given, else 1 s doubling to 60 s."""

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
    def active(self) -> bool:
        return time.monotonic() < self.until

    async def wait(self) -> None:
        delay = self.until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
