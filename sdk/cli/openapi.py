"""``sluice openapi extract|diff|drift``: vendor OpenAPI documents, reduced and compared."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sdk.errors import SluiceError


def register(main: click.Group) -> None:
    @main.group("openapi")
    def openapi_group() -> None:
        """Work with vendor OpenAPI/Swagger documents."""

    @openapi_group.command("extract")
    @click.argument("vendor_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--operation",
        "operations",
        multiple=True,
        required=True,
        help="'METHOD /path' of an operation to keep (repeatable); Mixpanel-style '#fragment' allowed",
    )
    @click.option(
        "--out",
        "out",
        required=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="where to write the reduced JSON, e.g. integrations/<name>/openapi/<x>.json",
    )
    def extract_cmd(vendor_file: Path, operations: tuple[str, ...], out: Path) -> None:
        """Write a reduced extract of VENDOR_FILE: operations and schemas, no prose, with provenance."""
        from sdk.openapi.extract import extract_file

        try:
            reduced = extract_file(vendor_file, list(operations), out)
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        src = reduced["x-sluice-source"]
        click.echo(
            f"wrote {out}: {len(reduced['paths'])} path(s), "
            f"{sum(len(v) for v in (reduced.get('components') or {}).values())} component(s); "
            f"source {src['file']} version {src['info_version']} sha256 {src['sha256'][:12]}"
        )

    @openapi_group.command("diff")
    @click.argument("old_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.argument("new_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--operation", "operations", multiple=True, required=True, help="'METHOD /path' (repeatable)"
    )
    @click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")
    def diff_cmd(old_file: Path, new_file: Path, operations: tuple[str, ...], as_json: bool) -> None:
        """Show request-contract changes of OPERATIONs from OLD_FILE to NEW_FILE.

        Exits 1 when any change is breaking.
        """
        from dataclasses import asdict

        from sdk.openapi.drift import diff_operation
        from sdk.openapi.extract import load_document

        try:
            old, new = load_document(old_file), load_document(new_file)
            result = {op: diff_operation(old, new, op) for op in operations}
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        if as_json:
            click.echo(json.dumps({op: [asdict(c) for c in cs] for op, cs in result.items()}, indent=2))
        else:
            for op, cs in result.items():
                click.echo(f"{op}: {len(cs)} change(s)")
                for c in cs:
                    click.echo(f"  {'BREAKING ' if c.breaking else ''}{c.kind} {c.path}: {c.detail}")
        if any(c.breaking for cs in result.values() for c in cs):
            raise SystemExit(1)

    @openapi_group.command("drift")
    @click.argument("name")
    @click.argument("vendor_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")
    def drift_cmd(name: str, vendor_file: Path, as_json: bool) -> None:
        """Check integration NAME against a newer VENDOR_FILE; exit 1 if its requests no longer validate."""
        from sdk.openapi.drift import check_connector
        from sdk.registry import find_folder

        try:
            report = check_connector(find_folder(name), vendor_file)
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        if as_json:
            click.echo(json.dumps(report.to_dict(), indent=2))
        else:
            for op, cs in report.changes.items():
                click.echo(f"{op}: {len(cs)} change(s)")
                for c in cs:
                    click.echo(f"  {'BREAKING ' if c.breaking else ''}{c.kind} {c.path}: {c.detail}")
            click.echo(
                f"payloads checked: {report.checked_payloads}; invalid now: {len(report.invalid_payloads)}"
            )
            for p in report.invalid_payloads:
                click.echo(f"  {p['case']} ({p['operation']}): {'; '.join(p['errors'])}")
        if report.affected:
            raise click.ClickException(
                f"{name} is affected by drift in {vendor_file}: update its spec/mapper, "
                f"re-extract the document "
                f"with `sluice openapi extract`, rebuild cassettes and re-certify"
            )
