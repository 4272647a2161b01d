"""The dlt side of a warehouse destination: stage a batch as a load package, load it, inspect.

Blocking calls (dlt is synchronous); the loader runs them on this destination's own thread.

Why stage and load are separate steps: a *load package* is dlt's unit of work, kept on local disk
(``work_dir``) until every one of its jobs is in the warehouse. Sluice records the package id with
the delivery jobs it holds *before* loading it, so after a crash the same package, with the same
rows, is finished (dlt skips its completed jobs and redoes the others), never rebuilt from a
different set of jobs. Event tables merge on ``id`` (the message id) on SQL warehouses, so even a
job that dlt redoes after it had committed leaves one row per event. Lakes (plain files) append:
a redone job rewrites the same file name, so it does not duplicate either.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pipeline.warehouse.arrow_tables import FROM_DLT, dlt_hints, to_arrow
from pipeline.warehouse.batch import Batch
from pipeline.warehouse.config import WarehouseSettings
from pipeline.warehouse.destination import dlt_destination, file_format

SCHEMA_NAME = "sluice"
# Tables dlt adds for its own bookkeeping; not part of the event schema.
_DLT_TABLES = ("_dlt_loads", "_dlt_version", "_dlt_pipeline_state")


class _HintNoise(logging.Filter):
    """dlt warns on every load that the JSON hint differs from the Arrow string type it rides in
    (expected: Sluice declares JSON columns that way); Sluice's own line per load says what matters."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "column hints were different" not in record.getMessage()


def _quiet_dlt() -> None:
    logger = logging.getLogger("dlt")
    if not any(isinstance(f, _HintNoise) for f in logger.filters):
        logger.addFilter(_HintNoise())


class WarehouseClient:
    def __init__(self, dest_name: str, settings: WarehouseSettings):
        import dlt

        _quiet_dlt()
        self.name = dest_name
        self.settings = settings
        self.merge = settings.provider != "filesystem"
        self.format = file_format(settings)
        work = settings.work_path(dest_name)
        work.mkdir(parents=True, exist_ok=True)
        self.pipeline = dlt.pipeline(
            pipeline_name="sluice_" + re.sub(r"[^A-Za-z0-9_]", "_", dest_name),
            destination=dlt_destination(settings, dest_name),
            dataset_name=settings.dataset_name(dest_name),
            pipelines_dir=str(work),
        )
        _quiet_dlt()  # dlt (re)configures its logger when a pipeline is made
        self._schema: Any = None

    # -- what the warehouse has -------------------------------------------------------------------
    def sync(self) -> None:
        """Restore schema and state from the warehouse when the local working dir is new (a new
        machine, a wiped volume), so column types are known before the first batch is built."""
        if not self.pipeline.schema_names:
            self.pipeline.sync_destination()

    def known_columns(self) -> dict[str, dict[str, str]]:
        if not self.pipeline.schema_names:
            return {}
        schema = self.pipeline.schemas[self.pipeline.default_schema_name]
        out: dict[str, dict[str, str]] = {}
        for name, table in schema.tables.items():
            if name in _DLT_TABLES:
                continue
            cols = {
                c: FROM_DLT.get(str(spec.get("data_type")), "string")
                for c, spec in table.get("columns", {}).items()
                if spec.get("data_type") and not c.startswith("_dlt_")
            }
            if cols:
                out[name] = cols
        return out

    # -- packages ---------------------------------------------------------------------------------
    def pending(self) -> list[str]:
        """Load packages extracted or normalized but not yet (completely) loaded."""
        p = self.pipeline
        return sorted(set(p.list_extracted_load_packages()) | set(p.list_normalized_load_packages()))

    def loaded(self, load_id: str) -> bool | None:
        """True: the package is fully in the warehouse; False: it completed with failed jobs or was
        aborted; None: dlt has no completed package by that id."""
        if load_id not in self.pipeline.list_completed_load_packages():
            return None
        info = self.pipeline.get_load_package_info(load_id)
        return info.state == "loaded" and not info.jobs.get("failed_jobs")

    def drop_pending(self) -> None:
        """Abort pending packages; dlt also rolls its local schema back to before them."""
        p = self.pipeline
        abort = getattr(p, "abort_packages", None)  # dlt >= 1.30; older: drop_pending_packages
        abort() if abort is not None else p.drop_pending_packages()
        self._schema = None

    def stage(self, batch: Batch) -> str:
        """Write the batch as one normalized load package; returns its load id."""
        import dlt

        p = self.pipeline
        before = set(p.list_normalized_load_packages())
        if p.schema_names:
            self._schema = p.schemas[p.default_schema_name]
        elif self._schema is None:
            self._schema = dlt.Schema(SCHEMA_NAME, normalizers={"names": "direct"})
        resources = []
        for table in batch.tables.values():
            if not table.rows:
                continue
            resources.append(
                dlt.resource(
                    to_arrow(table),
                    name=table.name,
                    write_disposition="merge" if self.merge else "append",
                    primary_key=list(table.primary_key) if self.merge else None,
                    columns=dlt_hints(table),
                    max_table_nesting=0,
                )
            )
        p.extract(resources, schema=self._schema, loader_file_format=self.format)
        p.normalize()
        self._schema = p.schemas[p.default_schema_name]
        new = sorted(set(p.list_normalized_load_packages()) - before)
        if len(new) != 1:
            raise RuntimeError(f"expected one new load package, dlt made {new}")
        return new[0]

    def load(self) -> Any:
        """Load every pending package; raises dlt's PipelineStepFailed on failure."""
        return self.pipeline.load(raise_on_failed_jobs=True)
