"""pytest plugin ``sluice`` (registered as a ``pytest11`` entry point).

Gives connector tests a few fixtures so they need no boilerplate:

``sluice_integration``  parametrise a test with ``@pytest.mark.parametrize("sluice_integration", [...])``
                         (names), or leave it to ``contract_tests``
``sluice_connector``     the loaded ``Connector`` for that integration
``sluice_cases``         its fixture cases (``sdk.testing.cases.Case``)

and two command-line options:

``--sluice-only NAME[,NAME]``  keep only tests whose ``sluice_integration`` is one of NAME (used by
                               ``sluice certify``; exact names, unlike ``-k`` substring matching)
``--sluice-report PATH``       write per-integration, per-check pass/fail counts as JSON (xdist-safe:
                               counts are taken from reports on the controller)
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from sdk.registry import integrations_dir

INTEGRATION_KEY = "sluice_integration"
CHECK_KEY = "sluice_check"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sluice")
    group.addoption("--sluice-only", default=None, help="comma-separated integration names to test")
    group.addoption("--sluice-report", default=None, help="write per-check counts to this JSON file")


def _integration_of(item: pytest.Item) -> str | None:
    """The integration a parametrised test is about: a ``sluice_integration``/``integration`` string param,
    an object with ``.integration`` (a ``Case``), or a tuple whose first element is the name."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    params = dict(callspec.params)
    ordered = [params.pop(k) for k in (INTEGRATION_KEY, "integration") if k in params] + list(params.values())
    for val in ordered:
        if isinstance(val, str):
            return val
        name = getattr(val, "integration", None)
        if isinstance(name, str):
            return name
        if isinstance(val, tuple) and val and isinstance(val[0], str):
            return val[0]
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    only = config.getoption("--sluice-only")
    wanted = {x.strip() for x in only.split(",")} if only else None
    keep, drop = [], []
    for item in items:
        in_scope = INTEGRATION_KEY in getattr(item, "fixturenames", ()) or "contract_tests" in item.path.parts
        name = _integration_of(item) if in_scope else None
        if name is not None:
            item.user_properties.append((INTEGRATION_KEY, name))
            item.user_properties.append((CHECK_KEY, getattr(item, "originalname", item.name)))
        if wanted is not None and name not in wanted:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class _Counter:
    def __init__(self, path: str):
        self.path = path
        self.counts: dict[str, dict[str, dict[str, int]]] = defaultdict(
            lambda: defaultdict(lambda: {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0})
        )
        self.failures: dict[str, list[str]] = defaultdict(list)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties or [])
        name, check = props.get(INTEGRATION_KEY), props.get(CHECK_KEY)
        if not name or not check:
            return
        bucket = self.counts[name][check]
        extra = props.get("sluice_counts")
        if isinstance(extra, dict) and report.when == "call" and report.passed:
            # e.g. fuzz examples: recorded as their own pseudo-checks with a passed count
            for key, n in extra.items():
                self.counts[name][key]["passed"] += int(n)
        if report.when == "call":
            # a strict xfail (a documented known mismatch) is neither a pass nor a skip: count it apart
            xfailed = report.skipped and hasattr(report, "wasxfail")
            plain = "passed" if report.passed else "skipped" if report.skipped else "failed"
            kind = "xfailed" if xfailed else plain
            bucket[kind] += 1
            if report.failed:
                self.failures[name].append(report.nodeid)
        elif report.failed or (report.skipped and report.when == "setup"):
            # errors in setup/teardown count as failures; skips in setup as skipped
            bucket["failed" if report.failed else "skipped"] += 1
            if report.failed:
                self.failures[name].append(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        out: dict[str, Any] = {
            "exitstatus": int(exitstatus),
            "integrations": {n: dict(c) for n, c in self.counts.items()},
            "failures": dict(self.failures),
        }
        Path(self.path).write_text(json.dumps(out, indent=2, sort_keys=True))


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--sluice-report", None)
    # Only the controller (or a run without xdist) writes the report.
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Counter(path), "sluice-counter")


@pytest.fixture
def sluice_connector(request: pytest.FixtureRequest):
    """The connector named by the test's ``sluice_integration`` parameter."""
    from sdk.registry import load_connector

    name = request.getfixturevalue(INTEGRATION_KEY)
    return load_connector(name, integrations_dir())


@pytest.fixture
def sluice_cases(request: pytest.FixtureRequest):
    """Fixture cases of the test's integration."""
    from sdk.testing.cases import load_cases

    name = request.getfixturevalue(INTEGRATION_KEY)
    return load_cases(integrations_dir() / name)
