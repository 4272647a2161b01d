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
from pipeline.processor.routing import integration_enabled, passes_filters, user_key
from pipeline.queue.db import copy_json, copy_text, q
from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import SluiceError
from sdk.secrets import Secrets

log = logging.getLogger("sluice.processor")

# Transform this many events, then let the event loop serve HTTP requests for a moment.
_YIELD_EVERY = 10


@dataclass
class Target:
    """A destination ready for the processor: its config entry, connector and all the names it answers to."""

    dest: Destination
    connector: Connector
    names: list[str]
    secrets: Secrets  # stored requests hold placeholders for these; the router restores them


def make_targets(config: SluiceConfig, connectors: dict[str, Connector]) -> dict[str, Target]:
    out = {}
    for d in config.destinations:
        c = connectors.get(d.name)
        if c is None:
            continue
        secrets = Secrets.of(c.spec.secret_settings(), c.check_config(d.config))
        out[d.name] = Target(d, c, [d.name, *c.spec.all_names], secrets)
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
            except Exception:  # noqa: BLE001 - the processor must keep running
                log.exception("processor: unexpected error; retrying")
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

    async def round(self) -> int:
        """Process one batch; returns how many gateway jobs it consumed."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(q("processor_cursor"))
            row = await cur.fetchone()
            after = row[0] if row else 0
            cur = await conn.execute(q("processor_read"), {"after": after, "limit": self.batch_size})
            rows = await cur.fetchall()
            if not rows:
                return 0
            mids = [str(ev.get("messageId")) for _, _, ev in rows if isinstance(ev, dict)]
            seen: set[str] = set()
            dedupe = self.window_s > 0
            if dedupe and mids:
                cur = await conn.execute(
                    q("dedupe_seen"), {"ids": json.dumps(mids), "window_s": self.window_s}
                )
                seen = {r[0] for r in await cur.fetchall()}
            lines: list[str] = []
            dead: dict[str, list[Any]] = {
                k: [] for k in ("gateway_ids", "destinations", "users", "message_ids", "events", "reasons")
            }
            new_mids: list[str] = []
            counts: Counter[str] = Counter()
            jobs_per_dest: Counter[str] = Counter()
            touched: set[str] = set()
            for i, (gid, source, ev) in enumerate(rows):
                if i and i % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                mid = str(ev.get("messageId"))
                if dedupe:
                    if mid in seen:
                        counts["duplicate"] += 1
                        continue
                    seen.add(mid)
                    new_mids.append(mid)
                counts["accepted"] += 1
                targets = self.by_source.get(source, [])
                if not targets:
                    continue
                ukey = user_key(ev)
                ev_text: str | None = None
                integrations = ev.get("integrations")
                for t in targets:
                    if not integration_enabled(integrations, t.names) or not passes_filters(ev, t.dest):
                        counts["filtered"] += 1
                        continue
                    if ev_text is None:
                        ev_text = json.dumps(ev, separators=(",", ":"), ensure_ascii=False)
                    try:
                        ctx = TransformContext.at(None, seed=mid)
                        reqs = t.connector.transform(ev, t.dest.config, ctx)
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
                    sealed = t.secrets.seal([r.to_wire() for r in reqs])
                    wire = json.dumps(sealed, separators=(",", ":"), ensure_ascii=False)
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
                if new_mids and self.window_s > 0:
                    await conn.execute(q("dedupe_insert"), {"ids": json.dumps(new_mids)})
                cur = await conn.execute(q("processor_advance"), {"to": last_id, "from": after})
                if cur.rowcount != 1:
                    raise RuntimeError("processor cursor moved under us; is another processor running?")
            self.processed += len(rows)
            for outcome, n in counts.items():
                metrics.PROCESSED.labels(outcome).inc(n)
            for dest, n in jobs_per_dest.items():
                metrics.DELIVERY_JOBS_CREATED.labels(dest).inc(n)
            if touched and self.on_jobs:
                self.on_jobs(touched)
            return len(rows)

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


async def _sleep_or(stopping: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stopping.wait(), timeout=seconds)
    except TimeoutError:
        pass
