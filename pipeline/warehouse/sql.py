"""The warehouse loader's named queries (``queries.sql`` next to this file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pipeline.queue.db import parse_queries

QUERIES_FILE = Path(__file__).resolve().parent / "queries.sql"


@lru_cache(maxsize=1)
def _queries() -> dict[str, str]:
    return parse_queries(QUERIES_FILE.read_text())


def wq(name: str) -> str:
    """The SQL text of warehouse query ``name``."""
    try:
        return _queries()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in {QUERIES_FILE}") from None
