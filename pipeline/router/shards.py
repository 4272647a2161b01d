"""Router shards: several workers, in one process or many, share a destination's users.

Why: one worker per destination caps a destination at what one process can send, and a second
``sluice up`` on the same database only waited as a standby. Now each destination's users are split
into ``shards`` (``sluice_user_shard(user_key, shards)`` in SQL), and shard k is delivered by
whichever process holds the session advisory lock on (destination, k):

* a user always maps to one shard and a shard to at most one lock holder, so per-user ordering is
  exactly what it was with a single worker;
* every process able to deliver a destination also holds a *shared* lock on (destination, -1), so
  processes can count each other (``pg_locks``) and each takes a fair share, ``ceil(shards /
  processes)``; a process holding more than that gives shards back (once the shard's jobs in flight
  are answered and recorded, so the next holder never overlaps it);
* locks belong to a session: a process that dies or loses its database connection loses them, and
  the others pick its shards up on their next check (``check_interval_s``).

A process whose lock connection breaks stops its workers at their next step; jobs already in flight
finish, which, during the few seconds before the other process picks the shard up, can send a job
twice: the router is at-least-once, as after any crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable

import psycopg
from psycopg_pool import AsyncConnectionPool

from pipeline.config import Destination
from pipeline.queue.db import connect, q
from pipeline.router.guard import AddressGuard
from pipeline.router.sender import Pacing
from pipeline.router.worker import DestinationWorker
from sdk.connector import Connector

log = logging.getLogger("sluice.router")


class _Wake:
    """``wake.set()`` for a whole destination: wakes each of its local shard workers."""

    def __init__(self, workers: list[DestinationWorker]):
        self.workers = workers

    def set(self) -> None:
        for w in self.workers:
            w.wake.set()


class DestinationShards:
    """The shard workers of one destination in this process, and which shards it holds."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        dest: Destination,
        connector: Connector,
        guard: AddressGuard,
        *,
        poll_interval_s: float,
    ):
        self.name = dest.name
        self.shards = dest.shards
        self.pacing = Pacing(dest, connector, guard)
        self.workers = [
            DestinationWorker(
                pool,
                dest,
                connector,
                guard,
                poll_interval_s=poll_interval_s,
                shard=k,
                shards=dest.shards,
                pacing=self.pacing,
            )
            for k in range(dest.shards)
        ]
        self.wake = _Wake(self.workers)
        self.held: set[int] = set()
        # Processes start their search at different shards, so two starting together rarely collide.
        self.offset = random.randrange(dest.shards)

    @property
    def delivered(self) -> int:
        return sum(w.delivered for w in self.workers)

    def active(self, shard: int) -> Callable[[], bool]:
        return lambda: shard in self.held

    def set_held(self, held: set[int]) -> None:
        changed = held ^ self.held
        self.held = held
        self.pacing.set_share(len(held), self.shards)
        for k in changed:  # a gained shard starts at once; a lost one drains and lets go at once
            self.workers[k].wake.set()


class Router:
    """Runs every destination's shard workers and keeps this process's share of the shard locks."""

    check_interval_s = 1.0

    def __init__(
        self,
        dsn: str,
        pool: AsyncConnectionPool,
        destinations: list[Destination],
        connectors: dict[str, Connector],
        guard: AddressGuard,
        *,
        poll_interval_s: float = 0.2,
    ):
        self.dsn = dsn
        self.destinations: dict[str, DestinationShards] = {
            d.name: DestinationShards(pool, d, connectors[d.name], guard, poll_interval_s=poll_interval_s)
            for d in destinations
        }
        self._conn: psycopg.AsyncConnection | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Deliver until ``stopping``; then let every worker finish its jobs in flight, and only then release
        the locks (by closing their session), so the next holder starts after our last write."""
        tasks = [
            asyncio.create_task(w.run(ds.active(w.shard), stopping), name=f"router:{name}#{w.shard}")
            for name, ds in self.destinations.items()
            for w in ds.workers
        ]
        try:
            while not stopping.is_set():
                await self.check()
                try:
                    await asyncio.wait_for(stopping.wait(), timeout=self.check_interval_s)
                except TimeoutError:
                    pass
            if tasks:
                await asyncio.wait(tasks)
        finally:
            for t in tasks:
                t.cancel()
            for ds in self.destinations.values():
                ds.set_held(set())
            await self._close()

    async def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None

    async def check(self) -> None:
        """One pass: (re)connect, then per destination take or give back shards toward a fair share."""
        try:
            if self._conn is None or self._conn.closed:
                for ds in self.destinations.values():
                    ds.set_held(set())
                self._conn = await connect(self.dsn)
                for name in self.destinations:
                    await self._conn.execute(q("router_member_lock"), {"destination": name})
            for ds in self.destinations.values():
                await self._balance(ds)
        except (psycopg.Error, OSError) as e:
            if any(ds.held for ds in self.destinations.values()):
                log.warning("router: lost the database connection holding the shard locks: %s", e)
            for ds in self.destinations.values():
                ds.set_held(set())
            await self._close()

    async def _balance(self, ds: DestinationShards) -> None:
        assert self._conn is not None
        cur = await self._conn.execute(q("router_members"), {"destination": ds.name})
        row = await cur.fetchone()
        members = max(1, int(row[0]) if row else 1)
        fair = math.ceil(ds.shards / members)
        held = set(ds.held)
        # Give back what is over our share, highest shards first, each once its worker has drained.
        for k in sorted(held, reverse=True)[: max(0, len(held) - fair)]:
            held.discard(k)
            ds.set_held(held)
            async with ds.workers[k].busy:
                await self._conn.execute(q("router_shard_unlock"), {"destination": ds.name, "shard": k})
            log.info(
                "router[%s]: released shard %d of %d (%d processes share it)", ds.name, k, ds.shards, members
            )
        for i in range(ds.shards):
            if len(held) >= fair:
                break
            k = (ds.offset + i) % ds.shards
            if k in held:
                continue
            cur = await self._conn.execute(q("router_shard_lock"), {"destination": ds.name, "shard": k})
            got = await cur.fetchone()
            if got and got[0]:
                held.add(k)
                log.info("router[%s]: delivering shard %d of %d", ds.name, k, ds.shards)
        ds.set_held(held)
