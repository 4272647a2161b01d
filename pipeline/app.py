"""One process, the whole pipeline: gateway (HTTP), processor, router and queue maintenance.

``Pipeline.start()`` validates every destination (certified connector, config against its schema)
before anything listens, applies migrations, and starts the tasks; ``stop()`` drains: the gateway
commits what it accepted, the processor and each destination worker finish their current round.
A database outage never crashes the process: every task backs off and reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import uvicorn
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette

from pipeline.config import ConfigError, SluiceConfig
from pipeline.config_checks import check_destination, setting_path
from pipeline.gateway.connections import server_config
from pipeline.gateway.http import Gateway
from pipeline.gateway.writer import GroupWriter
from pipeline.processor.health import problems, processor_state
from pipeline.processor.processor import Processor
from pipeline.queue.db import connect, migrate, q, redact_dsn
from pipeline.router.guard import AddressGuard, Resolver
from pipeline.router.shards import DestinationShards, Router
from pipeline.warehouse.config import is_warehouse
from sdk.connector import Connector
from sdk.errors import SluiceError
from sdk.registry import load_certified

log = logging.getLogger("sluice")

LEADER_KEY = "sluice.leader"


def load_connectors(
    config: SluiceConfig, *, allow_uncertified: bool = False, root: Path | None = None
) -> dict[str, Connector]:
    """Load and check every destination up front; a wrong one is an error naming it and the fix."""
    out: dict[str, Connector] = {}
    for i, d in enumerate(config.destinations):
        where = f"destinations[{i}] ({d.name})"
        if is_warehouse(d):  # no connector: loaded in batches by pipeline/warehouse
            from pipeline.warehouse.loader import check_warehouse  # dlt and pyarrow only when used

            check_warehouse(d, where)
            continue
        try:
            connector = load_certified(d.integration, root, allow_uncertified=allow_uncertified)
        except SluiceError as e:
            hint = (
                " (for development only: sluice up --allow-uncertified)"
                if e.type == "certification_error"
                else ""
            )
            raise ConfigError(f"{where}.integration: {e.message}{hint}") from None
        try:
            connector.check_config(d.config)
        except SluiceError as e:
            raise ConfigError(f"{where}.config{setting_path(d.config, e.message)}: {e.message}") from None
        check_destination(connector, d.config, where)
        for warning in connector.config_warnings(d.config):
            log.warning("%s.config: %s", where, warning)  # said once, at start-up
        out[d.name] = connector
    return out


class Leader:
    """A session advisory lock on a dedicated connection: only its holder runs processor and router.

    Checked every second; if the connection dies (Postgres restarted) the lock is gone with it and
    is taken again once the database is back.
    """

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.held = False
        self._conn: psycopg.AsyncConnection | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                if self._conn is None or self._conn.closed:
                    self.held = False
                    self._conn = await connect(self.dsn)
                if not self.held:
                    cur = await self._conn.execute(q("try_leader_lock"), {"key": LEADER_KEY})
                    row = await cur.fetchone()
                    self.held = bool(row and row[0])
                    if self.held:
                        log.info("this process is the pipeline leader (processor and router active)")
                else:
                    await self._conn.execute(q("ping"))
            except (psycopg.Error, OSError) as e:
                if self.held:
                    log.warning("lost the database connection holding the leader lock: %s", e)
                self.held = False
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                self._conn = None
            try:
                await asyncio.wait_for(stopping.wait(), timeout=1.0)
            except TimeoutError:
                pass
        self.held = False
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()


class Pipeline:
    def __init__(
        self,
        config: SluiceConfig,
        dsn: str,
        *,
        allow_uncertified: bool = False,
        integrations_root: Path | None = None,
        run_workers: bool = True,
        supervisor: WorkerSupervisor | None = None,
        http: bool = True,
        resolver: Resolver | None = None,
    ):
        self.config = config
        self.dsn = dsn
        self.allow_uncertified = allow_uncertified
        self.run_workers = run_workers
        self.supervisor = supervisor
        self.resolver = resolver  # name resolution for the SSRF guard (tests substitute their own)
        self.connectors = load_connectors(config, allow_uncertified=allow_uncertified, root=integrations_root)
        # A workers-only process (see WorkerSupervisor) has no HTTP side and so no group writer.
        self.writer_in_process = http
        self.ready = False
        self.stopping = asyncio.Event()
        self.leader = Leader(dsn)
        self.writer = GroupWriter(
            dsn,
            group_commit_ms=config.gateway.group_commit_ms,
            max_backlog=config.gateway.max_backlog,
            on_commit=self._on_commit,
        )
        self.gateway = Gateway(config, self.writer, self._health_state)
        self.gateway.unprocessed = lambda: self.unprocessed
        self.unprocessed = 0
        self.processor_health: dict[str, Any] = {}
        self.pool: AsyncConnectionPool | None = None
        self.processor: Processor | None = None
        self.router: Router | None = None
        self.workers: dict[str, DestinationShards] = {}
        self.warehouses: Any = None  # pipeline.warehouse.loader.WarehouseLoaders when configured
        self._tasks: list[asyncio.Task[Any]] = []

    # -- wiring -----------------------------------------------------------------------------------
    def _on_commit(self) -> None:
        if self.processor is not None:
            self.processor.wake.set()

    def _on_jobs(self, destinations: set[str]) -> None:
        for d in destinations:
            w = self.workers.get(d)
            if w is not None:
                w.wake.set()
        if self.warehouses is not None:
            self.warehouses.wake(destinations)

    def _health_state(self) -> dict[str, Any]:
        if self.supervisor is not None:
            alive = self.supervisor.alive
            state = {"ready": self.ready and alive, "workers": "running" if alive else "starting"}
        else:
            state = {"ready": self.ready, "leader": self.leader.held, "destinations": sorted(self.workers)}
        state["processor"] = dict(self.processor_health)
        state["problems"] = problems(self.processor_health, self.config.processor.max_lag_s)
        return state

    def asgi(self) -> Starlette:
        return Starlette(routes=self.gateway.routes())

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        applied = await asyncio.to_thread(migrate, self.dsn)
        if applied:
            log.info("applied migrations %s to %s", applied, redact_dsn(self.dsn))
        if self.writer_in_process:
            await self.writer.start()
        n = len(self.config.destinations)
        self.pool = AsyncConnectionPool(
            self.dsn,
            min_size=2,
            max_size=4 + 2 * n + sum(d.shards - 1 for d in self.config.destinations),  # + router shards
            open=False,
            timeout=30,
            kwargs={"autocommit": True, "connect_timeout": 5},
            reconnect_timeout=0,
        )
        await self.pool.open(wait=False)
        if self.run_workers:
            self.processor = Processor(self.pool, self.config, self.connectors, on_jobs=self._on_jobs)
            if not self.writer_in_process:
                self.processor.idle_wait_s = 0.05  # the gateway is another process: poll briskly
            guard = AddressGuard(self.config.network.networks(), resolver=self.resolver)
            # The router runs in every workers process: shard locks, not the leader lock, decide
            # which process delivers which users (pipeline/router/shards.py).
            self.router = Router(
                self.dsn,
                self.pool,
                [d for d in self.config.destinations if d.enabled and d.name in self.connectors],
                self.connectors,
                guard,
                poll_interval_s=self.config.router.poll_interval_s,
            )
            self.workers = self.router.destinations
            is_leader = lambda: self.leader.held  # noqa: E731
            self._tasks.append(asyncio.create_task(self.leader.run(self.stopping), name="leader"))
            self._tasks.append(
                asyncio.create_task(self.processor.run(is_leader, self.stopping), name="processor")
            )
            self._tasks.append(asyncio.create_task(self.router.run(self.stopping), name="router"))
            warehouses = [d for d in self.config.destinations if d.enabled and is_warehouse(d)]
            if warehouses:
                from pipeline.warehouse.loader import WarehouseLoaders

                self.warehouses = WarehouseLoaders(self.dsn, self.pool, warehouses)
                self._tasks.append(asyncio.create_task(self.warehouses.run(self.stopping), name="warehouses"))
        self._tasks.append(asyncio.create_task(self._maintenance(), name="maintenance"))
        if self.supervisor is not None:
            self._tasks.append(asyncio.create_task(self.supervisor.run(self.stopping), name="workers"))
        self.ready = True

    async def stop(self) -> None:
        """Drain: commit accepted events, let workers finish their round, close connections."""
        self.ready = False
        if self.writer_in_process:
            await self.writer.stop()
        self.stopping.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=45)
            for t in pending:
                t.cancel()
        if self.pool is not None:
            await self.pool.close()

    async def _maintenance(self) -> None:
        """Keep partitions ahead of the sequences, drop finished ones, and watch the backlog."""
        last_drop = 0.0
        while not self.stopping.is_set():
            try:
                assert self.pool is not None
                async with self.pool.connection(timeout=5) as conn:
                    await conn.execute(q("ensure_gateway_partitions"), {"extra": 0})
                    await conn.execute(q("ensure_delivery_partitions"), {"extra": 0})
                    await conn.execute(q("ensure_dedupe_partitions"))
                    cur = await conn.execute(q("processor_health"))
                    self.processor_health = processor_state(await cur.fetchone())
                    self.unprocessed = self.processor_health.get("backlog", 0)
                    if time.monotonic() - last_drop > 5 and self.leader.held:
                        last_drop = time.monotonic()
                        async with conn.transaction():
                            await conn.execute(q("set_lock_timeout"))
                            await conn.execute(
                                q("drop_finished_partitions"),
                                {"dedupe_window_s": int(self.config.processor.dedupe_window_s)},
                            )
            except Exception as e:  # noqa: BLE001 - maintenance retries on its next tick
                log.debug("maintenance: %s", e)
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=1.0)
            except TimeoutError:
                pass


class WorkerSupervisor:
    """Runs processor and router in a child process, restarting it if it dies.

    Why a second process: the gateway's per-event work (parse, validate, encode) and the
    processor's (parse, map, encode) are both CPU-bound Python; in one process they share one
    core through the GIL. Split, the gateway keeps a core for acknowledging events while the
    workers and Postgres share the other. The child is in the same process group, so a
    ``kill -9`` of the group stops both, and it exits by itself if its parent disappears.
    """

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.argv = argv
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.restarts = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def run(self, stopping: asyncio.Event) -> None:
        import sys

        while not stopping.is_set():
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "import sys; from sdk.cli import main; sys.exit(main())",
                *self.argv,
                env=self.env,
            )
            waiter = asyncio.create_task(self.proc.wait())
            stop = asyncio.create_task(stopping.wait())
            await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.is_set():
                stop.cancel()
                await self._terminate(waiter)
                return
            stop.cancel()
            self.restarts += 1
            log.error("the workers process exited with %s; restarting it", self.proc.returncode)
            try:
                await asyncio.wait_for(stopping.wait(), timeout=min(10.0, 0.5 * self.restarts))
            except TimeoutError:
                pass

    async def _terminate(self, waiter: asyncio.Task[int]) -> None:
        """Ask the workers to drain (SIGTERM), give them time to finish their round, then insist."""
        assert self.proc is not None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout=40)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await waiter


async def serve_workers(pipeline: Pipeline) -> None:
    """The child side: run processor and router until SIGTERM/SIGINT or until the parent is gone."""
    import os

    parent = os.getppid()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await pipeline.start()
    try:
        while not stop.is_set():
            if os.getppid() != parent:
                log.warning("the gateway process is gone; workers stopping")
                break
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                pass
    finally:
        await pipeline.stop()


@contextlib.asynccontextmanager
async def running(pipeline: Pipeline) -> AsyncIterator[Pipeline]:
    await pipeline.start()
    try:
        yield pipeline
    finally:
        await pipeline.stop()


class _Server(uvicorn.Server):
    """uvicorn re-raises a captured SIGTERM after shutting down, which would end the process with
    status 143 before the pipeline drains; here a signal only asks the server to stop, so the
    drain runs and ``sluice up`` exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        loop = asyncio.get_running_loop()
        sigs = (signal.SIGINT, signal.SIGTERM)
        for sig in sigs:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: int) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        log.info("received %s: draining", signal.Signals(sig).name)
        self.should_exit = True


