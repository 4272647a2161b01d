"""Settings → a dlt destination, and the check that dlt can resolve it before anything starts.

dlt does the warehouse-specific work (DDL, type mapping, COPY/stage uploads, schema evolution);
this module only chooses the destination factory, the load file format and the credentials. The
check resolves dlt's configuration (credentials from the config or dlt's environment variables)
without opening a connection, so a missing password fails ``sluice up`` instead of the first load.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import ConfigError
from pipeline.warehouse.config import WarehouseSettings

# Load file formats Sluice hands dlt: Parquet where the engine ingests it natively (fast, typed),
# CSV (COPY) for Postgres, dlt's own preference elsewhere.
_FILE_FORMAT = {"duckdb": "parquet", "postgres": "csv", "bigquery": "parquet", "snowflake": "parquet"}


def dlt_destination(settings: WarehouseSettings, dest_name: str) -> Any:
    """The dlt destination object for these settings (no connection is made)."""
    import dlt

    kwargs: dict[str, Any] = dict(settings.dlt_options)
    if settings.credentials is not None:
        kwargs["credentials"] = settings.credentials
    p = settings.provider
    if p == "duckdb":
        if settings.credentials is None:
            kwargs["credentials"] = settings.duckdb_path(dest_name)
        return dlt.destinations.duckdb(**kwargs)
    if p == "filesystem":
        kwargs.setdefault("bucket_url", settings.bucket_url or str(settings.work_path(dest_name) / "lake"))
        return dlt.destinations.filesystem(**kwargs)
    factory = {
        "postgres": dlt.destinations.postgres,
        "snowflake": dlt.destinations.snowflake,
        "bigquery": dlt.destinations.bigquery,
        "redshift": dlt.destinations.redshift,
    }[p]
    return factory(**kwargs)


def file_format(settings: WarehouseSettings) -> str | None:
    if settings.provider == "filesystem":
        return settings.file_format
    return _FILE_FORMAT.get(settings.provider)


def resolve(settings: WarehouseSettings, dest_name: str) -> Any:
    """dlt's resolved client configuration (credentials included); raises ConfigError naming what is
    missing and where dlt looked for it."""
    try:
        dest = dlt_destination(settings, dest_name)
        spec = dest.spec()._bind_dataset_name(dataset_name=settings.dataset_name(dest_name))
        return dest.configuration(spec)
    except Exception as e:  # noqa: BLE001 - dlt raises many configuration exception types
        text = str(e)
        for secret in settings.secrets():
            text = text.replace(secret, "***")
        first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        raise ConfigError(
            f"destination {dest_name!r}: dlt cannot configure the {settings.provider} warehouse: {first}. "
            "Give config.credentials (use ${ENV} for secrets) or export dlt's variables, e.g. "
            f"DESTINATION__{settings.provider.upper()}__CREDENTIALS"
        ) from None
