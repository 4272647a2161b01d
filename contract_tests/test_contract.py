"""The generic contract suite: every integration under ``integrations/`` gets it by existing.

Parametrised over ``sdk.registry.integration_folders()`` (which honours
``SLUICE_INTEGRATIONS_DIR``; cassettes are read from ``<dir>/../cassettes``).
Test ids are ``<integration>`` / ``<integration>-<case|event type|scenario>``,
sorted, so xdist workers collect identical lists.

Checks:
  test_spec_lint            spec, settings schema, secrets, docs, fixture coverage, mapper hooks, OpenAPI refs
  test_fixture_case         each fixture is well formed; error cases raise the typed error they name
  test_expected_request     fixture event -> requests equal to the vendor-authored expectation (from docs)
  test_cassette_replay      fixture event -> requests equal to the cassette's, sent via httpx under vcrpy
  test_cassette_classified  recorded responses classify as the fixture says the vendor documents
  test_documented_response  documented vendor answers (errors, partial batches) classify as documented
  test_cassette_hygiene     provenance present, no orphan cassettes, no secret value in any cassette
  test_error_path           400/401/404/408/413/429/500/503/timeout/reset through respx, classified as the
                            suite's defaults (data) or the vendor's documented override say
  test_batch_limits         batching keeps max_events/max_bytes and loses nothing
  test_fuzz                 200 hypothesis events per event type: well-formed requests or a typed error
  test_vendor_contract_declared  every endpoint with a body has an OpenAPI operation or a documented schema
  test_vendor_contract      fixture request bodies validate against the vendor's OpenAPI operation or the
                            connector's documented JSON Schema for that endpoint (fuzzed requests too)
"""

from __future__ import annotations

import copy
import difflib
import json
import traceback
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sdk.classify import Outcome
from sdk.connector import Connector
from sdk.errors import SluiceError, TransformError
from sdk.registry import integration_folders, integrations_dir
from sdk.request import VendorRequest
from sdk.testing.cases import (
    Case,
    cassette_path,
    cassettes_dir,
    is_live,
    load_cases,
    provenance,
    read_cassette,
    redacted_wire,
    safe_url,
    secret_values,
)
from sdk.testing.checks import batch_problems, request_problems
from sdk.testing.contract import contract_gaps, contract_problems, known_mismatches
from sdk.testing.expect import delivered, expectation_diff
from sdk.testing.lint import lint_integration
from sdk.testing.replay import SCENARIOS, Scenario, expected_outcome, replay_case, run_error_scenario
from sdk.testing.responses import DocumentedResponse, load_documented
from sdk.testing.strategies import CONTRACT_FUZZ_EXAMPLES, FUZZ_SETTINGS, events

ROOT = integrations_dir()
# Per fuzz target: examples run, how many gave requests, how many a typed error (read by conftest.py).
FUZZ_STATS: dict[tuple[str, str], dict[str, int]] = {}
FUZZ_KEYS = ("fuzz_examples", "fuzz_requests", "fuzz_typed_errors")
FOLDERS = integration_folders(ROOT)
NAMES = [f.name for f in FOLDERS]


@cache
def connector(name: str) -> Connector:
    return Connector.from_folder(ROOT / name)


def _connector_or_fail(name: str) -> Connector:
    try:
        return connector(name)
    except SluiceError as e:
        pytest.fail(f"{name}: the connector does not load, so this check cannot run: {e.message}")


@cache
def cases(name: str) -> tuple[Case, ...]:
    return tuple(load_cases(ROOT / name))


def _event_types(folder: Path) -> list[str]:
    try:
        raw = yaml.safe_load((folder / "spec.yaml").read_text()) or {}
        types = raw.get("event_types") or []
        return [t for t in types if isinstance(t, str)] or ["<none>"]
    except (OSError, yaml.YAMLError):
        return ["<unreadable-spec>"]


def _success_cases(name: str) -> list[Case]:
    return [c for c in cases(name) if c.response is not None and not c.expect_error and not c.problems]


CASE_PARAMS = [pytest.param(c, id=c.id) for n in NAMES for c in cases(n)]
REPLAY_PARAMS = [pytest.param(c, id=c.id) for n in NAMES for c in cases(n) if not c.expect_error]
FUZZ_PARAMS = [pytest.param((f.name, t), id=f"{f.name}-{t}") for f in FOLDERS for t in _event_types(f)]
ERROR_PARAMS = [pytest.param((n, sc), id=f"{n}-{sc.name}") for n in NAMES for sc in SCENARIOS]
DOCUMENTED_PARAMS = [
    pytest.param((n, r), id=f"{n}-{r.name}") for n in NAMES for r in load_documented(ROOT / n).responses
]


