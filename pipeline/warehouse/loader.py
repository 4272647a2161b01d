"""Warehouse loaders: per warehouse destination, batch its delivery jobs into one dlt load per sync.

One loader per destination in the whole deployment (a session advisory lock; another ``sluice up``
on the same database waits and takes over if this one dies). Each loader's heavy work (rows, Arrow,
dlt) runs in a child process of its own (``backend.py``), and the loader holds a database connection
only for short bookkeeping statements, so a slow or failing warehouse never delays another
destination.

A sync is due when ``max_events`` jobs wait, or the oldest waiting job is ``sync_every`` seconds old.
Then, in order:

1. claim up to ``max_events`` due jobs (by id);
2. build the batch (``batch.py``); events the row model rejects are dead-lettered with the reason;
3. stage it as one dlt load package on local disk;
4. record the package and its exact job ids in ``warehouse_loads`` (state ``loading``);
5. load the package; on success mark the jobs succeeded and the load ``done`` in one transaction.

Exactly once. A crash anywhere leaves one of: an unrecorded package (dropped at restart: its jobs
are still pending and go into a new load), or a recorded one (finished at restart: dlt redoes only
the jobs that had not completed; SQL warehouses merge on the event id, files are rewritten under
the same name). A recorded package whose working dir is gone (``lost``) is loaded again from its
jobs; merge-on-id keeps that exactly-once on SQL warehouses. Nothing is marked succeeded before the
warehouse has it: at-least-once delivery plus an idempotent load.

Failures: dlt's permanent job failures (the warehouse rejects the data) dead-letter the load's jobs
at once with the reason; anything else is retried with the destination's backoff (the same
package, so nothing is lost or doubled) until the retry policy gives up (``max_age_s`` and
``min_attempts``), which dead-letters them too. While a load is being retried, later events of
that destination wait behind it, keeping loads in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pipeline import metrics as pipeline_metrics
from pipeline.config import Destination
from pipeline.queue.db import connect
from pipeline.router.worker import _sleep_or
from pipeline.warehouse import metrics
from pipeline.warehouse.backend import Prepared, ProcessRunner, ThreadRunner, describe, is_permanent
from pipeline.warehouse.config import WarehouseSettings, warehouse_settings
from pipeline.warehouse.destination import resolve
from pipeline.warehouse.sql import wq

log = logging.getLogger("sluice.warehouse")

_ERROR_CHARS = 2000


class WarehouseLoader:
    poll_interval_s = 0.5
    lock_retry_s = 1.0
    sync_retry_s = 30.0

    def __init__(
        self,
        dsn: str,
        pool: AsyncConnectionPool,
        dest: Destination,
        settings: WarehouseSettings,
        *,
        isolate: bool = True,
    ):
        self.dsn = dsn
        self.pool = pool
        self.dest = dest
        self.name = dest.name
        self.settings = settings
        # The heavy work runs in a child process (``isolate``) or on a thread of this process.
        self.runner: ProcessRunner | ThreadRunner = (ProcessRunner if isolate else ThreadRunner)(
            dest.name, settings
        )
        self.synced = False
        self._next_sync = 0.0
        self.secrets = sorted(settings.secrets(), key=len, reverse=True)
        self.wake = asyncio.Event()
        self.held = False
        self._lock_conn: psycopg.AsyncConnection | None = None
        self.loaded_events = 0
        self.loads = 0

    # -- plumbing ---------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return text[:_ERROR_CHARS]

    def _describe(self, exc: BaseException) -> str:
        return self._redact(describe(exc))

    def _delay(self, attempts: int) -> float:
        p = self.dest.retry
        base = min(p.max_backoff_s, p.initial_s * (2 ** max(0, attempts - 1)))
        return base * (1 + random.uniform(-p.jitter, p.jitter))

    async def _hold_lock(self) -> bool:
        try:
            if self._lock_conn is None or self._lock_conn.closed:
                self.held = False
                self._lock_conn = await connect(self.dsn)
            if not self.held:
                cur = await self._lock_conn.execute(wq("lock"), {"destination": self.name})
                row = await cur.fetchone()
                self.held = bool(row and row[0])
                if self.held:
                    log.info(
                        "warehouse[%s]: this process loads the %s warehouse",
                        self.name,
                        self.settings.provider,
                    )
            else:
                await self._lock_conn.execute("SELECT 1")
        except (psycopg.Error, OSError) as e:
            if self.held:
                log.warning("warehouse[%s]: lost the lock connection: %s", self.name, e)
            self.held = False
            await self._close_lock()
        return self.held

    async def _close_lock(self) -> None:
        if self._lock_conn is not None:
            with contextlib.suppress(Exception):
                await self._lock_conn.close()
        self._lock_conn = None

    # -- loop -------------------------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        backoff = 0.5
        try:
            while not stopping.is_set():
                if not await self._hold_lock():
                    await _sleep_or(stopping, self.lock_retry_s)
                    continue
                try:
                    worked = await self.step()
                    backoff = 0.5
                except (psycopg.Error, OSError) as e:
                    log.warning("warehouse[%s]: database error, retrying in %.1fs: %s", self.name, backoff, e)
                    await _sleep_or(stopping, backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
                except Exception as e:  # noqa: BLE001 - one bad step must not stop the loader
                    log.error("warehouse[%s]: %s; retrying in %.1fs", self.name, self._describe(e), backoff)
                    await _sleep_or(stopping, backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                if not worked:
                    self.wake.clear()
                    await _sleep_or(stopping, self.poll_interval_s, self.wake)
        finally:
            await self._close_lock()
            # A load in flight finishes on its own (joined at exit); the loop must not block on it.
            self.runner.close(wait=False)

    async def step(self) -> bool:
        """One pass: finish an open load, or start one if a sync is due. True if it did work."""
        if not self.synced and time.monotonic() >= self._next_sync:
            try:
                await self.runner.call("sync")
                self.synced = True
            except Exception as e:  # noqa: BLE001 - an unreachable warehouse is handled by the load retries
                self._next_sync = time.monotonic() + self.sync_retry_s
                log.warning(
                    "warehouse[%s]: cannot read the warehouse's schema yet (trying again in %.0fs): %s",
                    self.name,
                    self.sync_retry_s,
                    self._describe(e),
                )
        async with self.pool.connection() as conn:
            cur = await conn.execute(wq("open_loads"), {"destination": self.name})
            open_loads = await cur.fetchall()
        if open_loads:
            return await self._resume(open_loads[0])
        if await self.runner.call("pending"):
            # Packages staged by a process that died before recording them: their jobs are still
            # waiting and will be loaded again, so the packages must go.
            log.info("warehouse[%s]: dropping unrecorded load packages left by a crash", self.name)
            await self.runner.call("drop_pending")
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                wq("backlog"), {"destination": self.name, "limit": self.settings.max_events}
            )
            count, oldest = await cur.fetchone()
        now = dt.datetime.now(dt.UTC)
        lag = (now - oldest).total_seconds() if oldest else 0.0
        metrics.LAG_SECONDS.labels(self.name).set(max(0.0, lag))
        if not count or (count < self.settings.max_events and lag < self.settings.sync_every):
            return False
        await self._start()
        return True

    # -- a new load -------------------------------------------------------------------------------
    async def _start(self) -> None:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                wq("claim"), {"destination": self.name, "limit": self.settings.max_events}
            )
            claimed = await cur.fetchall()
        if not claimed:
            return
        try:
            prep: Prepared = await self.runner.call("prepare", [(r[0], r[1], r[2]) for r in claimed])
        except Exception as e:  # noqa: BLE001 - a batch that cannot be staged is retried, then dead-lettered
            attempts = max(r[3] for r in claimed) + 1
            first = min((r[4] for r in claimed if r[4]), default=dt.datetime.now(dt.UTC))
            await self._unstageable([r[0] for r in claimed], e, attempts, first)
            return
        if prep.rejected:
            await self._abort(list(prep.rejected), list(prep.rejected.values()))
        if not prep.job_ids:
            return
        if not prep.rows:
            async with self.pool.connection() as conn:
                await conn.execute(wq("jobs_done"), {"ids": prep.job_ids})
            return
        included = set(prep.job_ids)
        oldest = min((r[2] for r in claimed if r[0] in included and r[2]), default=None)
        record = {
            "destination": self.name,
            "load_id": prep.load_id,
            "job_ids": prep.job_ids,
            "first_job_id": min(prep.job_ids),
            "last_job_id": max(prep.job_ids),
            "events": prep.events,
            "rows": prep.rows,
            "tables": prep.tables,
            "tables_added": prep.tables_added,
            "columns_added": prep.columns_added,
            "discards": prep.discards,
            "oldest_event_at": oldest,
        }
        async with self.pool.connection() as conn:
            cur = await conn.execute(wq("load_begin"), record)
            row = await cur.fetchone()
        assert row is not None
        await self._load({**record, "id": row[0], "attempts": 0, "started_at": dt.datetime.now(dt.UTC)})

    # -- an open load -----------------------------------------------------------------------------
    async def _resume(self, r: tuple[Any, ...]) -> bool:
        rec = {
            "id": r[0], "load_id": r[1], "job_ids": list(r[2]), "attempts": r[3], "next_attempt_at": r[4],
            "started_at": r[5], "events": r[6], "rows": r[7], "tables": r[8], "discards": r[9],
            "tables_added": list(r[10]), "columns_added": list(r[11]), "oldest_event_at": r[12],
        }  # fmt: skip
        if rec["next_attempt_at"] > dt.datetime.now(dt.UTC):
            return False
        if rec["load_id"] in await self.runner.call("pending"):
            log.info("warehouse[%s]: finishing load %s (%d events)", self.name, rec["load_id"], rec["events"])
            await self._load(rec)
        elif (loaded := await self.runner.call("loaded", rec["load_id"])) is not None:
            if loaded:
                await self._finish(rec, 0.0)
            else:  # completed with failed jobs, or aborted, before its jobs were dead-lettered
                reason = f"warehouse load {rec['load_id']} failed (the warehouse rejected the load)"
                await self._abort(
                    rec["job_ids"], [reason] * len(rec["job_ids"]), load=rec["id"], error=reason
                )
        else:
            log.warning(
                "warehouse[%s]: load package %s is gone from %s; its %d events are loaded again",
                self.name, rec["load_id"], self.settings.work_path(self.name), rec["events"],
            )  # fmt: skip
            async with self.pool.connection() as conn, conn.transaction():
                await conn.execute(wq("jobs_release"), {"ids": rec["job_ids"]})
                await conn.execute(
                    wq("load_end"), {"id": rec["id"], "state": "lost", "error": "load package lost"}
                )
        return True

    async def _load(self, rec: dict[str, Any]) -> None:
        t0 = time.monotonic()
        try:
            await self.runner.call("load")
        except Exception as e:  # noqa: BLE001 - classified below
            await self._failed(rec, e, time.monotonic() - t0)
            return
        await self._finish(rec, time.monotonic() - t0)

    async def _finish(self, rec: dict[str, Any], seconds: float) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(wq("jobs_done"), {"ids": rec["job_ids"]})
            await conn.execute(wq("load_done"), {"id": rec["id"], "seconds": seconds})
        now = dt.datetime.now(dt.UTC)
        lag = (now - rec["oldest_event_at"]).total_seconds() if rec.get("oldest_event_at") else 0.0
        d = self.name
        metrics.LOADS.labels(d, "succeeded").inc()
        metrics.EVENTS.labels(d).inc(rec["events"])
        metrics.ROWS.labels(d).inc(rec["rows"])
        metrics.DISCARDS.labels(d).inc(rec["discards"])
        metrics.TABLES_ADDED.labels(d).inc(len(rec["tables_added"]))
        metrics.COLUMNS_ADDED.labels(d).inc(len(rec["columns_added"]))
        metrics.LOAD_SECONDS.labels(d).observe(seconds)
        pipeline_metrics.DELIVERIES.labels(d, "succeeded").inc(len(rec["job_ids"]))
        self.loaded_events += rec["events"]
        self.loads += 1
        log.info(
            "warehouse[%s]: load %s: %d events -> %d rows in %d tables (+%d tables, +%d columns, "
            "%d discards) in %.2fs; oldest event waited %.1fs",
            d, rec["load_id"], rec["events"], rec["rows"], rec["tables"], len(rec["tables_added"]),
            len(rec["columns_added"]), rec["discards"], seconds, lag,
        )  # fmt: skip

    async def _failed(self, rec: dict[str, Any], exc: BaseException, seconds: float) -> None:
        reason = self._describe(exc)
        attempts = rec["attempts"] + 1
        p = self.dest.retry
        age = (dt.datetime.now(dt.UTC) - rec["started_at"]).total_seconds()
        permanent = is_permanent(exc)
        if permanent or (age >= p.max_age_s and attempts >= p.min_attempts):
            why = "the warehouse rejected the load" if permanent else f"gave up after {attempts} attempts"
            full = f"warehouse load {rec['load_id']} failed ({why}): {reason}"
            log.error("warehouse[%s]: %s; %d events dead-lettered", self.name, full, len(rec["job_ids"]))
            with contextlib.suppress(Exception):
                await self.runner.call("drop_pending")
            await self._abort(rec["job_ids"], [full] * len(rec["job_ids"]), load=rec["id"], error=full)
            metrics.LOADS.labels(self.name, "aborted").inc()
            return
        delay = self._delay(attempts)
        next_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(wq("load_retry"), {"id": rec["id"], "next_at": next_at, "error": reason})
            await conn.execute(wq("jobs_retry"), {"ids": rec["job_ids"], "next_at": next_at, "error": reason})
        metrics.LOADS.labels(self.name, "failed").inc()
        log.warning(
            "warehouse[%s]: load %s failed after %.2fs (attempt %d), retrying in %.0fs: %s",
            self.name, rec["load_id"], seconds, attempts, delay, reason,
        )  # fmt: skip

    async def _unstageable(
        self, ids: list[int], exc: BaseException, attempts: int, first: dt.datetime
    ) -> None:
        """Building or staging the batch failed (a local problem, not the warehouse's)."""
        reason = f"warehouse batch could not be staged: {self._describe(exc)}"
        p = self.dest.retry
        if (dt.datetime.now(dt.UTC) - first).total_seconds() >= p.max_age_s and attempts >= p.min_attempts:
            log.error("warehouse[%s]: %s; %d events dead-lettered", self.name, reason, len(ids))
            await self._abort(ids, [reason] * len(ids))
            return
        delay = self._delay(attempts)
        next_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        async with self.pool.connection() as conn:
            await conn.execute(wq("jobs_retry"), {"ids": ids, "next_at": next_at, "error": reason})
        log.error("warehouse[%s]: %s; retrying in %.0fs", self.name, reason, delay)

    async def _abort(
        self, ids: list[int], reasons: list[str], *, load: int | None = None, error: str = ""
    ) -> None:
        async with self.pool.connection() as conn, conn.transaction():
            await conn.execute(wq("jobs_abort"), {"ids": ids, "reasons": reasons})
            await conn.execute(wq("dead_letters"), {"ids": ids, "reasons": reasons})
            if load is not None:
                await conn.execute(wq("load_end"), {"id": load, "state": "aborted", "error": error})
        pipeline_metrics.DELIVERIES.labels(self.name, "aborted").inc(len(ids))
        pipeline_metrics.DEAD_LETTERS.labels(self.name, "delivery").inc(len(ids))


def check_warehouse(dest: Destination, where: str) -> None:
    """Startup check of a warehouse destination: its config, and that dlt can resolve it
    (credentials included) without connecting. Raises ConfigError naming the fix."""
    resolve(warehouse_settings(dest, where), dest.name)


class WarehouseLoaders:
    """The loaders of every warehouse destination of this process."""

    def __init__(
        self, dsn: str, pool: AsyncConnectionPool, destinations: list[Destination], *, isolate: bool = True
    ):
        self.loaders = {
            d.name: WarehouseLoader(dsn, pool, d, warehouse_settings(d), isolate=isolate)
            for d in destinations
        }

    def wake(self, names: set[str]) -> None:
        for n in names:
            w = self.loaders.get(n)
            if w is not None:
                w.wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        tasks = [asyncio.create_task(w.run(stopping), name=f"warehouse:{n}") for n, w in self.loaders.items()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
