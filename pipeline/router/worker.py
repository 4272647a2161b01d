"""Delivery workers: one per (destination, shard).

A destination's users are split into ``shards`` by ``sluice_user_shard(user_key, shards)`` (SQL,
migration 003); a worker delivers one shard, and only while its process holds that shard's advisory
lock (see ``pipeline/router/shards.py``). A user always maps to one shard, so everything below about
ordering holds per shard exactly as it would for a single worker.

Isolation: each destination has its own tasks, HTTP clients, concurrency limit, rate limit and
throttle (shared by its shard workers in one process, see ``Pacing``), and holds a database
connection only while reading or recording a round, never while waiting on the vendor; so a slow or
down destination cannot slow the others.

Per-user ordering (``ordering: true``): a user with a ``failed`` job is *blocked*; their later jobs
stay ``pending`` until that job succeeds or is aborted. Invariant: a user has at most one failed
job, and it is their earliest unfinished one. Each round reads three sets, in id order:

* retry heads: due ``failed`` jobs (one per user);
* backlog: ``pending`` jobs, below the fresh cursor, of users just *released* (their failed job
  resolved, or their jobs were left unsent by a throttle);
* fresh: ``pending`` jobs of the shard after the in-memory cursor (the cursor also moves past
  other shards' jobs it scanned, so an idle shard never rescans their backlog).

Within a round a user's jobs go out one after another (users in parallel); the first failure stops
that user's chain. All outcomes of a round are written with one UPDATE (and one INSERT for dead
letters). A crash loses only the in-memory cursor: on restart everything unfinished is read again,
so jobs in flight are simply delivered again (at-least-once).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool

from pipeline import metrics
from pipeline.config import Destination
from pipeline.queue.db import q
from pipeline.router import telemetry
from pipeline.router.guard import AddressGuard, Refused
from pipeline.router.limits import Throttle, TokenBucket
from sdk.classify import Classification, Outcome, classify_exception
from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.delivery import send_async
from sdk.errors import SluiceError
from sdk.request import VendorRequest

log = logging.getLogger("sluice.router")

_SNIPPET = 1000
_SECRET_HEADERS = {"authorization", "proxy-authorization", "x-api-key", "api-key", "apikey"}


@dataclass
class Job:
    id: int
    user: str
    requests: list[dict[str, Any]] | None
    event: dict[str, Any] | None
    attempts: int
    first_attempt_at: dt.datetime | None


@dataclass
class Result:
    """What happened to one job this round."""

    outcome: Outcome
    status: int | None = None
    reason: str = ""
    retry_after: float | None = None
    request: dict[str, Any] | None = None
    response: str | None = None
    attempted_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0], user=row[1], requests=row[2], event=row[3], attempts=row[4], first_attempt_at=row[5]
    )


class Pacing:
    """What the shard workers of one destination share within one process: the HTTP clients (so
    ``concurrency`` bounds the process's requests in flight, however many shards it holds), the 429
    throttle, and the token bucket. The bucket runs at ``rate × held / shards``, so the processes
    sharing a destination stay within its rate limit together."""

    def __init__(self, dest: Destination, connector: Connector):
        self.dest = dest
        rps = (dest.rate_limit.requests_per_second if dest.rate_limit else None) or (
            connector.spec.rate_limit.requests_per_second
        )
        burst = (dest.rate_limit.burst if dest.rate_limit else None) or connector.spec.rate_limit.burst
        self.rate = rps
        self.bucket = TokenBucket(rps, burst) if rps else None
        self.throttle = Throttle()
        self.clients: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        self._all: list[httpx.AsyncClient] = []
        self._users = 0

    def set_share(self, held: int, shards: int) -> None:
        if self.bucket is not None and self.rate:
            self.bucket.rate = self.rate * max(1, held) / max(1, shards)

    def open(self) -> None:
        if self._users == 0:
            # One single-connection client per concurrency slot: httpx's pool does per-request work
            # proportional to its size, which at 8-32 connections cost more CPU than the requests.
            limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
            self._all = [
                httpx.AsyncClient(limits=limits, timeout=self.dest.timeout_s, follow_redirects=False)
                for _ in range(self.dest.concurrency)
            ]
            self.clients = asyncio.Queue()
            for c in self._all:
                self.clients.put_nowait(c)
        self._users += 1

    async def close(self) -> None:
        self._users -= 1
        if self._users == 0:
            for c in self._all:
                await c.aclose()
            self._all = []


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
        self.guard = guard
        self.poll_interval_s = poll_interval_s
        self.shard = shard
        self.shards = shards
        self.ordering = dest.ordering
        self.batching = connector.spec.batching.enabled and connector.spec.batching.max_events > 1
        self.pacing = pacing or Pacing(dest, connector)
        self.bucket = self.pacing.bucket
        self.throttle = self.pacing.throttle
        # Held for the whole of a round: whoever gives the shard away waits for it first, so a shard
        # is never delivered by two processes at once when it is handed over cleanly.
        self.busy = asyncio.Lock()
        # Claim enough for a full vendor batch when the connector batches.
        self.claim_limit = max(dest.batch_size, connector.spec.batching.max_events if self.batching else 1)
        # Values of settings the spec marks `secret: true` (API keys...), never stored in dead letters.
        # Nested ones too (per-row webhook URLs).
        self.secrets = connector.spec.secret_values(dest.config)
        self.wake = asyncio.Event()
        self._reset()
        self._unwritten: list[tuple[dict[str, list[Any]], dict[str, list[Any]]]] = []
        self.delivered = 0

    def _reset(self) -> None:
        self.cursor = 0
        self.blocked: set[str] = set()
        self.released: set[str] = set()
        self.initialised = False

    # -- loop -------------------------------------------------------------------------------------
    @property
    def clients(self) -> asyncio.Queue[httpx.AsyncClient]:
        return self.pacing.clients

    @property
    def params(self) -> dict[str, Any]:
        return {"destination": self.name, "shard": self.shard, "shards": self.shards}

    async def run(self, is_active: Callable[[], bool], stopping: asyncio.Event) -> None:
        """Deliver rounds while ``is_active()`` (this process holds the shard) until ``stopping``."""
        self.pacing.open()
        backoff = 0.5
        try:
            while not stopping.is_set():
                if not is_active():
                    self._reset()
                    self.wake.clear()  # set again when the shard is acquired
                    await _sleep_or(stopping, 0.5, self.wake)
                    continue
                try:
                    async with self.busy:
                        if not is_active():
                            continue  # the shard was given away while we waited for the lock
                        n = await self.round()
                    backoff = 0.5
                except (psycopg.Error, OSError) as e:
                    log.warning("router[%s]: database error, retrying in %.1fs: %s", self.name, backoff, e)
                    self._reset()
                    await _sleep_or(stopping, backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                except Exception:  # noqa: BLE001 - one bad round must not stop delivery
                    log.exception("router[%s]: unexpected error; retrying", self.name)
                    self._reset()
                    await _sleep_or(stopping, 1.0)
                    continue
                if n == 0:
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), timeout=self.poll_interval_s)
                    except TimeoutError:
                        pass
                if self.throttle.active:
                    await self.throttle.wait()
        finally:
            await self.pacing.close()

    async def _write(self, u: dict[str, list[Any]], dl: dict[str, list[Any]]) -> None:
        """Record a round's outcomes. Idempotent (absolute values; a job's dead letter is inserted
        once), so outcomes whose commit was in doubt can simply be written again."""
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(q("router_update"), u)
            if dl["ids"]:
                await conn.execute(q("router_dead_letters"), dl)

    async def round(self) -> int:
        """Claim, send and record one round; returns the number of jobs attempted."""
        while self._unwritten:
            await self._write(*self._unwritten[0])
            self._unwritten.pop(0)
        limit = self.claim_limit
        async with self.pool.connection() as conn:
            if not self.initialised:
                if self.ordering:
                    cur = await conn.execute(q("router_blocked_users"), self.params)
                    self.blocked = {r[0] for r in await cur.fetchall()}
                self.initialised = True
            if self.ordering:
                cur = await conn.execute(q("router_retry_heads"), {**self.params, "limit": limit})
            else:
                cur = await conn.execute(q("router_retry_due"), {**self.params, "limit": limit})
            retry = [_job(r) for r in await cur.fetchall()]
            backlog: list[Job] = []
            backlog_full = False
            if self.released:
                cur = await conn.execute(
                    q("router_backlog"),
                    {
                        **self.params,
                        "users": sorted(self.released),
                        "upto": self.cursor,
                        "limit": limit,
                    },
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
            self.cursor = r[0]  # scanned: later rounds start after it, whichever shard it belongs to
            if r[6]:
                fresh.append(_job(r))
        if self.released and not backlog_full:
            with_backlog = {j.user for j in backlog}
            self.released = {u for u in self.released if u in with_backlog}
        retry_ids = {j.id for j in retry}
        jobs = sorted({j.id: j for j in (*retry, *backlog, *fresh)}.values(), key=lambda j: j.id)
        eligible: list[Job] = []
        for j in jobs:
            if self.ordering:
                if j.user in self.blocked and j.id not in retry_ids:
                    continue  # held: stays pending until the user's failed job resolves
                if backlog_full and j.user in self.released and j.id > old_cursor:
                    continue  # the user's older backlog is not all read yet
            eligible.append(j)
        if not eligible:
            return 0
        results = await (self._send_batched(eligible) if self.batching else self._send_chains(eligible))
        await self._record(eligible, results)
        return len(eligible)

    # -- sending ----------------------------------------------------------------------------------
    async def _send_chains(self, jobs: list[Job]) -> dict[int, Result]:
        results: dict[int, Result] = {}
        chains: dict[str, list[Job]] = {}
        if self.ordering:
            for j in jobs:
                chains.setdefault(j.user, []).append(j)
            groups = list(chains.values())
        else:
            groups = [[j] for j in jobs]

        async def run_chain(chain: list[Job]) -> None:
            for j in chain:
                if self.throttle.active:
                    return
                res = await self._send_job(j)
                results[j.id] = res
                if res.outcome not in (Outcome.SUCCESS, Outcome.ABORT):
                    return

        await asyncio.gather(*(run_chain(c) for c in groups))
        return results

    def _requests(self, job: Job) -> list[VendorRequest]:
        """The job's stored requests, or — for replays — the event mapped now with the current connector."""
        if job.requests is not None:
            return [VendorRequest.from_wire(r) for r in job.requests]
        event = job.event or {}
        ctx = TransformContext.at(None, seed=str(event.get("messageId") or job.id))
        return self.connector.transform(event, self.dest.config, ctx)

    async def _send_job(self, job: Job) -> Result:
        try:
            reqs = self._requests(job)
        except SluiceError as e:
            return Result(Outcome.ABORT, None, f"{e.type}: {e.message}")
        except Exception as e:  # noqa: BLE001 - a stored request that no longer parses is not retryable
            return Result(Outcome.ABORT, None, f"invalid stored request: {type(e).__name__}: {e}")
        for req in reqs:
            res = await self._send_one(req)
            if res.outcome is not Outcome.SUCCESS:
                return res
        return Result(Outcome.SUCCESS, 200, "delivered") if not reqs else res

    async def _send_one(self, req: VendorRequest) -> Result:
        wire = req.to_wire()
        try:
            await self.guard.check(req.url)
        except Refused as e:
            return Result(Outcome.ABORT, None, str(e), request=wire)
        except OSError as e:
            return Result(Outcome.RETRY, 599, f"cannot resolve destination host: {e}", request=wire)
        if self.bucket:
            await self.bucket.take()
        await self.throttle.wait()
        attempted = dt.datetime.now(dt.UTC)
        client = await self.clients.get()
        try:
            for quick_retry in (True, False):
                try:
                    answer = await send_async(client, req, self.dest.timeout_s)
                    break
                except (httpx.ConnectError, httpx.RemoteProtocolError) as e:
                    # A refused connection or a keep-alive connection closed under us is usually
                    # momentary (a full listen queue, a server recycling connections): one quick
                    # retry spares the user's whole queue a full backoff period.
                    metrics.REQUESTS_SENT.labels(self.name, "error").inc()
                    if quick_retry:
                        await asyncio.sleep(0.05 + random.random() * 0.1)
                        continue
                    c = classify_exception(e)
                    return Result(c.outcome, c.status, c.reason, request=wire, attempted_at=attempted)
                except (httpx.HTTPError, OSError) as e:
                    c = classify_exception(e)
                    metrics.REQUESTS_SENT.labels(self.name, "error").inc()
                    return Result(c.outcome, c.status, c.reason, request=wire, attempted_at=attempted)
        finally:
            self.clients.put_nowait(client)
        metrics.REQUESTS_SENT.labels(self.name, str(answer.status)).inc()
        telemetry.observe(self, req, answer)
        c: Classification = self.connector.classify(answer.status, answer.headers, answer.body)
        if c.outcome is Outcome.THROTTLE:
            self.throttle.hit(c.retry_after)
        elif c.outcome is Outcome.SUCCESS:
            self.throttle.ok()
        body = answer.body[:_SNIPPET].decode("utf-8", "replace")
        return Result(c.outcome, c.status, c.reason, c.retry_after, wire, body, attempted)

    async def _send_batched(self, jobs: list[Job]) -> dict[int, Result]:
        """Merge the round's requests per the spec's batching; a batch's outcome applies to its jobs."""
        results: dict[int, Result] = {}
        flat: list[VendorRequest] = []
        owner: list[int] = []
        parts: dict[int, int] = {}
        for j in jobs:
            try:
                reqs = self._requests(j)
            except SluiceError as e:
                results[j.id] = Result(Outcome.ABORT, None, f"{e.type}: {e.message}")
                continue
            except Exception as e:  # noqa: BLE001
                results[j.id] = Result(
                    Outcome.ABORT, None, f"invalid stored request: {type(e).__name__}: {e}"
                )
                continue
            if not reqs:
                results[j.id] = Result(Outcome.SUCCESS, 200, "nothing to send")
            parts[j.id] = len(reqs)
            for r in reqs:
                flat.append(r)
                owner.append(j.id)
        groups = self.connector.batch(flat, self.dest.config) if flat else []
        by_id = {j.id: j for j in jobs}
        done_parts: dict[int, int] = {}
        stopped_users: set[str] = set()

        async def send_group(indices: list[int], req: VendorRequest) -> None:
            job_ids = list(dict.fromkeys(owner[i] for i in indices))
            if self.ordering and any(by_id[i].user in stopped_users for i in job_ids):
                return  # an earlier batch of one of these users failed: leave them pending
            if any(i in results and results[i].outcome is not Outcome.SUCCESS for i in job_ids):
                return
            if self.throttle.active:
                return
            res = await self._send_one(req)
            if res.outcome is Outcome.SUCCESS:
                for i in job_ids:
                    done_parts[i] = done_parts.get(i, 0) + sum(1 for x in indices if owner[x] == i)
                    if done_parts[i] >= parts[i]:
                        results[i] = res
                return
            if res.outcome is Outcome.ABORT:
                for i in job_ids:
                    results[i] = res
                return
            # Retry/throttle: the first job of each user carries the failure, the rest stay pending.
            for i in job_ids:
                u = by_id[i].user
                if not self.ordering or u not in stopped_users:
                    results[i] = res
                    stopped_users.add(u)

        if self.ordering:
            for indices, req in groups:
                await send_group(indices, req)
        else:
            await asyncio.gather(*(send_group(i, r) for i, r in groups))
        # Jobs whose every part was not confirmed are left pending (not in results).
        return {
            i: r
            for i, r in results.items()
            if r.outcome is not Outcome.SUCCESS or done_parts.get(i, 0) >= parts.get(i, 0)
        }

    def _redact(self, request: dict[str, Any]) -> str:
        """The request as JSON for the dead-letter store, with credentials replaced by ``***``."""
        req = dict(request)
        req["headers"] = {
            k: ("***" if k.lower() in _SECRET_HEADERS else v) for k, v in (req.get("headers") or {}).items()
        }
        text = json.dumps(req)
        for secret in self.secrets:
            if len(secret) >= 4:
                text = text.replace(json.dumps(secret)[1:-1], "***")
        return text

    # -- recording --------------------------------------------------------------------------------
    def _delay(self, attempts: int, retry_after: float | None) -> float:
        p = self.dest.retry
        base = min(p.max_backoff_s, p.initial_s * (2 ** max(0, attempts - 1)))
        base *= 1 + random.uniform(-p.jitter, p.jitter)
        return max(base, retry_after or 0.0)

    async def _record(self, jobs: list[Job], results: dict[int, Result]) -> None:
        now = dt.datetime.now(dt.UTC)
        u: dict[str, list[Any]] = {
            k: [] for k in ("ids", "states", "attempts", "next_at", "attempted_at", "statuses", "errors")
        }
        dl: dict[str, list[Any]] = {k: [] for k in ("ids", "requests", "statuses", "responses", "reasons")}
        p = self.dest.retry
        unsent_users: set[str] = set()
        for j in jobs:
            r = results.get(j.id)
            if r is None:
                unsent_users.add(j.user)
                continue
            attempts = j.attempts + 1
            next_at = now
            if r.outcome is Outcome.SUCCESS:
                state = "succeeded"
            elif r.outcome is Outcome.ABORT:
                state = "aborted"
            else:
                first = j.first_attempt_at or r.attempted_at
                age = (now - first).total_seconds()
                if age >= p.max_age_s and attempts >= p.min_attempts:
                    state = "aborted"
                    r.reason = f"gave up after {attempts} attempts over {int(age)} s; last error: {r.reason}"
                else:
                    state = "failed"
                    next_at = now + dt.timedelta(seconds=self._delay(attempts, r.retry_after))
            u["ids"].append(j.id)
            u["states"].append(state)
            u["attempts"].append(attempts)
            u["next_at"].append(next_at)
            u["attempted_at"].append(r.attempted_at)
            u["statuses"].append(r.status)
            u["errors"].append(None if state == "succeeded" else r.reason[:2000])
            metrics.DELIVERIES.labels(self.name, state).inc()
            if state == "aborted":
                dl["ids"].append(j.id)
                dl["requests"].append(self._redact(r.request) if r.request is not None else None)
                dl["statuses"].append(r.status)
                dl["responses"].append(r.response)
                dl["reasons"].append(r.reason[:2000])
                metrics.DEAD_LETTERS.labels(self.name, "delivery").inc()
            if self.ordering:
                if state == "failed":
                    self.blocked.add(j.user)
                    self.released.discard(j.user)
                elif j.user in self.blocked:
                    self.blocked.discard(j.user)
                    self.released.add(j.user)
            if state == "succeeded":
                self.delivered += 1
        if u["ids"]:
            try:
                await self._write(u, dl)
            except (psycopg.Error, OSError):
                # Keep what the vendor already answered; it is written before anything is read
                # again, so a database outage does not turn into duplicate deliveries.
                self._unwritten.append((u, dl))
                raise
        for user in unsent_users:
            if user not in self.blocked:
                self.released.add(user)
        if not self.ordering and unsent_users:
            # Unordered: simply read again from the first job left unsent.
            first_unsent = min(j.id for j in jobs if j.id not in results)
            self.cursor = min(self.cursor, first_unsent - 1)
            self.released.clear()


async def _sleep_or(stopping: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
    """Sleep ``seconds``, or less if ``stopping`` (or ``wake``) is set."""
    waits = [asyncio.ensure_future(stopping.wait())]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
