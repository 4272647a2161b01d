"""``sluice drift runtime [NAME]``: the vendor signals the router recorded (see pipeline/router/telemetry.py).

Registered onto the ``drift`` group that ``sdk.cli.drift`` defines; it lives on the pipeline side
because it reads the pipeline's database, which the SDK never imports.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click


def list_signals(dsn: str, name: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    import psycopg
    from psycopg.rows import dict_row

    from pipeline.queue.db import migrate, q

    migrate(dsn)
    with psycopg.connect(dsn, row_factory=dict_row) as conn:
        return conn.execute(q("vendor_signals_list"), {"name": name, "limit": limit}).fetchall()


def register(main: click.Group) -> None:
    drift = main.commands.get("drift")
    if not isinstance(drift, click.Group):
        return

    @drift.command("runtime")
    @click.argument("name", required=False)
    @click.option("--database-url", default=None, help="the pipeline's database (default: $DATABASE_URL)")
    @click.option("--limit", default=200, show_default=True, type=int)
    @click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
    def runtime_cmd(name: str | None, database_url: str | None, limit: int, as_json: bool) -> None:
        """Vendor signals seen in production that NAME (a connector or destination) was not certified against.

        Deprecation/Sunset/Warning headers, statuses and response shapes absent from the cassettes: first
        seen, last seen, count and one example with secrets redacted.
        """
        import psycopg

        from pipeline.queue.db import redact_dsn

        dsn = database_url or os.environ.get("DATABASE_URL")
        if not dsn:
            raise click.ClickException(
                "no database: pass --database-url or set DATABASE_URL to the pipeline's"
            )
        try:
            rows = list_signals(dsn, name, limit)
        except psycopg.OperationalError as e:
            raise click.ClickException(
                f"cannot reach the database at {redact_dsn(dsn)}: {str(e).strip().splitlines()[0]}"
            ) from None
        if as_json:
            for r in rows:
                click.echo(json.dumps(r, default=str))
            return
        if not rows:
            click.echo("no vendor signals recorded" + (f" for {name}" if name else ""))
            return
        for r in rows:
            click.echo(
                f"{r['integration']}/{r['destination']}  {r['kind']:<11} x{r['count']:<6} "
                f"first {r['first_seen']:%Y-%m-%d %H:%M:%S}  last {r['last_seen']:%Y-%m-%d %H:%M:%S}\n"
                f"    {r['detail']}\n"
                f"    example: {json.dumps(r['example'])[:300]}"
            )