def _expect_param(c: Case):
    """Known mismatches between the docs and today's output are strict xfails: reported, never accepted,
    and an error when they start passing (then the mark must go)."""
    reason = c.expect.known_mismatch if c.expect is not None and c.expect.accepted else None
    why = f"known mismatch with the vendor docs: {reason}"
    marks = [pytest.mark.xfail(strict=True, reason=why)] if reason else []
    return pytest.param(c, id=c.id, marks=marks)


EXPECT_PARAMS = [_expect_param(c) for n in NAMES for c in cases(n) if not c.expect_error]


# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("integration", NAMES)
def test_spec_lint(integration: str) -> None:
    problems = lint_integration(ROOT / integration)
    assert not problems, "spec lint failed; fix these:\n  - " + "\n  - ".join(problems)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_fixture_case(case: Case) -> None:
    assert not case.problems, "fixture problems:\n  - " + "\n  - ".join(case.problems)
    conn = _connector_or_fail(case.integration)
    if case.expect_error:
        try:
            got = case.run(conn)
        except SluiceError as e:
            assert e.type == case.expect_error, (
                f"{case.path}: expected a {case.expect_error!r} error, the connector raised "
                f"{e.type!r}: {e.message}"
            )
            assert e.message.strip(), "typed errors must say what is wrong and how to fix it"
        else:
            pytest.fail(
                f"{case.path}: expected a {case.expect_error!r} error, but the connector produced {len(got)} "
                f"request(s); make the mapping reject this event (e.g. `required: true`) or fix the fixture"
            )
    else:
        try:
            reqs = case.run(conn)
        except SluiceError as e:
            pytest.fail(f"{case.path}: the connector rejected this success case with {e.type}: {e.message}")
        for r in reqs:
            problems = request_problems(conn, r)
            assert not problems, f"{case.path}: malformed request {safe_url(r.url)}: " + "; ".join(problems)


@pytest.mark.parametrize("case", EXPECT_PARAMS)
def test_expected_request(case: Case) -> None:
    assert not case.problems, "fixture problems:\n  - " + "\n  - ".join(case.problems)
    exp = case.expect
    assert exp is not None, (
        f"{case.path}: no vendor expectation. Run `sluice cassettes build {case.integration}` to draft "
        "\"expect\" from the connector's output, correct it against the vendor's documentation (doc.url, "
        f"doc.section), then `sluice cassettes build {case.integration} --accept`"
    )
    assert exp.accepted, (
        f"{case.path}: the expectation is a draft drafted from the connector's own output, so it proves "
        "nothing yet. Check every request against the vendor's documentation, fill in doc.url and "
        f"doc.section, then `sluice cassettes build {case.integration} --accept` (it shows the diff)"
    )
    conn = _connector_or_fail(case.integration)
    try:
        got = case.run(conn)
    except SluiceError as e:
        pytest.fail(f"{case.path}: the connector rejected this success case with {e.type}: {e.message}")
    diff = expectation_diff(exp, delivered(conn, got, case.config))
    assert not diff, (
        f"{case.path}: the connector's request(s) differ from what the vendor documents "
        f"({exp.doc.get('url') or 'see expect.requests[].doc'}); fix the mapping, not the expectation:\n  - "
        + "\n  - ".join(diff[:40])
    )


@pytest.mark.parametrize("case", REPLAY_PARAMS)
def test_cassette_replay(case: Case) -> None:
    assert not case.problems, (
        "fixture problems (fix them, then run `sluice cassettes build "
        f"{case.integration}`):\n  - " + "\n  - ".join(case.problems)
    )
    conn = _connector_or_fail(case.integration)
    path = cassette_path(case, ROOT)
    assert path.exists(), (
        f"no cassette {path} for fixture {case.path.name}; run `sluice cassettes build {case.integration}`"
    )
    secrets = secret_values(conn, [c.config for c in cases(case.integration)])
    requests, results = replay_case(conn, case, path, secrets)
    assert requests, f"{case.path}: a success case must produce at least one request"
    if not is_live(read_cassette(path)):  # a live recording holds the vendor's own status
        # Each request's own answer: a declared step's documented answer, else the fixture's response.
        want = [int((a or case.response or {}).get("status", 200)) for a in case.answers]
        statuses = [r.status for r in results]
        assert statuses == want, "replayed status differs from the fixture's"


