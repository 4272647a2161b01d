"""``sluice warehouse status``: per warehouse destination, last load, totals, lag, dead letters."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click
import psycopg

from pipeline.config import ConfigError, load_config
from pipeline.queue.db import migrate, redact_dsn
from pipeline.warehouse.config import is_warehouse
from pipeline.warehouse.status import format_status, warehouse_status
from sdk.cli.warehouse import warehouse_group


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def register(main: click.Group) -> None:
    group = warehouse_group(main)

    @group.command("status")
    @click.option("--config", "config_path", default="sluice.yaml", show_default=True, help="pipeline file")
    @click.option("--database-url", default=None, help="overrides $DATABASE_URL and sluice.yaml")
    @click.option("--destination", "only", multiple=True, help="only this destination (repeatable)")
    @click.option("--json", "as_json", is_flag=True, help="one JSON object per destination")
    def status_cmd(config_path: str, database_url: str | None, only: tuple[str, ...], as_json: bool) -> None:
        """Last load, rows, tables and columns added, discards and lag of each warehouse."""
        from pipeline.cli import resolve_dsn

        try:
            config = (
                load_config(config_path)
                if Path(config_path).exists() or config_path != "sluice.yaml"
                else None
            )
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
        names = list(only) or ([d.name for d in config.destinations if is_warehouse(d)] if config else [])
        if not names:
            raise click.ClickException(
                "no warehouse destinations: give --config with `integration: warehouse` destinations, "
                "or --destination NAME"
            )
        dsn = resolve_dsn(config, database_url)
        try:
            migrate(dsn)
            items = warehouse_status(dsn, names)
        except psycopg.OperationalError as e:
            raise click.ClickException(
                f"cannot reach the database at {redact_dsn(dsn)}: {str(e).strip().splitlines()[0]}"
            ) from None
        if as_json:
            for it in items:
                click.echo(json.dumps(_jsonable(it)))
            return
        click.echo(format_status(items))
