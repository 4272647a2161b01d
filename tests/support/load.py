"""A small load generator for fault tests: sends batches to the gateway and remembers what was acknowledged.

Why our own and not the analytics libraries here: fault tests must know exactly which events the gateway
acknowledged (HTTP 200) and which it refused (503, connection reset), because the promise under test is
"every acknowledged event is delivered". The e2e test uses the real client libraries instead.

Events carry ``properties.seq`` (per-user sequence number) so delivery order per user can be checked.
A refused batch is retried with the *same* messageIds, like the real SDKs, so ids stay unique per event.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx


@dataclass
class LoadStats:
    acked_ids: list[str] = field(default_factory=list)
    ack_times: dict[str, float] = field(default_factory=dict)  # messageId -> time.monotonic() of the 200
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    first_refusal_at: float | None = None
    last_refusal_at: float | None = None
    first_ack_after_refusal_at: float | None = None
    retry_after_values: list[str] = field(default_factory=list)


class LoadGenerator:
    """Sends ``batch_size``-event batches round-robin over ``users`` from a background thread."""

    def __init__(
        self,
        base_url: str,
        write_key: str,
        *,
        users: int = 20,
        batch_size: int = 10,
        rate_per_s: float | None = 500,
        max_events: int | None = None,
        user_prefix: str = "u",
        retry_refused: bool = True,
    ):
        self.base_url = base_url
        self.write_key = write_key
        self.users = [f"{user_prefix}{i:03d}" for i in range(users)]
        self.batch_size = batch_size
        self.rate_per_s = rate_per_s
        self.max_events = max_events
        self.retry_refused = retry_refused
        self.seq: Counter = Counter()
        self.stats = LoadStats()
        self.sent_events = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="loadgen", daemon=True)

    def _make_batch(self) -> list[dict]:
        batch = []
        for _ in range(self.batch_size):
            user = self.users[self.sent_events % len(self.users)]
            self.seq[user] += 1
            self.sent_events += 1
            batch.append(
                {
                    "type": "track",
                    "event": "Fault Test",
                    "userId": user,
                    "messageId": str(uuid.uuid4()),
                    "properties": {"seq": self.seq[user]},
                }
            )
        return batch

    def _run(self) -> None:
        started = time.monotonic()
        with httpx.Client(auth=(self.write_key, ""), timeout=10) as client:
            pending: list[dict] | None = None
            while not self._stop.is_set():
                if pending is None:
                    if self.max_events is not None and self.sent_events >= self.max_events:
                        break
                    pending = self._make_batch()
                try:
                    r = client.post(f"{self.base_url}/v1/batch", json={"batch": pending})
                    code = r.status_code
                except httpx.HTTPError as exc:
                    code = None
                    with self._lock:
                        self.stats.errors[type(exc).__name__] += 1
                with self._lock:
                    st = self.stats
                    st.statuses[code if code is not None else "error"] += 1
                    if code == 200:
                        acked_at = time.monotonic()
                        for e in pending:
                            st.acked_ids.append(e["messageId"])
                            st.ack_times[e["messageId"]] = acked_at
                        if st.last_refusal_at is not None and st.first_ack_after_refusal_at is None:
                            st.first_ack_after_refusal_at = acked_at
                        pending = None
                    else:
                        answered_at = time.monotonic()
                        if st.first_refusal_at is None:
                            st.first_refusal_at = answered_at
                        st.last_refusal_at = answered_at
                        if code is not None and r.headers.get("retry-after"):
                            st.retry_after_values.append(r.headers["retry-after"])
                        if not self.retry_refused:
                            pending = None
                if code != 200:
                    self._stop.wait(0.2)  # a real client backs off; keep it short to measure recovery
                elif self.rate_per_s:
                    target = started + self.sent_events / self.rate_per_s
                    delay = target - time.monotonic()
                    if delay > 0:
                        self._stop.wait(delay)

    def start(self) -> LoadGenerator:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> LoadStats:
        self._stop.set()
        self._thread.join(timeout)
        return self.stats

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def acked(self) -> set[str]:
        with self._lock:
            return set(self.stats.acked_ids)

    def acked_before(self, t: float) -> set[str]:
        """messageIds acknowledged before monotonic time ``t``."""
        with self._lock:
            return {m for m, at in self.stats.ack_times.items() if at < t}

    def acked_count(self) -> int:
        with self._lock:
            return len(self.stats.acked_ids)
