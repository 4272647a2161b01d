"""Local Postgres management for ``sluice up`` (no DATABASE_URL) and for the test suite."""

from pipeline.postgres.embedded import (
    EmbeddedPostgresError,
    LocalPostgres,
    dsn_for,
    ensure_local_postgres,
    local_postgres_status,
    remove_local_postgres,
    start_local_postgres,
    stop_local_postgres,
)

__all__ = [
    "EmbeddedPostgresError",
    "LocalPostgres",
    "dsn_for",
    "ensure_local_postgres",
    "local_postgres_status",
    "remove_local_postgres",
    "start_local_postgres",
    "stop_local_postgres",
]
