"""Where a warehouse destination's heavy work runs: building rows, staging and loading with dlt.

Why a separate process by default: the row model, Arrow conversion and dlt are CPU-bound Python.
In the workers process they would share the interpreter lock with the processor and the HTTP
router, so a big load would slow every other destination. Each warehouse destination therefore gets
its own child process (spawned, long-lived, one at a time per destination) holding its dlt
pipeline; the loader in the workers process only sends it job batches and bookkeeping calls. A
``kill -9`` of ``sluice up`` kills the children with it (same process group); a child that dies alone
is replaced on the next call, and the open load it left is recovered like after any crash.

``ThreadRunner`` runs the same backend on a thread of the calling process (tests use it to inject
crashes between steps).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from pipeline.warehouse.batch import BatchBuilder, Job
from pipeline.warehouse.config import WarehouseSettings
from pipeline.warehouse.dlt_client import WarehouseClient


@dataclass
class Prepared:
    """A batch built and staged as one load package (the batch itself stays with the backend)."""

    load_id: str
    job_ids: list[int]
    rejected: dict[int, str]
    events: int
    rows: int
    tables: int
    discards: int
    tables_added: list[str] = field(default_factory=list)
    columns_added: list[str] = field(default_factory=list)


class LoadError(Exception):
    """A backend failure carried across the process boundary as plain data (dlt's exceptions do not
    all survive pickling): what happened, and whether retrying can help."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent

    def __reduce__(self) -> tuple[Any, ...]:
        return (LoadError, (self.message, self.permanent))


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every exception it wraps (causes, contexts, dlt's ``exception``)."""
    out: list[BaseException] = []
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or any(e is o for o in out):
            continue
        out.append(e)
        stack.extend([e.__cause__, e.__context__, getattr(e, "exception", None)])
    return out


def is_permanent(exc: BaseException) -> bool:
    """True when dlt says the warehouse rejected a load job for good (retrying cannot help)."""
    if isinstance(exc, LoadError):
        return exc.permanent
    from dlt.load.exceptions import LoadClientJobFailed, LoadClientJobTerminalRetry

    return any(isinstance(e, (LoadClientJobFailed, LoadClientJobTerminalRetry)) for e in _chain(exc))


def describe(exc: BaseException) -> str:
    """One line saying what went wrong: the warehouse's own message when dlt carries one."""
    if isinstance(exc, LoadError):
        return exc.message
    for e in _chain(exc):
        client = getattr(e, "client_exception", None)
        if client is not None:
            lines = [ln.strip() for ln in str(client).strip().splitlines() if ln.strip()]
            return f"{type(client).__name__}: {lines[0] if lines else client}"
    inner = getattr(exc, "exception", None) or exc.__cause__ or exc
    return " ".join(f"{type(inner).__name__}: {inner}".split())


class Backend:
    """The warehouse work of one destination, in whichever process it runs."""

    def __init__(self, dest_name: str, settings: WarehouseSettings):
        self.client = WarehouseClient(dest_name, settings)
        self.builder = BatchBuilder(settings.row_provider(), settings.row_config())

    def sync(self) -> None:
        self.client.sync()

    def pending(self) -> list[str]:
        return self.client.pending()

    def loaded(self, load_id: str) -> bool | None:
        return self.client.loaded(load_id)

    def drop_pending(self) -> None:
        self.client.drop_pending()

    def prepare(self, jobs: list[tuple[int, dict[str, Any], dt.datetime | None]]) -> Prepared:
        batch = self.builder.build([Job(*j) for j in jobs], self.client.known_columns())
        load_id = self.client.stage(batch) if batch.rows else ""
        return Prepared(
            load_id=load_id,
            job_ids=batch.job_ids,
            rejected=batch.rejected,
            events=batch.events,
            rows=batch.rows,
            tables=len(batch.tables),
            discards=batch.discards,
            tables_added=batch.tables_added,
            columns_added=batch.columns_added,
        )

    def load(self) -> None:
        self.client.load()


class ThreadRunner:
    """Runs the backend on one thread of this process."""

    def __init__(self, dest_name: str, settings: WarehouseSettings):
        self.dest_name = dest_name
        self.settings = settings
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"warehouse-{dest_name}")
        self.backend: Backend | None = None

    def _run(self, method: str, args: tuple[Any, ...]) -> Any:
        if self.backend is None:
            self.backend = Backend(self.dest_name, self.settings)
        return getattr(self.backend, method)(*args)

    async def call(self, method: str, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._run, method, args)

    def close(self, wait: bool = False) -> None:
        self.executor.shutdown(wait=wait, cancel_futures=True)


# -- the child process side -------------------------------------------------------------------------
_CHILD: Backend | None = None


def _child_init(dest_name: str, settings_json: str) -> None:
    global _CHILD
    # Ctrl-C and SIGTERM reach the whole process group; the parent drains and then closes this
    # process, so a load in flight is finished rather than cut off.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _CHILD = Backend(dest_name, WarehouseSettings.model_validate_json(settings_json))


def _child_call(method: str, args: tuple[Any, ...]) -> Any:
    assert _CHILD is not None
    try:
        return getattr(_CHILD, method)(*args)
    except Exception as e:  # noqa: BLE001 - converted to plain data for the parent
        raise LoadError(describe(e), is_permanent(e)) from None


class ProcessRunner:
    """Runs the backend in a long-lived child process of its own (see the module docstring)."""

    def __init__(self, dest_name: str, settings: WarehouseSettings):
        self.dest_name = dest_name
        self.settings_json = settings.model_dump_json()
        self.pool: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_init,
                initargs=(self.dest_name, self.settings_json),
            )
        return self.pool

    async def call(self, method: str, *args: Any) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool(), _child_call, method, args)
        except BrokenProcessPool:
            self.close()  # the next call starts a new child; the caller retries the step
            raise LoadError("the warehouse worker process died; it is restarted") from None

    def close(self, wait: bool = False) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=wait, cancel_futures=True)
        self.pool = None
