"""Delivery workers: one per (destination, shard).

A destination's users are split into ``shards`` by ``sluice_user_shard(user_key, shards)`` (SQL,
migration 003); a worker delivers one shard, and only while its process holds that shard's advisory
lock (see ``pipeline/router/shards.py``). A user always maps to one shard, so everything below about
ordering holds per shard exactly as it would for a single worker.

Isolation: each destination has its own tasks, HTTP clients, concurrency limit, rate limit and
throttles (shared by its shard workers in one process, see ``Pacing``), and holds a database
connection only while reading or recording, never while waiting on the vendor; so a slow or down
destination cannot slow the others.

Jobs flow, they do not march in rounds: a worker keeps up to ``4 × batch_size`` jobs *claimed* (in
memory: queued, in flight, or answered but not yet recorded; two vendor batches for batching
destinations) and reads up to ``batch_size`` more as soon as there is room,
so no job ever waits for another user's slow request. Each step records every outcome that arrived
since the last one (one UPDATE, one INSERT for dead letters), then reads, in id order:

* retry heads: due ``failed`` jobs (one per user with ``ordering``);
* backlog: ``pending`` jobs, below the fresh cursor, of users just *released* (their failed job
  resolved, or their jobs were left unsent while an earlier one was in flight);
* fresh: ``pending`` jobs of the shard after the in-memory cursor (the cursor also moves past
  other shards' jobs it scanned, so an idle shard never rescans their backlog).

Per-user ordering (``ordering: true``): a user with a ``failed`` job is *blocked*; their later jobs
stay ``pending`` until that job succeeds or is aborted. Invariant: a user has at most one failed
job, and it is their earliest unfinished one. A user's jobs go out one after another (a *chain*; a
job read while the user's chain runs joins its end); the first failure ends the chain and leaves the
rest pending. With batching, a batch holds the users in it: their jobs read meanwhile wait
(pending) until the batch is answered, then are read again as backlog.

A crash loses only memory: on restart everything unfinished is read again, so jobs in flight or
answered-but-unrecorded are delivered again (at-least-once, at most the claimed jobs of a shard).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pipeline import metrics
from pipeline.config import Destination
from pipeline.queue.db import q
from pipeline.router import telemetry
from pipeline.router.failures import FailureLog
from pipeline.router.guard import AddressGuard
from pipeline.router.sender import Job, Pacing, Result, Sender
from sdk.classify import Outcome
from sdk.connector import Connector
from sdk.secrets import Secrets

log = logging.getLogger("sluice.router")

FLUSH_EVERY_S = 0.01  # how long answered jobs may wait to be recorded together

__all__ = ["DestinationWorker", "Job", "Pacing", "Result"]


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0], user=row[1], requests=row[2], event=row[3], attempts=row[4], first_attempt_at=row[5]
    )


class DestinationWorker:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        dest: Destination,
        connector: Connector,
        guard: AddressGuard,
        *,
        poll_interval_s: float = 0.2,
        shard: int = 0,
        shards: int = 1,
        pacing: Pacing | None = None,
    ):
        self.pool = pool
        self.dest = dest
        self.name = dest.name
        self.connector = connector
        self.poll_interval_s = poll_interval_s
        self.shard = shard
        self.shards = shards
        self.ordering = dest.ordering
        self.batching = connector.spec.batching.enabled and connector.spec.batching.max_events > 1
        self.pacing = pacing or Pacing(dest, connector, guard)
        # Values of settings the spec marks `secret: true`: stored requests hold placeholders instead
        # (sealed by the processor), restored just before sending; logs and dead letters show ***.
        self.secrets = Secrets.for_destination(connector, connector.check_config(dest.config))
        observe = lambda req, answer: telemetry.observe(self, req, answer)  # noqa: E731
        self.sender = Sender(dest, connector, self.pacing, self.secrets, observe)
        self.failures = FailureLog(self.name)
        # Held while the worker delivers its shard: whoever gives the shard away waits for it, and the
        # worker lets go only after its jobs in flight are answered and recorded (see _drain), so a
        # shard is never delivered by two processes at once when it is handed over cleanly.
        self.busy = asyncio.Lock()
        # Read enough for a full vendor batch when the connector batches. In hand at most: two batches
        # (one in flight, the next being prepared), or four reads' worth of single requests, so the
        # next read never waits for the slowest request. This bounds what a crash can send twice.
        self.claim_limit = max(dest.batch_size, connector.spec.batching.max_events if self.batching else 1)
        self.max_claimed = self.claim_limit * (2 if self.batching else 4)
        self.wake = asyncio.Event()
        self.progress = asyncio.Event()
        self.claimed: dict[int, Job] = {}
        self.chains: dict[str, deque[Job]] = {}
        self.active_users: Counter[str] = Counter()  # users held by a batch in flight
        self.waiting: set[str] = set()  # users with jobs left pending while they were held
        self.outcomes: list[tuple[Job, Result, str, int, dt.datetime, str]] = []
        self.outcomes_since = 0.0  # when the oldest unrecorded outcome arrived
        self.tasks: set[asyncio.Task[None]] = set()
        self.draining = False
        self.delivered = 0
        self._reset()

    def _reset(self) -> None:
        """Forget what was read (not what is claimed): the next step reads from the start again."""
        self.cursor = 0
        self.blocked: set[str] = set()
        self.released: set[str] = set()
        self.waiting = set()
        self.initialised = False

    @property
    def params(self) -> dict[str, Any]:
        return {"destination": self.name, "shard": self.shard, "shards": self.shards}

    # -- loop -------------------------------------------------------------------------------------
    async def run(self, is_active: Callable[[], bool], stopping: asyncio.Event) -> None:
        """Deliver while ``is_active()`` (this process holds the shard) until ``stopping``."""
        self.pacing.open()
        try:
            while not stopping.is_set():
                if not is_active():
                    self.wake.clear()  # set again when the shard is acquired
                    await _sleep_or(stopping, 0.5, self.wake)
                    continue
                async with self.busy:
                    await self._deliver(is_active, stopping)
        finally:
            await self.pacing.close()

    async def _deliver(self, is_active: Callable[[], bool], stopping: asyncio.Event) -> None:
        backoff = 0.5
        try:
            while not stopping.is_set() and is_active():
                try:
                    n = await self.step()
                    backoff = 0.5
                except (psycopg.Error, OSError) as e:
                    log.warning("router[%s]: database error, retrying in %.1fs: %s", self.name, backoff, e)
                    self._reset()
                    await _sleep_or(stopping, backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                except Exception:  # noqa: BLE001 - one bad step must not stop delivery
                    self.sender.log_unexpected("(retrying in 1 s)")
                    self._reset()
                    await _sleep_or(stopping, 1.0)
                    continue
                self.failures.tick()
                if n:
                    continue
                if self.outcomes:
                    # Outcomes are written in batches: give the requests in flight a moment to add
                    # theirs (an UPDATE per answer would cost more than the requests themselves).
                    due = self.outcomes_since + FLUSH_EVERY_S - time.monotonic()
                    await _sleep_or(stopping, max(0.0, due), self.wake)
                else:
                    self.wake.clear()
                    self.progress.clear()
                    await _sleep_or(stopping, self.poll_interval_s, self.wake, self.progress)
        finally:
            await self._drain()
            self._reset()

    async def _drain(self) -> None:
        """Stop taking new work, wait for what is in flight (each request has a deadline) and record it."""
        self.draining = True
        try:
            if self.tasks:
                await asyncio.wait(list(self.tasks))
            for attempt in range(5):
                try:
                    await self._flush()
                    break
                except (psycopg.Error, OSError) as e:
                    if attempt == 4:
                        log.warning(
                            "router[%s]: could not record %d outcomes (%s); those jobs will be sent again",
                            self.name,
                            len(self.outcomes),
                            e,
                        )
                        self.outcomes.clear()
                    else:
                        await asyncio.sleep(0.5)
            self.claimed.clear()
        finally:
            self.draining = False

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _flush_due(self) -> bool:
        """Outcomes are recorded together: once the oldest has waited FLUSH_EVERY_S, or once there are
        enough of them to hold back the next read."""
        if not self.outcomes:
            return False
        waited = time.monotonic() - self.outcomes_since >= FLUSH_EVERY_S
        return waited or len(self.outcomes) >= self.claim_limit // 2 or self.draining

    async def step(self) -> int:
        """Record what was answered (when due), then read and start as many jobs as there is room for."""
        if self._flush_due():
            await self._flush()
        room = self.max_claimed - len(self.claimed)
        wanted = self.claim_limit // 2 if self.batching else max(1, self.claim_limit // 4)
        if room < wanted and self.claimed:
            return 0
        jobs = await self._read(min(self.claim_limit, max(1, room)))
        if not jobs:
            return 0
        if self.batching:
            return self._start_batch(jobs)
        return self._start_chains(jobs)

    # -- reading ----------------------------------------------------------------------------------
    async def _read(self, limit: int) -> list[Job]:
        async with self.pool.connection() as conn:
            if not self.initialised:
                if self.ordering:
                    cur = await conn.execute(q("router_blocked_users"), self.params)
                    # A union: users blocked since the reset are not recorded yet.
                    self.blocked |= {r[0] for r in await cur.fetchall()}
                self.initialised = True
            if self.ordering:
                cur = await conn.execute(q("router_retry_heads"), {**self.params, "limit": limit})
            else:
                cur = await conn.execute(q("router_retry_due"), {**self.params, "limit": limit})
            retry = [_job(r) for r in await cur.fetchall()]
            backlog: list[Job] = []
            backlog_full = False
            # Users can be released while this read awaits the database: only these had their backlog read.
            queried = set(self.released)
            if queried:
                cur = await conn.execute(
                    q("router_backlog"),
                    {**self.params, "users": sorted(queried), "upto": self.cursor, "limit": limit},
                )
                backlog = [_job(r) for r in await cur.fetchall()]
                backlog_full = len(backlog) >= limit
            # Scan enough of the destination's window that this shard's share is about `limit`.
            cur = await conn.execute(
                q("router_fresh"),
                {**self.params, "after": self.cursor, "limit": limit, "scan": limit * self.shards},
            )
            window = await cur.fetchall()
        old_cursor = self.cursor
        fresh: list[Job] = []
        for r in window:
            if len(fresh) >= limit:
                break
            self.cursor = r[0]  # scanned: later reads start after it, whichever shard it belongs to
            if r[6]:
                fresh.append(_job(r))
        if queried and not backlog_full:
            with_backlog = {j.user for j in backlog}
            self.released -= {u for u in queried if u not in with_backlog}
        retry_ids = {j.id for j in retry}
        jobs = sorted({j.id: j for j in (*retry, *backlog, *fresh)}.values(), key=lambda j: j.id)
        eligible: list[Job] = []
        for j in jobs:
            if j.id in self.claimed:
                continue  # already in hand (in flight, or answered and not yet recorded)
            if self.ordering:
                if j.user in self.blocked and j.id not in retry_ids:
                    continue  # held: stays pending until the user's failed job resolves
                if j.id > old_cursor and j.user in self.released and (backlog_full or j.user not in queried):
                    continue  # the user's older backlog is not all read yet
            eligible.append(j)
        return eligible

    # -- chains (one request per job at a time) ---------------------------------------------------
    def _start_chains(self, jobs: list[Job]) -> int:
        for j in jobs:
            self.claimed[j.id] = j
            if not self.ordering:
                self._spawn(self._run_chain(deque([j]), None))
                continue
            chain = self.chains.get(j.user)
            if chain is not None:
                chain.append(j)  # the user's chain is running: the job goes after their earlier ones
                continue
            chain = self.chains[j.user] = deque([j])
            self._spawn(self._run_chain(chain, j.user))
        return len(jobs)

    async def _run_chain(self, chain: deque[Job], user: str | None) -> None:
        try:
            while chain and not self.draining:
                j = chain[0]
                res = await self.sender.send_job(j)
                chain.popleft()
                if self._done(j, res) == "failed" and self.ordering:
                    break
        finally:
            for j in chain:  # left pending: the user is blocked now, or the shard is being let go
                self.claimed.pop(j.id, None)
            chain.clear()
            if user is not None and self.chains.get(user) is chain:
                del self.chains[user]
            self.progress.set()

    # -- batches ----------------------------------------------------------------------------------
    def _start_batch(self, jobs: list[Job]) -> int:
        batch: list[Job] = []
        for j in jobs:
            if self.ordering and self.active_users[j.user]:
                self.waiting.add(j.user)  # an earlier job of theirs is in a batch in flight
                continue
            batch.append(j)
        for j in batch:
            self.claimed[j.id] = j
            self.active_users[j.user] += 1
        if batch:
            self._spawn(self._run_batch(batch))
        return len(batch)

    async def _run_batch(self, jobs: list[Job]) -> None:
        try:
            results = await self.sender.send_batch(jobs, self.ordering, lambda: self.draining)
        except Exception as e:  # noqa: BLE001 - send_batch catches per job; this is a last resort
            self.sender.log_unexpected("while sending a batch")
            failure = Result(Outcome.RETRY, None, f"unexpected error: {type(e).__name__}: {e}")
            results = {j.id: failure for j in jobs}
        try:
            for j in jobs:
                r = results.get(j.id)
                if r is not None:
                    self._done(j, r)
                    continue
                self.claimed.pop(j.id, None)  # left pending: read again as backlog once released
                if j.user not in self.blocked:
                    self.released.add(j.user)
            for j in jobs:
                self.active_users[j.user] -= 1
                if self.active_users[j.user] <= 0:
                    del self.active_users[j.user]
                    if j.user in self.waiting:
                        self.waiting.discard(j.user)
                        if j.user not in self.blocked:
                            self.released.add(j.user)
        finally:
            self.progress.set()

    # -- outcomes ---------------------------------------------------------------------------------
    def _delay(self, attempts: int, retry_after: float | None) -> float:
        p = self.dest.retry
        base = min(p.max_backoff_s, p.initial_s * (2 ** max(0, attempts - 1)))
        base *= 1 + random.uniform(-p.jitter, p.jitter)
        return max(base, retry_after or 0.0)

    def _done(self, j: Job, r: Result) -> str:
        """Decide the job's new state now (so ordering holds before it is written) and queue the write."""
        now = dt.datetime.now(dt.UTC)
        attempts = j.attempts + (0 if r.deferred else 1)
        next_at = now
        reason = r.reason  # a batch shares one Result between its jobs: never modify it
        if r.outcome is Outcome.SUCCESS:
            state = "succeeded"
        elif r.outcome is Outcome.ABORT:
            state = "aborted"
        elif r.deferred:
            state = "failed"
            next_at = now + dt.timedelta(seconds=r.retry_after or 1.0)
        else:
            p = self.dest.retry
            age = (now - (j.first_attempt_at or r.attempted_at)).total_seconds()
            if age >= p.max_age_s and attempts >= p.min_attempts:
                state = "aborted"
                reason = f"gave up after {attempts} attempts over {int(age)} s; last error: {reason}"
            else:
                state = "failed"
                next_at = now + dt.timedelta(seconds=self._delay(attempts, r.retry_after))
        if not self.outcomes:
            self.outcomes_since = time.monotonic()
        if state != "succeeded":
            reason = self.secrets.redact_text(reason)
            if not r.deferred:
                self.failures.record(state, reason)
        self.outcomes.append((j, r, state, attempts, next_at, reason))
        if self.ordering:
            if state == "failed":
                self.blocked.add(j.user)
                self.released.discard(j.user)
            elif j.user in self.blocked:
                self.blocked.discard(j.user)
                self.released.add(j.user)
        if state == "succeeded":
            self.delivered += 1
        self.progress.set()
        return state

    async def _flush(self) -> None:
        """Write every outcome queued so far: an UPDATE for the jobs delivered by each distinct answer
        (usually one), one for the others, one INSERT for the dead letters; in one transaction."""
        if not self.outcomes:
            return
        batch = self.outcomes
        self.outcomes = []
        u: dict[str, list[Any]] = {
            k: [] for k in ("ids", "states", "attempts", "next_at", "attempted_at", "statuses", "errors")
        }
        dl: dict[str, list[Any]] = {k: [] for k in ("ids", "requests", "statuses", "responses", "reasons")}
        succeeded: dict[tuple[int | None, dt.datetime, int], list[int]] = {}
        for j, r, state, attempts, next_at, reason in batch:
            if state == "succeeded":
                succeeded.setdefault((r.status, r.attempted_at, attempts), []).append(j.id)
                continue
            u["ids"].append(j.id)
            u["states"].append(state)
            u["attempts"].append(attempts)
            u["next_at"].append(next_at)
            u["attempted_at"].append(None if r.deferred else r.attempted_at)
            u["statuses"].append(r.status)
            u["errors"].append(None if state == "succeeded" else reason[:2000])
            if state == "aborted":
                dl["ids"].append(j.id)
                dl["requests"].append(
                    json.dumps(self.secrets.redact(r.request)) if r.request is not None else None
                )
                dl["statuses"].append(r.status)
                dl["responses"].append(self.secrets.redact_text(r.response) if r.response else r.response)
                dl["reasons"].append(reason[:2000])
        try:
            async with self.pool.connection() as conn, conn.transaction():
                for (status, at, attempts), ids in succeeded.items():
                    ids_text = "{" + ",".join(map(str, ids)) + "}"
                    params = {"ids": ids_text, "status": status, "attempted_at": at, "attempts": attempts}
                    await conn.execute(q("router_succeeded"), params)
                if u["ids"]:
                    await conn.execute(q("router_update"), u)
                if dl["ids"]:
                    await conn.execute(q("router_dead_letters"), dl)
        except BaseException:
            # Keep what the vendor already answered: it is written before anything is read again, so
            # a database outage does not turn into duplicate deliveries.
            self.outcomes = batch + self.outcomes
            raise
        states = Counter(state for _, _, state, _, _, _ in batch)
        for state, n in states.items():
            metrics.DELIVERIES.labels(self.name, state).inc(n)
        if states["aborted"]:
            metrics.DEAD_LETTERS.labels(self.name, "delivery").inc(states["aborted"])
        for j, *_ in batch:
            self.claimed.pop(j.id, None)


async def _sleep_or(stopping: asyncio.Event, seconds: float, *wakes: asyncio.Event) -> None:
    """Sleep ``seconds``, or less if ``stopping`` (or one of ``wakes``) is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in (stopping, *wakes)]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
