"""``sluice openapi extract|diff``: vendor OpenAPI documents, reduced and compared."""

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
    @click.argument("old_file")
    @click.argument("new_file")
    @click.option(
        "--operation", "operations", multiple=True, required=True, help="'METHOD /path' (repeatable)"
    )
    @click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")
    def diff_cmd(old_file: str, new_file: str, operations: tuple[str, ...], as_json: bool) -> None:
        """Every request and response change of OPERATIONs from OLD_FILE to NEW_FILE, with severities.

        Judges as if a connector sent every field the old description declares; to judge only what a
        connector uses, see `sluice drift spec`. Exits 1 when any change is breaking.
        """
        from sdk.drift.compare import compare_descriptions
        from sdk.drift.document import Library, load_description
        from sdk.drift.footprint import whole_operations_footprint

        try:
            lib = Library()
            old, new = load_description(old_file, lib), load_description(new_file, lib)
            report = compare_descriptions(whole_operations_footprint(old, list(operations)), old, new)
        except SluiceError as e:
            raise click.ClickException(e.message) from e
        click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.render(show_all=True))
        if report.breaking:
            raise SystemExit(1)
