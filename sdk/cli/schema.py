"""``sluice schema``: export the machine-readable schemas Sluice validates against."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sdk.events import event_json_schema
from sdk.spec.model import DestinationSpec

SCHEMAS = {
    "events": event_json_schema,
    "spec": lambda: DestinationSpec.model_json_schema(by_alias=True),
}


def register(main: click.Group) -> None:
    @main.command("schema")
    @click.argument("which", type=click.Choice(sorted(SCHEMAS)))
    @click.option(
        "--out", type=click.Path(dir_okay=False, path_type=Path), help="write to a file instead of stdout"
    )
    def schema_cmd(which: str, out: Path | None) -> None:
        """Print the JSON Schema of events or of a destination spec.yaml."""
        text = json.dumps(SCHEMAS[which](), indent=2, sort_keys=True) + "\n"
        if out:
            out.write_text(text)
            click.echo(f"wrote {out}")
        else:
            click.echo(text, nl=False)