@pytest.mark.parametrize("case", REPLAY_PARAMS)
def test_cassette_classified(case: Case) -> None:
    conn = _connector_or_fail(case.integration)
    path = cassette_path(case, ROOT)
    assert path.exists(), f"no cassette {path}; run `sluice cassettes build {case.integration}`"
    data = read_cassette(path)
    # The person-written fixture is the authority; the cassette carries a copy for readers.
    expected = case.expected_outcome
    assert expected in {o.value for o in Outcome}, (
        f"{case.path}: response.classification.outcome must say what the vendor's answer means "
        "(success/retry/throttle/abort)"
    )
    recorded = provenance(data).get("expected_classification")
    assert recorded == expected, (
        f"{path}: provenance says {recorded!r} but the fixture says {expected!r}; rebuild with "
        f"`sluice cassettes build {case.integration}`"
    )
    assert data["interactions"], f"{path} has no interactions"
    for inter in data["interactions"]:
        resp = inter["response"]
        headers = {
            k: (v[0] if isinstance(v, list) and v else v) for k, v in (resp.get("headers") or {}).items()
        }
        got = conn.classify(int(resp["status"]["code"]), headers, resp["body"].get("string") or "")
        assert got.outcome.value == expected, (
            f"{path}: the recorded response classifies as {got.outcome.value} ({got.reason}) but the "
            f"fixture documents {expected} ({(case.classification or {}).get('reason')}); fix spec "
            "`responses` rules"
        )


@pytest.mark.parametrize("target", DOCUMENTED_PARAMS)
def test_documented_response(target: tuple[str, DocumentedResponse]) -> None:
    from sdk.classify import classify_response

    name, r = target
    conn = _connector_or_fail(name)
    got = classify_response(r.status, r.headers, r.body, conn.spec.responses, request=r.request, jobs=r.jobs)
    where = f"integrations/{name}/contract/responses.json {r.name} ({r.doc.get('url')})"
    assert got.outcome.value == r.outcome, (
        f"{where}: classified {got.outcome.value} ({got.reason}); the vendor documents {r.outcome}. "
        "Fix the spec's `responses` rules"
    )
    if r.events is not None:
        jobs = [j.outcome.value for j in got.jobs] if got.jobs is not None else None
        assert jobs == r.events, (
            f"{where}: per-job outcomes {jobs}, documented {r.events}; add or fix a `per_job` block in the "
            "spec's `responses` rules"
        )


@pytest.mark.parametrize("integration", NAMES)
def test_cassette_hygiene(integration: str) -> None:
    conn = _connector_or_fail(integration)
    folder_cases = {c.name for c in cases(integration) if not c.expect_error}
    cdir = cassettes_dir(ROOT) / integration
    files = sorted(cdir.glob("*.yaml")) if cdir.is_dir() else []
    orphans = [p.name for p in files if p.stem not in folder_cases]
    assert not orphans, (
        f"cassettes without a fixture in {cdir}: {orphans}; delete them or run `sluice cassettes "
        f"build {integration}`"
    )
    # Secrets of THIS integration's fixtures must appear in no cassette of ANY integration.
    secrets = [s for s in secret_values(conn, [c.config for c in cases(integration)]) if len(s) >= 3]
    leaks = []
    for p in sorted(cassettes_dir(ROOT).rglob("*.yaml")):
        text = p.read_text()
        leaks += [
            f"{p.relative_to(cassettes_dir(ROOT))}: contains the value of a secret setting"
            for s in secrets
            if s in text
        ]
    assert not leaks, (
        "secrets leaked into cassettes (rebuild them with `sluice cassettes build`):\n" + "\n".join(leaks)
    )
    for p in files:
        prov = provenance(read_cassette(p))
        missing = [
            k
            for k in ("recorded_at", "source", "vendor_api_version", "sdk_version", "expected_classification")
            if k not in prov
        ]
        assert not missing, (
            f"{p}: provenance lacks {missing}; rebuild with `sluice cassettes build {integration}`"
        )


def _first_request(name: str) -> tuple[Connector, VendorRequest, dict]:
    conn = _connector_or_fail(name)
    good = _success_cases(name)
    if not good:
        pytest.fail(
            f"{name}: no usable success fixture to take a request from; add fixtures/<case>.json "
            f'with a "response" (fixtures that have problems are not used: see test_fixture_case)'
        )
    for c in good:
        try:
            reqs = c.run(conn)
        except SluiceError:
            continue
        if reqs:
            return conn, reqs[0], c.config
    pytest.fail(f"{name}: no success fixture produced a request; fix the fixtures or the mapping")


