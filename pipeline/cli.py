"""``sluice up`` and ``sluice dlq list|show|replay``."""

from __future__ import annotations

import asyncio
import atexit
import datetime as dt
import errno
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
import psycopg

from pipeline.config import ConfigError, SluiceConfig, load_config
from pipeline.queue.db import migrate, redact_dsn

log = logging.getLogger("sluice")

# Where `sluice up` keeps its local Postgres when no DATABASE_URL is set (relative to the working folder).
LOCAL_DIR = ".sluice"


def resolve_dsn(
    config: SluiceConfig | None, database_url: str | None = None, *, start_local: bool = True
) -> str:
    """--database-url, else $DATABASE_URL, else sluice.yaml's database_url, else a local Postgres."""
    dsn = database_url or os.environ.get("DATABASE_URL") or (config.database_url if config else None)
    if dsn:
        return dsn
    if not start_local:
        raise click.ClickException("no database: set DATABASE_URL or database_url in sluice.yaml")
    try:
        from pipeline.postgres import EmbeddedPostgresError, start_local_postgres
    except ImportError as e:
        raise click.ClickException(
            f"no DATABASE_URL and the embedded Postgres is unavailable ({e}); set DATABASE_URL=postgresql://..."
        ) from None
    click.echo("sluice: no DATABASE_URL set: using a local Postgres in .sluice/ ...", err=True)
    try:
        local = start_local_postgres(Path(LOCAL_DIR))
    except EmbeddedPostgresError as e:
        raise click.ClickException(str(e)) from None
    if local.started:
        click.echo(
            f"sluice: started a local Postgres (pid {local.pid}, data in {local.data_dir}); it keeps running "
            "after sluice exits, so the next start is quick: `sluice down` stops it",
            err=True,
        )
    else:
        click.echo(
            f"sluice: reusing the local Postgres already running (pid {local.pid}, "
            f"data in {local.data_dir}); `sluice down` stops it",
            err=True,
        )
    return local.dsn


