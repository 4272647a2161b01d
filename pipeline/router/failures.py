"""Failed deliveries in the log: every destination's failures are seen, without flooding it.

The first failure of a destination is logged at once; after that, at most one line per
``interval_s`` sums up what failed since the last line (how many will be retried, how many were
aborted to the dead-letter store) with the latest reason. Reasons arrive redacted (see
``sdk.secrets``), so no credential reaches the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("sluice.router")


class FailureLog:
    def __init__(
        self,
        destination: str,
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ):
        self.destination = destination
        self.interval_s = interval_s
        self.clock = clock
        self.logger = logger
        self.retrying = 0
        self.aborted = 0
        self.latest = ""
        self.since = clock()
        self.next_at = 0.0  # the first failure is logged straight away

    def record(self, state: str, reason: str) -> None:
        """Count one failed delivery: ``state`` is ``failed`` (will be retried) or ``aborted``."""
        if state == "aborted":
            self.aborted += 1
        else:
            self.retrying += 1
        self.latest = reason
        self.tick()

    def tick(self) -> None:
        """Write the summary line if one is due (the worker calls this even when nothing fails)."""
        now = self.clock()
        if now < self.next_at or not (self.retrying or self.aborted):
            return
        counts = []
        if self.retrying:
            counts.append(f"{self.retrying} failed (will be retried)")
        if self.aborted:
            counts.append(f"{self.aborted} aborted (see `sluice dlq list`)")
        self.logger.warning(
            "router[%s]: deliveries in the last %.0f s: %s; latest reason: %s",
            self.destination,
            max(1.0, now - self.since),
            ", ".join(counts),
            self.latest[:500],
        )
        self.retrying = self.aborted = 0
        self.since = now
        self.next_at = now + self.interval_s
