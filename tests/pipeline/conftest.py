"""Component-test fixtures: the whole pipeline in-process on a free port, against a real Postgres
(``pg_dsn``, one fresh database per test) and a real HTTP sink on loopback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Test modules here import ``pipeline_helpers`` (the suite runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.sink import Sink  # noqa: E402

from pipeline.app import ThreadedPipeline  # noqa: E402
from pipeline.config import parse_config  # noqa: E402


@pytest.fixture
def sink() -> Iterator[Sink]:
    with Sink() as s:
        yield s


@pytest.fixture
def start_pipeline(pg_dsn: str) -> Iterator[Callable[..., ThreadedPipeline]]:
    started: list[ThreadedPipeline] = []

    def start(cfg: dict[str, Any], **kwargs: Any) -> ThreadedPipeline:
        kwargs.setdefault("allow_uncertified", True)
        p = ThreadedPipeline(parse_config(cfg), pg_dsn, **kwargs)
        p.start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
