"""``python -m sdk.cli``: the same as the ``sluice`` command."""

from sdk.cli import main

main()
