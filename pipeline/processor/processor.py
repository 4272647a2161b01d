"""Gateway jobs → delivery jobs.

One leader at a time (the app holds an advisory lock) reads gateway jobs after its cursor in
batches, drops messageIds seen within the dedupe window, fans each event out to the destinations
its source is connected to (honouring ``integrations`` and filters), maps it with the destination's
connector, and — in ONE transaction — COPYs the delivery jobs, records mapping errors as dead
letters, remembers the messageIds and advances the cursor. A crash before commit redoes the batch;
after commit nothing is redone: the hand-off neither loses nor doubles events.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from pipeline import metrics
from pipeline.config import Destination, SluiceConfig
from pipeline.gateway.wire import loads_exact
from pipeline.processor.keys import bounded, dedupe_key
from pipeline.processor.routing import integration_enabled, passes_filters, user_key
from pipeline.queue.db import copy_json, copy_text, q
from pipeline.warehouse.config import is_warehouse, warehouse_names
from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import EventDropped, SluiceError
from sdk.secrets import Secrets

log = logging.getLogger("sluice.processor")

# Transform this many events, then let the event loop serve HTTP requests for a moment.
_YIELD_EVERY = 10


@dataclass
class Target:
    """A destination ready for the processor: its config entry, connector and all the names it answers to.

    ``connector`` is None for a warehouse destination: its jobs carry only the event, and the
    warehouse loader (pipeline/warehouse) builds the rows when it loads them in batches."""

    dest: Destination
    connector: Connector | None
    names: list[str]
    secrets: Secrets | None = None  # stored requests hold placeholders for these; the router restores them


def make_targets(config: SluiceConfig, connectors: dict[str, Connector]) -> dict[str, Target]:
    out = {}
    for d in config.destinations:
        if is_warehouse(d):
            out[d.name] = Target(d, None, warehouse_names(d))
            continue
        c = connectors.get(d.name)
        if c is None:
            continue
        out[d.name] = Target(d, c, [d.name, *c.spec.all_names], Secrets.for_destination(c, d.config))
    return out


class Processor:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        config: SluiceConfig,
        connectors: dict[str, Connector],
        *,
        on_jobs: Callable[[set[str]], None] | None = None,
    ):
        self.pool = pool
        self.config = config
        self.targets = make_targets(config, connectors)
        self.by_source = {
            s.name: [self.targets[d.name] for d in config.destinations_for(s.name) if d.name in self.targets]
            for s in config.sources
        }
        self.source_types = {s.name: s.type for s in config.sources}
        self.batch_size = config.processor.batch_size
        self.window_s = float(config.processor.dedupe_window_s)
        self.on_jobs = on_jobs
        self.wake = asyncio.Event()
        # How long to wait for new gateway jobs when idle, unless woken (same process) sooner.
        self.idle_wait_s = 0.25
        self.processed = 0

    async def run(self, is_leader: Callable[[], bool], stopping: asyncio.Event) -> None:
        backoff = 0.5
        while not stopping.is_set():
            if not is_leader():
                await _sleep_or(stopping, 0.5)
                continue
            try:
                n = await self.round()
                backoff = 0.5
            except (psycopg.Error, OSError) as e:
                log.warning("processor: database error, retrying in %.1fs: %s", backoff, e)
                await _sleep_or(stopping, backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except Exception as e:  # noqa: BLE001 - the processor must keep running
                log.exception("processor: unexpected error; retrying")
                await self._note_failure(f"{type(e).__name__}: {e}")
                await _sleep_or(stopping, 1.0)
                continue
            if n < self.batch_size:
                # Let commits accumulate a little: fewer, larger rounds under load.
                await asyncio.sleep(0.01)
                self.wake.clear()
                try:
                    await asyncio.wait_for(self.wake.wait(), timeout=self.idle_wait_s)
                except TimeoutError:
                    pass

    async def _note_failure(self, reason: str) -> None:
        """Record a failed round for /health (best effort: the database may be the problem)."""
        try:
            async with self.pool.connection(timeout=5) as conn:
                await conn.execute(q("processor_failed"), {"error": reason[:1000]})
        except Exception:  # noqa: BLE001 - nothing more to do; the round is retried anyway
            pass

    async def round(self) -> int:
        """Process one batch; returns how many gateway jobs it consumed."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(q("processor_cursor"))
            row = await cur.fetchone()
            after = row[0] if row else 0
            cur = await conn.execute(q("processor_read"), {"after": after, "limit": self.batch_size})
            rows = [(gid, source, _parse(text)) for gid, source, text in await cur.fetchall()]
            if not rows:
                return 0
            await self._hand_off_or_split(conn, rows, after)
            self.processed += len(rows)
            return len(rows)

    async def _hand_off_or_split(self, conn: psycopg.AsyncConnection, rows: list[Any], after: int) -> None:
        """Hand ``rows`` (the gateway jobs after cursor ``after``, in id order) off in one transaction.

        If that fails for a reason the data can cause (anything but a lost connection, a database that
        is shutting down or out of resources, or a serialisation conflict), the rows are split in two
        and each half is handed off on its own, down to a single event, which is dead-lettered with
        the reason: one bad event costs about 2 log2(batch) small transactions, never the pipeline.
        """
        try:
            await self._hand_off(conn, rows, after)
            return
        except Exception as e:  # noqa: BLE001 - classified below; transient ones propagate
            if _transient(e):
                raise
            failure = e
        reason = f"{type(failure).__name__}: {str(failure).strip()}"[:1000]
        log.warning(
            "processor: handing off gateway jobs %d..%d failed (%s); splitting to isolate the cause",
            rows[0][0],
            rows[-1][0],
            reason,
        )
        await conn.execute(q("processor_failed"), {"error": reason})
        if len(rows) == 1:
            await self._isolate(conn, rows[0], after, reason)
            return
        half = len(rows) // 2
        await self._hand_off_or_split(conn, rows[:half], after)
        await self._hand_off_or_split(conn, rows[half:], rows[half - 1][0])

    async def _hand_off(self, conn: psycopg.AsyncConnection, rows: list[Any], after: int) -> None:
        for gid, _, ev in rows:
            if isinstance(ev, Unreadable):
                raise ev.error(gid)
        keys = [dedupe_key(source, ev.get("messageId")) for _, source, ev in rows]
        seen: set[str] = set()
        dedupe = self.window_s > 0
        if dedupe and keys:
            cur = await conn.execute(q("dedupe_seen"), {"ids": json.dumps(keys), "window_s": self.window_s})
            seen = {r[0] for r in await cur.fetchall()}
        lines: list[str] = []
        dead: dict[str, list[Any]] = {
            k: [] for k in ("gateway_ids", "destinations", "users", "message_ids", "events", "reasons")
        }
        new_keys: list[str] = []
        counts: Counter[str] = Counter()
        jobs_per_dest: Counter[str] = Counter()
        touched: set[str] = set()
        for i, (gid, source, ev) in enumerate(rows):
            if i and i % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
            raw_mid = ev.get("messageId")
            mid = str(raw_mid)
            if dedupe:
                key = dedupe_key(source, raw_mid)
                if key in seen:
                    counts["duplicate"] += 1
                    continue
                seen.add(key)
                new_keys.append(key)
            counts["accepted"] += 1
            targets = self.by_source.get(source, [])
            if not targets:
                continue
            ukey = bounded(user_key(ev))
            ev_text: str | None = None
            integrations = ev.get("integrations")
            for t in targets:
                if not integration_enabled(integrations, t.names) or not passes_filters(ev, t.dest):
                    counts["filtered"] += 1
                    continue
                if ev_text is None:
                    ev_text = json.dumps(ev, separators=(",", ":"), ensure_ascii=False)
                if t.connector is None:  # warehouse: the event alone; rows are built at load time
                    lines.append(
                        f"{copy_text(t.dest.name)}\t{copy_text(ukey)}\t{copy_text(mid)}\t{gid}\t"
                        f"{copy_json(ev_text)}\t\\N\n"
                    )
                    touched.add(t.dest.name)
                    jobs_per_dest[t.dest.name] += 1
                    continue
                try:
                    ctx = TransformContext.at(None, seed=mid)
                    reqs = t.connector.transform(ev, t.dest.config, ctx, self.source_types.get(source))
                except EventDropped:
                    # Event filtering, consent or an unmapped event name: deliberately nothing to send.
                    counts["filtered"] += 1
                    continue
                except SluiceError as e:
                    reason = f"{e.type}: {e.message}"
                    self._dead(dead, gid, t.dest.name, ukey, mid, ev_text, reason)
                    continue
                except Exception as e:  # noqa: BLE001 - a mapper bug must not stop the pipeline
                    reason = f"mapper_error: {type(e).__name__}: {e}"
                    self._dead(dead, gid, t.dest.name, ukey, mid, ev_text, reason)
                    continue
                if not reqs:
                    counts["no_request"] += 1
                    continue
                wired = [r.to_wire() for r in reqs]
                if t.secrets:
                    wired = t.secrets.seal(wired)
                wire = json.dumps(wired, separators=(",", ":"), ensure_ascii=False)
                lines.append(
                    f"{copy_text(t.dest.name)}\t{copy_text(ukey)}\t{copy_text(mid)}\t{gid}\t"
                    f"{copy_json(ev_text)}\t{copy_json(wire)}\n"
                )
                touched.add(t.dest.name)
                jobs_per_dest[t.dest.name] += 1
        last_id = rows[-1][0]
        async with conn.transaction():
            if lines:
                await self._copy(conn, "".join(lines).encode("utf-8", "surrogatepass"))
            if dead["gateway_ids"]:
                await conn.execute(q("transform_dead_letters"), dead)
            if new_keys:
                await conn.execute(q("dedupe_insert"), {"ids": json.dumps(new_keys)})
            await self._advance(conn, after, last_id, 0)
        for outcome, n in counts.items():
            metrics.PROCESSED.labels(outcome).inc(n)
        for dest, n in jobs_per_dest.items():
            metrics.DELIVERY_JOBS_CREATED.labels(dest).inc(n)
        if touched and self.on_jobs:
            self.on_jobs(touched)

    async def _isolate(self, conn: psycopg.AsyncConnection, row: Any, after: int, reason: str) -> None:
        """Dead-letter one event that cannot be handed off, for each destination it was meant for, and
        move the cursor past it (one transaction)."""
        gid, source, ev = row
        names = [t.dest.name for t in self.by_source.get(source, [])] or [f"(source {source})"]
        readable = isinstance(ev, dict)
        args = {
            "gateway_id": gid,
            "destinations": names,
            "user": bounded(user_key(ev)) if readable else "(unreadable)",
            "message_id": bounded(str(ev.get("messageId"))) if readable else None,
            "reason": f"unprocessable: the event could not be handed off to delivery ({reason})",
        }
        async with conn.transaction():
            await conn.execute(q("isolate_dead_letters"), args)
            await self._advance(conn, after, gid, 1)
        for name in names:
            metrics.DEAD_LETTERS.labels(name, "transform").inc()
        log.error("processor: gateway job %d dead-lettered for %s: %s", gid, ", ".join(names), reason)

    @staticmethod
    async def _advance(conn: psycopg.AsyncConnection, after: int, to: int, isolated: int) -> None:
        cur = await conn.execute(q("processor_advance"), {"to": to, "from": after, "isolated": isolated})
        if cur.rowcount != 1:
            raise CursorMoved("processor cursor moved under us; is another processor running?")

    @staticmethod
    def _dead(
        dead: dict[str, list[Any]], gid: int, dest: str, ukey: str, mid: str, ev_text: str, reason: str
    ) -> None:
        dead["gateway_ids"].append(gid)
        dead["destinations"].append(dest)
        dead["users"].append(ukey)
        dead["message_ids"].append(mid)
        dead["events"].append(ev_text)
        dead["reasons"].append(reason)
        metrics.DEAD_LETTERS.labels(dest, "transform").inc()

    async def _copy(self, conn: psycopg.AsyncConnection, data: bytes) -> None:
        try:
            async with conn.transaction():
                async with conn.cursor().copy(q("delivery_copy")) as copy:
                    await copy.write(data)
        except psycopg.errors.CheckViolation as e:
            if "partition" not in str(e):
                raise
            # The maintenance task is behind: create partitions and try once more (savepoint rolled back).
            await conn.execute(q("ensure_delivery_partitions"), {"extra": data.count(b"\n")})
            async with conn.transaction():
                async with conn.cursor().copy(q("delivery_copy")) as copy:
                    await copy.write(data)


