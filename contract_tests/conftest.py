"""Attach fuzz example counts to test reports, so `sluice certify` records how many events were fuzzed."""

from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call":
        return
    stats = getattr(item.module, "FUZZ_STATS", None)
    callspec = getattr(item, "callspec", None)
    if stats is None or callspec is None or "fuzz_target" not in callspec.params:
        return
    counts = stats.pop(callspec.params["fuzz_target"], None)
    if counts:
        rep.user_properties.append(("sluice_counts", counts))
