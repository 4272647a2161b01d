"""Group commit: many requests' events written in one COPY transaction, acknowledged after commit.

Request handlers hand over pre-encoded COPY lines and wait on a future. One writer task drains
everything queued, lingers ``group_commit_ms`` if the batch is still small, and commits it all with
one COPY under an advisory transaction lock (so gateway ids become visible in id order for the
processor's cursor). While a commit runs, new requests queue up, so under load batches grow by
themselves. If Postgres is unreachable the writer fails the waiting requests (the gateway answers
503 + Retry-After), keeps reconnecting in the background and never crashes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import psycopg

from pipeline import metrics
from pipeline.queue.db import connect, q

log = logging.getLogger("sluice.gateway")


class Unavailable(Exception):
    """The events were not (known to be) committed; the client should retry later."""

    def __init__(self, reason: str, retry_after: int = 2):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class GroupWriter:
    def __init__(
        self,
        dsn: str,
        *,
        group_commit_ms: float = 2.0,
        max_backlog: int = 200_000,
        on_commit: Callable[[], None] | None = None,
    ):
        self.dsn = dsn
        self.linger = group_commit_ms / 1000.0
        self.max_backlog = max_backlog
        self.on_commit = on_commit
        self.backlog = 0
        self.connected = False
        self._queue: list[tuple[bytes, int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._conn: psycopg.AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.last_error: str | None = None

    async def start(self) -> None:
        await self._reconnect(first=True)
        self._task = asyncio.create_task(self._run(), name="gateway-writer")

    async def stop(self) -> None:
        """Commit what is queued, then close."""
        self._stopping = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(self._task, timeout=15)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        if self._conn is not None:
            await self._conn.close()

    def submit(self, lines: bytes, count: int) -> asyncio.Future[None]:
        """Queue COPY text for ``count`` events; the future resolves once they are committed."""
        if not self.connected:
            raise Unavailable(f"the queue database is unreachable ({self.last_error or 'connecting'})", 5)
        if self.backlog + count > self.max_backlog:
            raise Unavailable("the gateway is at its backlog bound; slow down", 1)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((lines, count, fut))
        self.backlog += count
        metrics.GATEWAY_BACKLOG.set(self.backlog)
        self._wake.set()
        return fut

    async def _reconnect(self, first: bool = False) -> None:
        delay = 0.2
        while not self._stopping:
            try:
                if self._conn is not None:
                    try:
                        await self._conn.close()
                    except Exception:  # noqa: BLE001 - a dead connection may fail to close; that is fine
                        pass
                self._conn = await connect(self.dsn)
                self.connected = True
                self.last_error = None
                metrics.DATABASE_UP.set(1)
                if not first:
                    log.warning("gateway: database connection restored")
                return
            except psycopg.Error as e:
                self.connected = False
                metrics.DATABASE_UP.set(0)
                self.last_error = type(e).__name__
                if first:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.linger and self.backlog < 1000 and not self._stopping:
                await asyncio.sleep(self.linger)
            batch, self._queue = self._queue, []
            count = sum(c for _, c, _ in batch)
            started = time.perf_counter()
            try:
                await self._commit(batch)
            except (psycopg.Error, OSError) as e:
                self.connected = False
                self.last_error = type(e).__name__
                metrics.DATABASE_UP.set(0)
                log.error("gateway: group commit of %d events failed: %s", count, e)
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(Unavailable(f"the queue database failed ({type(e).__name__})", 2))
                # Fail everything queued meanwhile too: the connection is gone.
                pending, self._queue = self._queue, []
                for _, _, fut in pending:
                    if not fut.done():
                        fut.set_exception(Unavailable("the queue database is unreachable", 5))
                self.backlog = 0
                metrics.GATEWAY_BACKLOG.set(0)
                await self._reconnect()
                continue
            except Exception as e:  # noqa: BLE001 - never let the writer die
                log.exception("gateway: unexpected group-commit failure")
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(Unavailable(f"internal error ({type(e).__name__})", 2))
                self.backlog -= count
                continue
            self.backlog -= count
            metrics.GATEWAY_BACKLOG.set(self.backlog)
            metrics.GROUP_COMMIT_EVENTS.observe(count)
            metrics.GROUP_COMMIT_SECONDS.observe(time.perf_counter() - started)
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_result(None)
            if self.on_commit:
                self.on_commit()

    async def _commit(self, batch: list[tuple[bytes, int, asyncio.Future[None]]]) -> None:
        conn = self._conn
        assert conn is not None
        data = b"".join(lines for lines, _, _ in batch)
        for attempt in (1, 2):
            try:
                async with conn.transaction():
                    await conn.execute(q("gateway_commit_lock"))
                    async with conn.cursor().copy(q("gateway_copy")) as copy:
                        await copy.write(data)
                return
            except psycopg.errors.CheckViolation as e:
                # "no partition of relation found": the maintenance task is behind; create and retry.
                if attempt == 2 or "partition" not in str(e):
                    raise
                await conn.execute(q("ensure_gateway_partitions"), {"extra": sum(c for _, c, _ in batch)})