def _listen_socket(host: str, port: int) -> socket.socket:
    """Bind the gateway's socket before anything else starts, so a taken port is one clear line."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise click.ClickException(f"cannot listen on {host}:{port}: {e.strerror}; check --host") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} on {host} is already in use (another sluice up?); stop that process or "
                f"pick another port with --port {port + 1 if port else 8081}"
            ) from None
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {e.strerror}; pick another --port"
        ) from None
    sock.set_inheritable(False)
    return sock


def _run(coro: Any) -> Any:
    """asyncio.run, on uvloop when it is installed (a faster event loop; optional)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def _share_metrics() -> None:
    """Let gateway and workers processes publish metrics through one directory (prometheus_client's
    multiprocess mode); it must be set before prometheus_client is first imported."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_client" in sys.modules:
        return
    path = tempfile.mkdtemp(prefix="sluice-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    atexit.register(shutil.rmtree, path, True)


def _load(config_path: str) -> SluiceConfig:
    try:
        return load_config(config_path)
    except ConfigError as e:
        raise click.ClickException(str(e)) from None


def _config_if_readable(path: str) -> SluiceConfig | None:
    """The pipeline config, to know which values are secrets; None if it cannot be read here."""
    try:
        return load_config(path)
    except ConfigError:
        return None


def _parse_since(value: str | None) -> dt.datetime | None:
    """An ISO time, or a relative age such as 30m, 2h, 7d."""
    if not value:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[:-1].isdigit() and value[-1] in units:
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=int(value[:-1]) * units[value[-1]])
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use an ISO time (2024-05-01T12:00:00Z) or an age like 30m, 2h, 7d"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}


def register(main: click.Group) -> None:
    @main.command("up")
    @click.option("--config", "config_path", default="sluice.yaml", show_default=True, help="pipeline file")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8080, show_default=True, type=int)
    @click.option("--database-url", default=None, help="overrides $DATABASE_URL and sluice.yaml")
    @click.option(
        "--allow-uncertified", is_flag=True, help="DEVELOPMENT ONLY: run connectors without certification"
    )
    @click.option(
        "--log-level",
        default="info",
        show_default=True,
        type=click.Choice(["debug", "info", "warning", "error"]),
    )
    @click.option(
        "--single-process",
        is_flag=True,
        help="run processor and router in the gateway's process (default: a second, supervised process)",
    )
    @click.option("--role", type=click.Choice(["all", "workers"]), default="all", hidden=True)
    def up(
        config_path: str,
        host: str,
        port: int,
        database_url: str | None,
        allow_uncertified: bool,
        log_level: str,
        single_process: bool,
        role: str,
    ) -> None:
        """Start gateway, processor and router; Ctrl-C / SIGTERM drains and stops."""
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("httpx").setLevel(logging.WARNING)
        if role == "all" and not single_process:
            _share_metrics()
        from pipeline.app import Pipeline, WorkerSupervisor, load_connectors, serve_workers

        config = _load(config_path)
        if allow_uncertified:
            log.warning(
                "!!! --allow-uncertified: connectors run WITHOUT certification; never do this in production"
            )
        try:
            load_connectors(config, allow_uncertified=allow_uncertified)
        except ConfigError as e:
            raise click.ClickException(f"{config_path}: {e}") from None
        sock = _listen_socket(host, port) if role == "all" else None
        dsn = resolve_dsn(config, database_url)
        if role == "workers":
            try:
                _run(serve_workers(Pipeline(config, dsn, allow_uncertified=allow_uncertified, http=False)))
            except psycopg.OperationalError as e:
                raise click.ClickException(f"workers: cannot reach the database: {e}") from None
            return
        if single_process:
            pipeline = Pipeline(config, dsn, allow_uncertified=allow_uncertified)
        else:
            argv = [
                "up",
                "--role",
                "workers",
                "--config",
                str(Path(config_path).resolve()),
                "--log-level",
                log_level,
            ]
            if allow_uncertified:
                argv.append("--allow-uncertified")
            # The DSN travels in the environment, not argv, so a password never shows in `ps`.
            env = dict(os.environ, DATABASE_URL=dsn)
            supervisor = WorkerSupervisor(argv, env)
            pipeline = Pipeline(
                config, dsn, allow_uncertified=allow_uncertified, run_workers=False, supervisor=supervisor
            )
        try:
            _run(_up(pipeline, host, port, sock))
        except psycopg.OperationalError as e:
            raise click.ClickException(
                f"cannot reach the database at {redact_dsn(dsn)}: {str(e).strip().splitlines()[0]}; "
                "check DATABASE_URL and that Postgres is running"
            ) from None

    async def _up(pipeline: Any, host: str, port: int, sock: socket.socket | None) -> None:
        from pipeline.app import serve

        click.echo(f"sluice: gateway on http://{host}:{port} (health: /health)", err=True)
        await serve(pipeline, host, port, sockets=[sock] if sock is not None else None)
        click.echo("sluice: stopped cleanly", err=True)

    @main.command("down")
    @click.option(
        "--data-dir", default=LOCAL_DIR, show_default=True, help="where `sluice up` keeps the local Postgres"
    )
    def down(data_dir: str) -> None:
        """Stop the local Postgres that `sluice up` started (it keeps running after sluice exits).

        Only the local one in .sluice/: a server named by DATABASE_URL is never touched.
        """
        from pipeline.postgres import EmbeddedPostgresError, local_postgres_status, stop_local_postgres

        status = local_postgres_status(Path(data_dir))
        try:
            stopped = stop_local_postgres(Path(data_dir))
        except EmbeddedPostgresError as e:
            raise click.ClickException(str(e)) from None
        if stopped:
            click.echo(f"sluice: stopped the local Postgres (data kept in {status['data_dir']})")
        else:
            click.echo(f"sluice: no local Postgres is running for {status['data_dir']}")

    @main.group("dlq")
    def dlq() -> None:
        """Inspect and replay dead letters (events that could not be delivered)."""

    common = [
        click.option("--config", "config_path", default=None, help="sluice.yaml (for database_url)"),
        click.option("--database-url", default=None, help="overrides $DATABASE_URL"),
    ]

    def with_db(f: Any) -> Any:
        for opt in reversed(common):
            f = opt(f)
        return f

    def _dsn(config_path: str | None, database_url: str | None) -> str:
        config = (
            _load(config_path)
            if config_path
            else (
                _load("sluice.yaml")
                if Path("sluice.yaml").exists() and not (database_url or os.environ.get("DATABASE_URL"))
                else None
            )
        )
        dsn = resolve_dsn(config, database_url)
        try:
            migrate(dsn)
        except psycopg.OperationalError as e:
            raise click.ClickException(
                f"cannot reach the database at {redact_dsn(dsn)}: {str(e).strip().splitlines()[0]}"
            ) from None
        return dsn

    @dlq.command("list")
    @with_db
    @click.option("--destination", default=None)
    @click.option("--since", default=None, help="ISO time or age (30m, 2h, 7d)")
    @click.option("--reason", default=None, help="substring of the reason")
    @click.option("--all", "include_replayed", is_flag=True, help="include already replayed letters")
    @click.option("--limit", default=100, show_default=True, type=int)
    @click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
    def dlq_list(
        config_path: str | None,
        database_url: str | None,
        destination: str | None,
        since: str | None,
        reason: str | None,
        include_replayed: bool,
        limit: int,
        as_json: bool,
    ) -> None:
        """List dead letters, oldest first."""
        from pipeline.dlq.store import list_dead_letters

        rows = list_dead_letters(
            _dsn(config_path, database_url),
            destination=destination,
            since=_parse_since(since),
            reason=reason,
            include_replayed=include_replayed,
            limit=limit,
        )
        if as_json:
            for r in rows:
                click.echo(json.dumps(_jsonable(r)))
            return
        if not rows:
            click.echo("no dead letters match")
            return
        for r in rows:
            replayed = f" replayed {r['replayed_at']:%Y-%m-%d %H:%M:%S}" if r["replayed_at"] else ""
            click.echo(
                f"{r['id']:>8}  {r['created_at']:%Y-%m-%d %H:%M:%S}  {r['destination']:<20} {r['stage']:<9} "
                f"user={r['user_key']} status={r['last_status']} attempts={r['attempts']}{replayed}\n"
                f"          {r['reason'][:200]}"
            )

    @dlq.command("show")
    @with_db
    @click.argument("dl_id", type=int)
    def dlq_show(config_path: str | None, database_url: str | None, dl_id: int) -> None:
        """Show one dead letter in full: event, last request, last response, reason."""
        from pipeline.dlq.store import show_dead_letter

        dsn = _dsn(config_path, database_url)
        row = show_dead_letter(dsn, dl_id, _config_if_readable(config_path or "sluice.yaml"))
        if row is None:
            raise click.ClickException(f"no dead letter with id {dl_id}; see `sluice dlq list`")
        click.echo(json.dumps(_jsonable(row), indent=2))

    @dlq.command("replay")
    @with_db
    @click.option("--id", "ids", multiple=True, type=int, help="dead letter id (repeatable)")
    @click.option("--destination", default=None)
    @click.option("--since", default=None, help="ISO time or age (30m, 2h, 7d)")
    @click.option("--reason", default=None, help="substring of the reason")
    @click.option("--all", "replay_all", is_flag=True, help="replay every unreplayed letter")
    def dlq_replay(
        config_path: str | None,
        database_url: str | None,
        ids: tuple[int, ...],
        destination: str | None,
        since: str | None,
        reason: str | None,
        replay_all: bool,
    ) -> None:
        """Re-enqueue dead letters as new delivery jobs, in their original order."""
        from pipeline.dlq.store import ReplayRefused, replay

        if not (ids or destination or since or reason or replay_all):
            raise click.UsageError("say what to replay: --id, --destination, --since, --reason, or --all")
        # The config says which destinations are delivered: a replay to any other would never leave the queue.
        path = config_path or "sluice.yaml"
        if not Path(path).exists():
            raise click.ClickException(
                f"{path}: no such file; replay needs the pipeline's config to check that the destinations "
                "still exist: pass --config PATH"
            )
        config = _load(path)
        try:
            pairs = replay(
                _dsn(path, database_url),
                deliverable={d.name for d in config.destinations if d.enabled},
                disabled={d.name for d in config.destinations if not d.enabled},
                ids=list(ids) or None,
                destination=destination,
                since=_parse_since(since),
                reason=reason,
            )
        except ReplayRefused as e:
            raise click.ClickException(str(e)) from None
        click.echo(f"re-enqueued {len(pairs)} dead letter(s)")
        for dl_id, job_id in pairs:
            click.echo(f"  dead letter {dl_id} -> delivery job {job_id}")
        if not pairs:
            sys.exit(0)
