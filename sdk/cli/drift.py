"""``sluice footprint`` and ``sluice drift spec|live|ci``: what a connector uses, and what changed under it.

``sluice drift runtime`` (signals recorded by the router) is added to the ``drift`` group by
``pipeline.telemetry_cli``, because it reads the pipeline's database.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sdk.errors import SluiceError


def _footprint(name: str | None, footprint_file: Path | None):  # type: ignore[no-untyped-def]
    from sdk.drift.build import find_footprint
    from sdk.drift.footprint import load_footprint

    if footprint_file is not None:
        return load_footprint(footprint_file)
    if not name:
        raise click.UsageError("name a connector or footprint, or pass --footprint FILE")
    return find_footprint(name)


def _connector_folder(name: str | None) -> Path | None:
    from sdk.errors import UnknownDestinationError
    from sdk.registry import find_folder

    if not name:
        return None
    try:
        return find_folder(name)
    except UnknownDestinationError:
        return None


def _emit(payload: str, out: Path | None) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(payload + "\n")
    else:
        click.echo(payload)


_footprint_option = click.option(
    "--footprint",
    "footprint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a footprint file to use instead of NAME's",
)


def register(main: click.Group) -> None:
    @main.command("footprint")
    @click.argument("name", required=False)
    @_footprint_option
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    def footprint_cmd(name: str | None, footprint_file: Path | None, as_json: bool) -> None:
        """What connector (or footprint) NAME uses at its vendor: operations, fields, responses, auth."""
        from sdk.drift.footprint import dump_footprint, render_footprint

        try:
            fp = _footprint(name, footprint_file)
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        click.echo(dump_footprint(fp, as_json=True) if as_json else render_footprint(fp))

    @main.group("drift")
    def drift_group() -> None:
        """Upstream drift: vendor changes that touch what a connector uses."""

    @drift_group.command("spec")
    @click.argument("name", required=False)
    @_footprint_option
    @click.option("--old", "old", help="old description (file or URL); default: the pinned copy")
    @click.option(
        "--new", "new", help="new description (file or URL); default: where the pin says it is published"
    )
    @click.option(
        "--all", "show_all", is_flag=True, help="also list harmless changes and those outside the footprint"
    )
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write the report here")
    @click.option("--no-payloads", is_flag=True, help="skip re-validating the connector's fixture payloads")
    def spec_cmd(
        name: str | None,
        footprint_file: Path | None,
        old: str | None,
        new: str | None,
        show_all: bool,
        as_json: bool,
        out: Path | None,
        no_payloads: bool,
    ) -> None:
        """Compare two versions of a vendor description inside NAME's footprint; exit 1 on breaking drift."""
        from sdk.drift.spec_check import check_spec

        try:
            fp = _footprint(name, footprint_file)
            folder = None if (no_payloads or footprint_file) else _connector_folder(name)
            result = check_spec(fp, old, new, include_ignored=show_all, connector_folder=folder)
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        report = result.report
        include = ("breaking", "warning", "info", "ignored") if show_all else ("breaking", "warning", "info")
        _emit(json.dumps(report.to_dict(include), indent=2) if as_json else report.render(show_all), out)
        if report.breaking:
            sys.exit(1)

    @drift_group.command("live")
    @click.argument("name")
    @click.option(
        "--base-url", help="send to this base URL (a sandbox or local fake) instead of the vendor's"
    )
    @click.option("--case", "cases", multiple=True, help="only these fixtures (repeatable)")
    @click.option("--timeout", default=15.0, show_default=True, help="seconds per request")
    @click.option("--all", "show_all", is_flag=True, help="also list harmless differences")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="write the report here")
    @click.option("--stamp", is_flag=True, help="when nothing differs, mark the cassettes as confirmed now")
    def live_cmd(
        name: str,
        base_url: str | None,
        cases: tuple[str, ...],
        timeout: float,
        show_all: bool,
        as_json: bool,
        out: Path | None,
        stamp: bool,
    ) -> None:
        """Replay NAME's cassette requests live and diff the answers; exit 1 on breaking drift.

        Credentials come from SLUICE_LIVE_<NAME>_<SETTING> environment variables and are never written.
        """
        from sdk.drift.live import live_drift
        from sdk.registry import find_folder

        try:
            report = live_drift(find_folder(name), base_url, timeout_s=timeout, only=list(cases) or None)
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        _emit(json.dumps(report.to_dict(), indent=2) if as_json else report.render(show_all), out)
        if report.breaking:
            sys.exit(1)
        if stamp:
            import datetime as dt

            from sdk.drift.live import stamp_cassettes

            now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
            try:
                paths = stamp_cassettes(find_folder(name), report, now, base_url or "vendor")
            except SluiceError as e:
                raise click.ClickException(e.message) from e
            click.echo(
                f"stamped {len(paths)} cassette(s) as confirmed {now}; re-certify: sluice certify {name}",
                err=True,
            )

    @drift_group.command("ci")
    @click.option(
        "--out",
        "out_dir",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="folder for the reports (uploaded by the workflow)",
    )
    @click.option(
        "--descriptions",
        type=click.Path(file_okay=False, path_type=Path),
        help="take each new description from DIR/<name>.(json|yaml) instead of fetching it",
    )
    @click.option(
        "--live/--no-live", default=True, help="live drift for connectors whose credentials are set"
    )
    @click.option(
        "--issues", is_flag=True, help="open or update one GitHub issue per drifting connector (gh)"
    )
    @click.option(
        "--confirm-after", default=0.0, help="re-fetch after SECONDS before believing breaking drift"
    )
    def ci_cmd(
        out_dir: Path, descriptions: Path | None, live: bool, issues: bool, confirm_after: float
    ) -> None:
        """The weekly drift job: spec drift for every pinned description, live drift where secrets exist."""
        from sdk.drift.ci import run_ci

        try:
            summary = run_ci(
                out_dir, descriptions=descriptions, live=live, issues=issues, confirm_after_s=confirm_after
            )
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        for row in summary["subjects"]:
            click.echo(
                f"{row['name']:20} {row['status']}" + (f"  issue: {row['issue']}" if row.get("issue") else "")
            )
        click.echo(f"reports in {out_dir}")
        if any(r["status"] == "breaking" for r in summary["subjects"]):
            sys.exit(1)
