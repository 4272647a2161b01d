"""``python -m sdk.cli.transform_main``: the JSON-lines transform without click's start-up cost."""

import sys

from sdk.cli.transform import run_jsonl

if __name__ == "__main__":
    run_jsonl(sys.stdin, sys.stdout)
