"""Shared fixtures of the SDK tests; test modules here import ``mini_spec`` (the suite runs with
--import-mode=importlib)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(params=["1", "0"], ids=["generated", "closures"])
def both_engines(request, monkeypatch):
    """Run a test on the generated code and on the reference closures."""
    monkeypatch.setenv("SLUICE_CODEGEN", request.param)
    return request.param
