"""Connector life-cycle commands: ``sluice new | validate | list | certify | cassettes build``."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from sdk.errors import SluiceError

CONTRACT_TESTS = Path(__file__).resolve().parent.parent.parent / "contract_tests"
# Checks a certification run must have executed (with zero failures) for an integration.
REQUIRED_CHECKS = ("test_spec_lint", "test_cassette_replay", "test_error_path", "test_fuzz")


def _names(name: str | None, all_: bool) -> list[str]:
    from sdk.registry import find_folder, integration_folders

    if all_ or not name:
        return [f.name for f in integration_folders()]
    return [find_folder(name).name]


def run_contract_suite(names: list[str], workers: int = 0, extra: list[str] | None = None) -> dict[str, Any]:
    """Run ``contract_tests`` for ``names`` in-process; returns the plugin's per-check counts report."""
    import pytest

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        args = [
            str(CONTRACT_TESTS),
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "addopts=",
            "--import-mode=importlib",
            "--sluice-only",
            ",".join(names),
            "--sluice-report",
            str(report),
            "--rootdir",
            str(CONTRACT_TESTS.parent),
        ]
        if workers:
            args += ["-n", str(workers)]
        args += extra or []
        code = pytest.main(args)
        data = json.loads(report.read_text()) if report.exists() else {"integrations": {}, "failures": {}}
        data["exitstatus"] = int(code)
        return data


def certify_names(
    names: list[str],
    workers: int = 0,
    validity_days: int = 90,
    against: str | None = None,
    cassette_max_age_days: int = 180,
) -> dict[str, dict[str, Any]]:
    """Run the suite and write certification.json per integration; a failing run records its failures."""
    from sdk.certification import CheckResult, drift_check, write_certification
    from sdk.registry import clear_caches, integrations_dir

    report = run_contract_suite(names, workers)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        counts = report["integrations"].get(name, {})
        checks = [CheckResult(name=k.removeprefix("test_"), **v) for k, v in sorted(counts.items())]
        drift, drift_failures = drift_check(integrations_dir() / name, against)
        if drift is not None:
            checks.append(drift)
        missing = [c for c in REQUIRED_CHECKS if counts.get(c, {}).get("passed", 0) == 0]
        failed = sum(c.failed for c in checks)
        ok = not failed and not missing
        if missing and not failed:
            checks.append(CheckResult(name="missing_checks:" + ",".join(missing), passed=0, failed=1))
        write_certification(
            integrations_dir() / name,
            checks,
            validity_days=validity_days,
            cassette_max_age_days=cassette_max_age_days,
        )
        results[name] = {
            "certified": ok,
            "checks": {c.name: c.model_dump(exclude={"name"}) for c in checks},
            "failures": report.get("failures", {}).get(name, []) + drift_failures,
            "missing": missing,
        }
    clear_caches()
    return results


