"""What differs between warehouses: name rules, reserved words, JSON support, limits.

One :class:`Provider` per warehouse type. The names are RudderStack's warehouse type names (``rs``,
``bq``, ``postgres``...), so dbt models and configs written for its layout carry over; Sluice's own
loader names (``redshift``, ``bigquery``, ``duckdb``, ``filesystem``) map onto them in
:func:`provider_for`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sdk.warehouse import keywords
from sdk.warehouse.errors import UnknownProviderError

# Tables the schema itself creates: an event named like one of them gets a leading underscore.
RESERVED_TABLES = frozenset(
    {"tracks", "identifies", "users", "pages", "screens", "groups", "aliases", "rudder_discards"}
)


@dataclass(frozen=True)
class Provider:
    name: str
    # Key of the per-event options object: ``integrations.<KEY>.options``.
    key: str
    keywords: frozenset[str] = keywords.NONE
    # Longest table or column name; None: no limit (object-store lakes).
    max_name: int | None = 127
    upper_case: bool = False
    # Column type for ``jsonPaths`` columns; None: this warehouse flattens them like anything else.
    json_type: str | None = None
    rudder_event_type: str = "string"
    violation_errors_type: str = "string"
    # Object-store lake: no column limit per event, no discards table.
    lake: bool = False
    users_table: bool = True
    # Column-only (no value) timestamps the loader fills: when the row was loaded.
    load_columns: tuple[str, ...] = ("uuid_ts",)
    aliases: tuple[str, ...] = field(default=())


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "postgres",
            "POSTGRES",
            keywords.POSTGRES,
            max_name=63,
            json_type="json",
            rudder_event_type="json",
            violation_errors_type="json",
        ),
        Provider(
            "rs",
            "RS",
            keywords.REDSHIFT,
            json_type="json",
            rudder_event_type="text",
            aliases=("redshift",),
        ),
        Provider(
            "bq",
            "BQ",
            keywords.BIGQUERY,
            json_type="string",
            load_columns=("uuid_ts", "loaded_at"),
            aliases=("bigquery",),
        ),
        Provider(
            "snowflake",
            "SNOWFLAKE",
            keywords.SNOWFLAKE,
            upper_case=True,
            json_type="json",
            rudder_event_type="json",
            violation_errors_type="json",
        ),
        Provider(
            "snowpipe_streaming",
            "SNOWPIPE_STREAMING",
            keywords.SNOWFLAKE,
            upper_case=True,
            json_type="json",
            rudder_event_type="json",
            violation_errors_type="json",
            users_table=False,
        ),
        Provider("clickhouse", "CLICKHOUSE", keywords.NONE),
        Provider("mssql", "MSSQL", keywords.SQLSERVER, rudder_event_type="json"),
        Provider("azure_synapse", "AZURE_SYNAPSE", keywords.SQLSERVER, rudder_event_type="json"),
        Provider("deltalake", "DELTALAKE", keywords.DATABRICKS, aliases=("databricks",)),
        Provider("s3_datalake", "S3_DATALAKE", keywords.ATHENA, max_name=None, lake=True),
        Provider("gcs_datalake", "GCS_DATALAKE", keywords.BIGQUERY, max_name=None, lake=True),
        Provider("azure_datalake", "AZURE_DATALAKE", keywords.SQLSERVER, max_name=None, lake=True),
        # DuckDB's parser descends from PostgreSQL's, and so do its reserved words; its names have
        # no practical length limit, and it has a native JSON type.
        Provider(
            "duckdb",
            "DUCKDB",
            keywords.POSTGRES,
            json_type="json",
            rudder_event_type="json",
            violation_errors_type="json",
        ),
    )
}

_ALIASES = {a: p.name for p in PROVIDERS.values() for a in (p.name, p.key.lower(), *p.aliases)}


def provider_for(name: str) -> Provider:
    """The provider called ``name`` (its warehouse type, key or alias, any case)."""
    key = str(name or "").strip().lower()
    if key in _ALIASES:
        return PROVIDERS[_ALIASES[key]]
    raise UnknownProviderError(
        f"unknown warehouse provider {name!r}; use one of {', '.join(sorted(PROVIDERS))}"
    )
