"""``sluice openapi extract``: keep only the vendor operations a connector uses."""

from __future__ import annotations

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