class Unreadable:
    """A stored event Python cannot parse (kept in the batch so the cursor still passes it in order)."""

    def __init__(self, reason: str):
        self.reason = reason

    def error(self, gid: int) -> ValueError:
        return ValueError(f"gateway job {gid} cannot be read: {self.reason}")


def _parse(text: str) -> Any:
    """A stored event, or Unreadable (e.g. an integer of thousands of digits, which jsonb keeps but
    Python refuses to convert)."""
    try:
        return loads_exact(text)
    except (ValueError, RecursionError) as e:
        return Unreadable(f"{type(e).__name__}: {str(e)[:200]}")


class CursorMoved(RuntimeError):
    """Another processor advanced the cursor: this one's batch is void (nothing was committed)."""


# SQLSTATE classes a retry of the same statement can cure: connection exception, insufficient
# resources, operator intervention (shutdown, cancel), object not in prerequisite state (lock not
# available) and transaction rollback (serialisation failure, deadlock).
_TRANSIENT_CLASSES = ("08", "53", "55", "57", "40")


def _transient(e: BaseException) -> bool:
    """True for failures of the database or the connection, which splitting a batch cannot cure."""
    if isinstance(e, (OSError, CursorMoved, psycopg.InterfaceError, asyncio.CancelledError)):
        return True
    if isinstance(e, psycopg.Error):
        state = e.sqlstate
        return (
            state is None or state[:2] in _TRANSIENT_CLASSES or e.pgconn is not None and e.pgconn.status != 0
        )
    return False


async def _sleep_or(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        pass