async def serve(
    pipeline: Pipeline, host: str = "127.0.0.1", port: int = 8080, sockets: list[Any] | None = None
) -> None:
    """Run until SIGINT/SIGTERM (uvicorn stops accepting and finishes in-flight requests), then drain."""
    await pipeline.start()
    server = _Server(
        server_config(pipeline.asgi(), pipeline.config.gateway, host, port, timeout_graceful_shutdown=20)
    )
    try:
        await server.serve(sockets=sockets)
    finally:
        await pipeline.stop()


class ThreadedPipeline:
    """The pipeline on a background thread and a free port: for tests and embedding.

    ``with ThreadedPipeline(config, dsn) as p: httpx.post(p.url + "/v1/track", ...)``.
    """

    def __init__(self, config: SluiceConfig, dsn: str, **kwargs: Any):
        self.config = config
        self.dsn = dsn
        self.kwargs = kwargs
        self.url = ""
        self.pipeline: Pipeline | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def __enter__(self) -> ThreadedPipeline:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="sluice-pipeline", daemon=True)
        self._thread.start()
        self._started.wait(60)
        if self._error is not None:
            raise self._error
        if not self.url:
            raise RuntimeError("the pipeline did not start within 60 s")

    def _main(self) -> None:
        asyncio.run(self._amain())

    async def _amain(self) -> None:
        try:
            self.pipeline = Pipeline(self.config, self.dsn, **self.kwargs)
            await self.pipeline.start()
            self._server = uvicorn.Server(
                server_config(self.pipeline.asgi(), self.config.gateway, "127.0.0.1", 0)
            )
            self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
            serve_task = asyncio.create_task(self._server.serve())
            while not self._server.started:
                if serve_task.done():
                    serve_task.result()
                await asyncio.sleep(0.01)
            port = self._server.servers[0].sockets[0].getsockname()[1]
            self.url = f"http://127.0.0.1:{port}"
            self._loop = asyncio.get_running_loop()
            self._started.set()
            await serve_task
        except BaseException as e:  # noqa: BLE001 - reported to the starting thread
            self._error = e
            self._started.set()
        finally:
            if self.pipeline is not None:
                await self.pipeline.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(60)

    def call(self, coro_fn: Any, timeout: float = 30) -> Any:
        """Run ``coro_fn(pipeline)`` on the pipeline's loop and return its result."""
        assert self._loop is not None and self.pipeline is not None
        fut = asyncio.run_coroutine_threadsafe(coro_fn(self.pipeline), self._loop)
        return fut.result(timeout)
