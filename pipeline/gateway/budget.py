"""A bound on the request-body bytes all requests hold in memory at once.

Why: a body is buffered whole before it is parsed (JSON needs all of it), so without a bound N concurrent
4 MB uploads cost N x 4 MB, and what Python's allocator took at the peak it rarely gives back. Requests
reserve their bytes before reading them; when the budget is spent the gateway answers 503 + Retry-After
(honest clients back off and retry) instead of buffering more.

Requests whose write key is not in a header (it may be in the body) may hold only a share of the
budget, so unauthenticated uploads can never take the memory that authenticated clients need.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BodyBudget:
    limit: int
    anonymous_share: float = 0.25
    used: int = 0
    used_anonymous: int = 0

    def try_take(self, n: int, anonymous: bool) -> bool:
        """Reserve ``n`` bytes; False (nothing reserved) when that would pass a limit."""
        if self.used + n > self.limit:
            return False
        if anonymous:
            if self.used_anonymous + n > self.limit * self.anonymous_share:
                return False
            self.used_anonymous += n
        self.used += n
        return True

    def give_back(self, n: int, anonymous: bool) -> None:
        self.used -= n
        if anonymous:
            self.used_anonymous -= n