def register(main: click.Group) -> None:
    @main.command("new")
    @click.argument("name")
    def new_cmd(name: str) -> None:
        """Scaffold integrations/NAME (spec, fixture, README) and cassettes/NAME."""
        from sdk.registry import integrations_dir
        from sdk.scaffold import scaffold

        try:
            files = scaffold(name, integrations_dir())
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        for f in files:
            click.echo(f"created {f}")
        click.echo(
            f"next: edit integrations/{name}/spec.yaml and fixtures/, then `sluice validate {name}`, "
            f"`sluice cassettes build {name}`, `sluice certify {name}`"
        )

    @main.command("validate")
    @click.argument("name", required=False)
    def validate_cmd(name: str | None) -> None:
        """Lint one integration's spec, settings, fixtures and mapper (all when NAME is omitted)."""
        from sdk.registry import integrations_dir
        from sdk.testing.lint import lint_integration

        try:
            names = _names(name, False)
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        bad = 0
        for n in names:
            problems = lint_integration(integrations_dir() / n)
            if problems:
                bad += 1
                click.echo(f"✗ {n}")
                for p in problems:
                    click.echo(f"    - {p}")
            else:
                click.echo(f"✓ {n}: lint passes")
        if bad:
            sys.exit(1)

    @main.command("list")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    @click.option("--stats", is_flag=True, help="spec lines, mapper lines and mapper functions per connector")
    def list_cmd(as_json: bool, stats: bool) -> None:
        """Every integration with its certification status and why."""
        from sdk.certification import status
        from sdk.connector import load_spec
        from sdk.registry import integration_folders

        if stats:
            from sdk.stats import connector_stats, totals

            srows = [connector_stats(f) for f in integration_folders()]
            summary = totals(srows)
            if as_json:
                click.echo(json.dumps({"connectors": srows, "totals": summary}, indent=2))
                return
            click.echo(f"{'name':<22}{'spec lines':>11}{'mapper lines':>14}  mapper functions")
            for r in srows:
                fns = ", ".join(r["mapper_functions"]) or "-"
                extra = f"  (+ {', '.join(r['other_mapping_files'])})" if r["other_mapping_files"] else ""
                click.echo(f"{r['name']:<22}{r['spec_lines']:>11}{r['mapper_lines']:>14}  {fns}{extra}")
            click.echo(
                f"{summary['connectors']} connectors, {summary['without_mapper']} without mapper.py; "
                f"mapper lines {summary['mapper_lines']} in all, longest {summary['longest_mapper']}; "
                f"spec lines {summary['spec_lines']}"
            )
            return

        rows = []
        for folder in integration_folders():
            row: dict[str, Any] = {"name": folder.name}
            try:
                spec = load_spec(folder / "spec.yaml")
                row.update(
                    display_name=spec.display_name,
                    rudder_type=spec.rudder_type,
                    event_types=list(spec.event_types),
                )
            except SluiceError as e:
                row.update(display_name=None, rudder_type=None, event_types=[], spec_error=e.message)
            try:
                row.update(status(folder))
            except SluiceError as e:
                row.update(certified=False, reason=e.message)
            rows.append(row)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Sluice integrations")
        for col in ("name", "display name", "type", "events", "certified", "reason"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["name"],
                r.get("display_name") or "?",
                r.get("rudder_type") or "",
                ",".join(r.get("event_types") or []),
                "[green]yes[/green]" if r["certified"] else "[red]no[/red]",
                r.get("spec_error") or r["reason"],
            )
        Console().print(table)

    @main.command("certify")
    @click.argument("name", required=False)
    @click.option("--all", "all_", is_flag=True, help="certify every integration")
    @click.option("-n", "--workers", default=0, type=int, help="pytest-xdist workers (0: in-process)")
    @click.option("--days", default=90, type=int, help="validity of the certification")
    @click.option(
        "--against",
        default=None,
        help="a newer vendor description (file or URL); fail on breaking drift against it "
        "(default: .sluice/drift/<name>/latest.* when present)",
    )
    @click.option(
        "--cassette-max-age", default=180, type=int, show_default=True, help="days before cassettes expire"
    )
    @click.option("--json", "as_json", is_flag=True, help="print the per-check results as JSON")
    def certify_cmd(
        name: str | None,
        all_: bool,
        workers: int,
        days: int,
        against: str | None,
        cassette_max_age: int,
        as_json: bool,
    ) -> None:
        """Run the contract suite for NAME (or --all) and write integrations/<name>/certification.json."""
        if not name and not all_:
            raise click.UsageError("name an integration or pass --all")
        try:
            names = _names(name, all_)
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        results = certify_names(names, workers, days, against, cassette_max_age)
        if as_json:
            click.echo(json.dumps(results, indent=2))
        for n, r in results.items():
            summary = ", ".join(
                f"{k} {v['passed']}/{v['passed'] + v['failed']}" for k, v in r["checks"].items()
            )
            mark = "✓ certified" if r["certified"] else "✗ NOT certified"
            click.echo(f"{mark} {n}: {summary}")
            for f in r["failures"][:20]:
                click.echo(f"    failed: {f}")
            if r["missing"]:
                click.echo(f"    checks that did not pass at all: {', '.join(r['missing'])}")
        if not all(r["certified"] for r in results.values()):
            sys.exit(1)

    @main.group("cassettes")
    def cassettes_group() -> None:
        """Build vcrpy cassettes from fixtures (offline; provenance says so)."""

    @cassettes_group.command("build")
    @click.argument("name", required=False)
    @click.option("--all", "all_", is_flag=True, help="every integration")
    def cassettes_build(name: str | None, all_: bool) -> None:
        """(Re)write cassettes/NAME/<case>.yaml from the fixtures, secrets redacted."""
        from sdk.connector import Connector
        from sdk.registry import integrations_dir
        from sdk.testing.cases import build_cassettes, load_cases

        if not name and not all_:
            raise click.UsageError("name an integration or pass --all")
        try:
            names = _names(name, all_)
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        failed = False
        for n in names:
            folder = integrations_dir() / n
            try:
                conn = Connector.from_folder(folder)
                errors: list[str] = []
                written = build_cassettes(conn, folder, errors=errors)
            except SluiceError as e:
                failed = True
                click.echo(f"✗ {n}: {e.type}: {e.message}", err=True)
                continue
            skipped = [c.name for c in load_cases(folder) if c.problems]
            click.echo(f"✓ {n}: {len(written)} cassette(s)")
            for err in errors:
                failed = True
                click.echo(f"    fixture rejected by the connector, no cassette: {err}", err=True)
            for s in skipped:
                click.echo(f"    skipped fixture {s}: fix its problems first (see `sluice validate {n}`)")
        if failed:
            sys.exit(1)