@pytest.mark.parametrize("target", ERROR_PARAMS)
def test_error_path(target: tuple[str, Scenario]) -> None:
    name, sc = target
    conn, req, _ = _first_request(name)
    got, calls = run_error_scenario(conn, req, sc)
    assert calls == 1, (
        f"the request to {safe_url(req.url)} did not reach the mocked vendor exactly once ({calls})"
    )
    want = expected_outcome(conn, sc)
    assert got.outcome == want, (
        f"{name}: a {sc.name} answer classifies as {got.outcome.value} ({got.reason}); expected "
        f"{want.value}. "
        f"Check the spec's `responses` rules"
    )
    if sc.retry_after is not None and want == Outcome.THROTTLE:
        assert got.retry_after == sc.retry_after, "Retry-After must be honoured"


@pytest.mark.parametrize("integration", NAMES)
def test_batch_limits(integration: str) -> None:
    conn = _connector_or_fail(integration)
    good = _success_cases(integration)
    reqs: list[VendorRequest] = []
    config = good[0].config if good else {}
    for c in good:
        try:
            if c.config == config:
                reqs.extend(c.run(conn))
        except SluiceError:
            continue
    if not reqs:
        pytest.fail(
            f"{integration}: no fixture requests to batch; add success fixtures (fixtures with "
            f"problems are not used: see test_fixture_case)"
        )
    n = max(3, conn.spec.batching.max_events * 2 + 1) if conn.spec.batching.enabled else 3
    many = (reqs * (n // len(reqs) + 1))[: max(n, len(reqs))]
    problems = batch_problems(conn, many, config)
    assert not problems, f"{integration}: " + "; ".join(problems)


@pytest.mark.parametrize("integration", NAMES)
def test_vendor_contract_declared(integration: str) -> None:
    gaps = contract_gaps(_connector_or_fail(integration))
    assert not gaps, "every endpoint that sends a body needs a vendor contract:\n  - " + "\n  - ".join(gaps)


@pytest.mark.parametrize("case", REPLAY_PARAMS)
def test_vendor_contract(case: Case) -> None:
    conn = _connector_or_fail(case.integration)
    try:
        reqs = case.run(conn)
    except SluiceError as e:
        pytest.fail(f"{case.path}: {e.type}: {e.message}")
    for r in delivered(conn, reqs, case.config):
        problems = contract_problems(conn, r)
        assert not problems, f"{case.path}: body breaks the vendor's request contract:\n  " + "\n  ".join(
            problems
        )


def _fuzz_contract_param(name: str, etype: str):
    """Known fuzz findings against the vendor contract are xfails, listed with their reason in
    integrations/<name>/contract/known_mismatches.json (``{"fuzz": {"<type>": "reason"}}``). Not strict:
    which fuzzed event first shows the problem can depend on events transformed earlier in the same
    process (mutable state shared between transforms, issue 6 item 0), so a run may miss it."""
    reason = known_mismatches(ROOT / name).get("fuzz", {}).get(etype)
    why = f"known mismatch with the vendor contract: {reason}"
    marks = [pytest.mark.xfail(strict=False, reason=why)] if reason else []
    return pytest.param((name, etype), id=f"{name}-{etype}", marks=marks)


FUZZ_CONTRACT_PARAMS = [_fuzz_contract_param(f.name, t) for f in FOLDERS for t in _event_types(f)]


FUZZ_NOW = "2024-05-01T12:00:00Z"


@pytest.mark.parametrize("target", FUZZ_CONTRACT_PARAMS)
@settings(FUZZ_SETTINGS, max_examples=CONTRACT_FUZZ_EXAMPLES)
@given(data=st.data())
def test_fuzz_vendor_contract(target: tuple[str, str], data: st.DataObject) -> None:
    """The same derandomized fuzz events: every request they produce, as delivered, keeps the vendor's
    request contract (OpenAPI extract or documented JSON Schema)."""
    name, etype = target
    conn = _connector_or_fail(name)
    good = _success_cases(name)
    bases = [c.event for c in good if c.event_type == etype]
    if not bases:
        pytest.fail(f"{name}: no success fixture of type {etype} to fuzz from")
    configs = [c.config for c in good] or [{}]
    event = data.draw(events(etype, st.sampled_from(bases)), label="event")
    config = configs[data.draw(st.integers(0, len(configs) - 1), label="config index")]
    case = Case(integration=name, name="fuzz", path=Path("fuzz"), config=config, event=event, now=FUZZ_NOW)
    try:
        reqs = case.run(conn)
    except Exception:  # noqa: BLE001 - typed errors and crashes are test_fuzz's business
        return
    for r in delivered(conn, reqs, config):
        problems = contract_problems(conn, r)
        assert not problems, f"{name}: a fuzzed {etype} request breaks the vendor contract: " + "; ".join(
            problems
        )


def _containers(value: Any) -> set[int]:
    """The ids of every dict and list inside ``value`` (which objects an output holds)."""
    out: set[int] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            out.add(id(v))
            stack.extend(v.values())
        elif isinstance(v, list):
            out.add(id(v))
            stack.extend(v)
    return out


@pytest.mark.parametrize("fuzz_target", FUZZ_PARAMS)
@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz(fuzz_target: tuple[str, str], data: st.DataObject) -> None:
    name, etype = fuzz_target
    conn = _connector_or_fail(name)
    good = _success_cases(name)
    bases = [c.event for c in good if c.event_type == etype]
    if not bases:
        pytest.fail(
            f"{name}: fuzzing {etype} events starts from a success fixture of that type; add "
            f'integrations/{name}/fixtures/{etype}_<case>.json with a "response"'
        )
    configs = [c.config for c in good] or [{}]
    event = data.draw(events(etype, st.sampled_from(bases) if bases else None), label="event")
    # draw an index, not the config itself, so falsifying-example reports never print credentials
    config = configs[data.draw(st.integers(0, len(configs) - 1), label="config index")]
    stats = FUZZ_STATS.setdefault(fuzz_target, dict.fromkeys(FUZZ_KEYS, 0))
    stats["fuzz_examples"] += 1
    case = Case(
        integration=name,
        name="fuzz",
        path=Path("fuzz"),
        config=config,
        event=event,
        now="2024-05-01T12:00:00Z",
    )
    crash: str | None = None
    pristine = copy.deepcopy(event)
    try:
        reqs = case.run(conn)
    except TransformError as e:
        assert event == pristine, f"{name}: transforming a {etype} event changed the event itself"
        assert e.message.strip(), "typed errors must carry a message that says what to fix"
        stats["fuzz_typed_errors"] += 1
        return
    except SluiceError as e:
        crash = (
            f"{name}: a {etype} event raised {type(e).__name__} ({e.type}), not a TransformError: "
            + e.message
        )
    except Exception as e:  # noqa: BLE001 - the point of the check
        last = traceback.extract_tb(e.__traceback__)[-1]
        crash = (
            f"{name}: a {etype} event crashed the connector with {type(e).__name__}: {e!s:.300} "
            f"(at {last.filename}:{last.lineno}); raise an sdk.errors InstrumentationError instead"
        )
    if crash is not None:
        # failed outside the except block: the chained traceback would print mapper frames and settings
        pytest.fail(crash)
    stats["fuzz_requests"] += 1
    # Issue 6, item 0: a transform never writes into its input, and outputs never share an object with
    # the input or with another event's outputs (a default `{}` handed to every event leaked data).
    assert event == pristine, f"{name}: transforming a {etype} event changed the event; never write to it"
    first = [r.to_wire() for r in reqs]
    shared = _containers(first) & _containers(event)
    assert not shared, f"{name}: a {etype} request shares an object with its event; copy what you place"
    again = case.run(conn)
    assert not _containers(first) & _containers([r.to_wire() for r in again]), (
        f"{name}: two transforms of {etype} events gave requests that share an object (a shared default or "
        "cached value); each output must own its objects"
    )
    if [r.to_wire() for r in reqs] != [r.to_wire() for r in again]:
        secrets = secret_values(conn, configs)
        a = json.dumps([redacted_wire(r, secrets) for r in reqs], indent=1, sort_keys=True, default=str)
        b = json.dumps([redacted_wire(r, secrets) for r in again], indent=1, sort_keys=True, default=str)
        diff = "\n".join(list(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm=""))[:40])
        pytest.fail(
            f"{name}: the same {etype} event gave different requests twice; take time and ids from "
            f"kit.ctx\n{diff}"
        )
    for r in reqs:
        problems = request_problems(conn, r)
        assert not problems, f"{name}: malformed {etype} request: " + "; ".join(problems)
    if reqs and conn.spec.batching.enabled:
        problems = batch_problems(conn, reqs * 3, config)
        assert not problems, f"{name}: " + "; ".join(problems)
