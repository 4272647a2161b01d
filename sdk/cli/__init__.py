"""The ``sluice`` command line. Each command group lives in its own module and registers here."""

from __future__ import annotations

import importlib

import click

from sdk import __version__

# Modules that add commands to `main`; each defines `register(main)`.
COMMAND_MODULES = (
    "sdk.cli.transform",
    "sdk.cli.schema",
    "sdk.cli.connectors",
    "sdk.cli.classify",
    "sdk.cli.openapi",
    "sdk.cli.drift",
    "sdk.cli.warehouse",
    "pipeline.cli",
    "pipeline.telemetry_cli",
    "pipeline.devsink",
    "pipeline.warehouse.cli",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sluice")
def main() -> None:
    """Sluice: customer-data pipeline and connector SDK."""


for _mod in COMMAND_MODULES:
    try:
        _m = importlib.import_module(_mod)
    except ModuleNotFoundError as _e:  # a part not built yet must not break the others
        if _e.name and _mod.startswith(_e.name):
            continue
        raise
    _m.register(main)
