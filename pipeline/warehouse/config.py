"""``integration: warehouse`` destinations: what their ``config`` block may say.

```yaml
destinations:
  - name: analytics
    integration: warehouse
    config:
      provider: duckdb              # postgres | duckdb | snowflake | bigquery | redshift | filesystem
      path: ./warehouse.duckdb      # duckdb only
      sync_every: 30                # seconds: load at least this often while events wait
      max_events: 10000             # ...or as soon as this many wait (also the most per load)
```

Credentials are dlt's: give ``credentials`` (use ``${ENV}`` in sluice.yaml), or leave it out and
export dlt's own variables (``DESTINATION__POSTGRES__CREDENTIALS=postgresql://...``,
``DESTINATION__SNOWFLAKE__CREDENTIALS__PASSWORD=...``). The rest shapes the row model (see
``sdk/warehouse``); new destinations get its modern defaults (digits split off, context traits
copied into ``users``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.config import ConfigError, Destination

INTEGRATION = "warehouse"
PROVIDERS = ("postgres", "duckdb", "snowflake", "bigquery", "redshift", "filesystem")
# The row model's warehouse type for each loader (filesystem: chosen from the bucket's scheme).
ROW_PROVIDER = {
    "postgres": "postgres",
    "duckdb": "duckdb",
    "snowflake": "snowflake",
    "bigquery": "bq",
    "redshift": "rs",
}


def is_warehouse(dest: Destination) -> bool:
    return dest.integration.strip().lower() == INTEGRATION


def warehouse_names(dest: Destination) -> list[str]:
    """The names an event's ``integrations`` object may use for this destination: its sluice.yaml
    name, the warehouse's key (``POSTGRES``, ``BQ``, ``RS``, ``S3_DATALAKE``...), its provider name,
    and ``DATA_WAREHOUSE`` (every warehouse)."""
    from sdk.warehouse import provider_for

    names = [dest.name, "warehouse", "DATA_WAREHOUSE"]
    provider = dest.config.get("provider") if isinstance(dest.config, dict) else None
    if isinstance(provider, str):
        names.append(provider)
        try:
            settings = WarehouseSettings.model_validate(dest.config)
            row = provider_for(settings.row_provider())
            names.extend([row.key, row.name, *row.aliases])
        except (ValidationError, ValueError):
            pass
    return list(dict.fromkeys(names))


class WarehouseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Literal["postgres", "duckdb", "snowflake", "bigquery", "redshift", "filesystem"]
    dataset: str | None = Field(
        default=None, description="schema (dataset) the tables go to; default: the destination name"
    )
    credentials: str | dict[str, Any] | None = Field(
        default=None, description="dlt credentials; default: dlt's DESTINATION__<PROVIDER>__... variables"
    )
    path: str | None = Field(default=None, description="duckdb: the database file")
    bucket_url: str | None = Field(
        default=None, description="filesystem: local folder or s3://, gs://, az://"
    )
    file_format: Literal["parquet", "jsonl", "csv"] = "parquet"
    dlt_options: dict[str, Any] = Field(
        default_factory=dict, description="extra arguments for dlt's destination (location, stage_name...)"
    )
    work_dir: str | None = Field(
        default=None, description="where dlt keeps load packages between a crash and the retry"
    )
    sync_every: float = Field(default=30.0, gt=0, le=86400)
    max_events: int = Field(default=10000, ge=1, le=1_000_000)
    # Row model (sdk/warehouse) settings.
    underscore_divide_numbers: bool = True
    allow_users_context_traits: bool = True
    skip_tracks_table: bool = False
    skip_users_table: bool = False
    store_full_event: bool = False
    json_paths: list[str] = Field(default_factory=list, description="dot paths loaded as one JSON column")

    @field_validator("json_paths", mode="before")
    @classmethod
    def _paths(cls, v: Any) -> Any:
        return [p.strip() for p in v.split(",") if p.strip()] if isinstance(v, str) else v

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", v):
            raise ValueError(f"{v!r} is not a plain schema name; use letters, digits and _ (max 63)")
        return v

    # -- derived ----------------------------------------------------------------------------------
    def row_provider(self) -> str:
        if self.provider != "filesystem":
            return ROW_PROVIDER[self.provider]
        url = self.bucket_url or ""
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme in ("gs", "gcs"):
            return "gcs_datalake"
        if scheme in ("az", "abfs", "abfss", "adl"):
            return "azure_datalake"
        return "s3_datalake"

    def row_config(self) -> dict[str, Any]:
        """The row model's destination settings."""
        return {
            "underscoreDivideNumbers": self.underscore_divide_numbers,
            "allowUsersContextTraits": self.allow_users_context_traits,
            "skipTracksTable": self.skip_tracks_table,
            "skipUsersTable": self.skip_users_table,
            "storeFullEvent": self.store_full_event,
            "jsonPaths": ",".join(self.json_paths),
        }

    def dataset_name(self, dest_name: str) -> str:
        if self.dataset:
            return self.dataset
        name = re.sub(r"[^a-z0-9_]", "_", dest_name.lower()).strip("_") or "sluice"
        return ("_" + name if name[0].isdigit() or name.startswith("pg_") else name)[:63]

    def duckdb_path(self, dest_name: str) -> str:
        return self.path or str(self.work_path(dest_name) / "warehouse.duckdb")

    def work_path(self, dest_name: str) -> Path:
        return Path(self.work_dir) if self.work_dir else Path(".sluice") / "warehouse" / dest_name

    def secrets(self) -> list[str]:
        """Credential values that must never appear in a log line or a dead letter."""
        out: list[str] = []
        creds = self.credentials
        if isinstance(creds, str):
            out.append(creds)
            m = re.match(r"^[a-z0-9+]+://[^:/@]*:([^@]+)@", creds)
            if m:
                out.append(m.group(1))
        elif isinstance(creds, dict):
            out.extend(str(v) for v in creds.values() if isinstance(v, str) and len(v) >= 4)
        return [s for s in out if len(s) >= 4]


def warehouse_settings(dest: Destination, where: str = "") -> WarehouseSettings:
    """Parse and check a warehouse destination's config; ConfigError names the key and the fix."""
    where = where or f"destination {dest.name!r}"
    try:
        settings = WarehouseSettings.model_validate(dest.config)
    except ValidationError as e:
        lines = []
        for err in e.errors()[:10]:
            loc = ".".join(str(p) for p in err["loc"]) or "(config)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key; see the warehouse section of pipeline/README.md"
            elif err["type"] == "missing":
                msg = f"required; one of {', '.join(PROVIDERS)}" if loc == "provider" else "required"
            lines.append(f"  {where}.config.{loc}: {msg}")
        raise ConfigError("invalid warehouse destination:\n" + "\n".join(lines)) from None
    if settings.provider == "duckdb" and settings.credentials is None:
        # DuckDB names a database after its file, and a schema of the same name is ambiguous to it.
        stem = Path(settings.duckdb_path(dest.name)).stem
        if stem == settings.dataset_name(dest.name):
            raise ConfigError(
                f"{where}.config: the DuckDB file {settings.duckdb_path(dest.name)!r} and the dataset "
                f"{stem!r} have the same name, which DuckDB cannot tell apart; rename the file or set "
                "config.dataset"
            )
    return settings
