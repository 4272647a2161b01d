"""docs/spec-language.md is executable: every ``yaml example`` block runs; the page covers the whole language.

The expectations are the ones a person wrote in the reference; this test only checks that the engine agrees.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import EventDropped, SluiceError
from sdk.mapping import reference
from sdk.mapping.conditions import TESTS
from sdk.mapping.env import CTX_NAMES
from sdk.mapping.expressions import DIRECTIVE_OPTIONS, MODIFIERS, PRIMARY
from sdk.mapping.formats import FORMATS
from sdk.mapping.paths import ROOTS
from sdk.spec.model import DestinationSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "spec-language.md"
_BLOCK = re.compile(r"^```yaml example\n(.*?)^```", re.DOTALL | re.MULTILINE)
_MISSING = object()


def _examples() -> list[tuple[str, dict[str, Any]]]:
    text = DOC.read_text()
    out = []
    for m in _BLOCK.finditer(text):
        heading = [h for h in re.findall(r"^#+ (.+)$", text[: m.start()], re.MULTILINE)][-1]
        n = sum(1 for x in out if x[0].startswith(heading))
        out.append((f"{heading} #{n + 1}", yaml.safe_load(m.group(1))))
    return out


EXAMPLES = _examples()


def _connector(ex: dict[str, Any]) -> Connector:
    event = ex.get("event") or {"type": "track"}
    etype = str(event.get("type", "track"))
    settings = ex.get("settings") or {}
    base: dict[str, Any] = {
        "spec_version": 2,
        "name": "demo",
        "display_name": "Demo Dest",
        "settings": {"type": "object", "properties": {k: {} for k in settings}},
        "event_types": [etype],
        "endpoints": {"e": {"url": "https://example.test/"}},
    }
    if "spec" in ex:
        spec = {**base, **copy.deepcopy(ex["spec"])}
    else:
        value = ex["value"] if "value" in ex else {"if": ex["condition"], "then": True, "else": False}
        spec = {
            **base,
            "let": ex.get("let") or {},
            "mappings": {etype: {"endpoint": "e", "body": {"v": value}}},
        }
    return Connector(DestinationSpec.model_validate(spec))


def _run(ex: dict[str, Any]) -> Any:
    conn = _connector(ex)
    ctx = TransformContext.at(ex.get("now") or "2024-05-01T12:00:00Z", seed="doc")
    if "events" in ex:  # a batching example: every event's requests, merged as the router would
        requests = []
        for event in ex["events"]:
            requests += conn.transform(copy.deepcopy(event), ex.get("settings") or {}, ctx)
        return [r for _, r in conn.batch(requests, ex.get("settings") or {})]
    event = ex.get("event") or {"type": "track"}
    return conn.transform(copy.deepcopy(event), ex.get("settings") or {}, ctx)


@pytest.fixture(params=["generated", "closures"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both engine back ends must give what the reference says (closures are the reference semantics)."""
    monkeypatch.setenv("SLUICE_CODEGEN", "1" if request.param == "generated" else "0")
    return request.param


@pytest.mark.parametrize("name, ex", EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_reference_example(name: str, ex: dict[str, Any], backend: str) -> None:
    if ex.get("dropped"):
        with pytest.raises(EventDropped):
            _run(ex)
        return
    if "error" in ex:
        with pytest.raises(SluiceError) as info:
            _run(ex)
        assert info.value.type == ex["error"], info.value.message
        return
    if "response" in ex:  # a classification example: the spec's `responses` rules on a vendor answer
        from sdk.classify import classify_response

        r = ex["response"]
        got = classify_response(
            r["status"],
            r.get("headers") or {},
            r.get("body"),
            _connector(ex).spec.responses,
            request=ex.get("request"),
            jobs=ex.get("jobs"),
        )
        want = ex["classified"]
        assert got.outcome.value == want["outcome"], got.reason
        if "events" in want:
            assert [j.outcome.value for j in got.jobs or []] == want["events"], got.jobs
        return
    requests = _run(ex)
    want_requests = ex.get("requests", ex.get("delivered"))
    if want_requests is not None:
        assert len(requests) == len(want_requests), [r.to_wire() for r in requests]
        for want, got in zip(want_requests, requests, strict=True):
            wire = got.to_wire()
            for key, value in want.items():
                if key == "headers":
                    assert {k: wire["headers"].get(k) for k in value} == value
                else:
                    assert wire.get(key) == value, (key, wire)
        return
    [req] = requests
    got = req.json_body.get("v", _MISSING)
    assert got == ex["result"], f"{name}: {got!r}"


def test_every_example_states_an_expectation() -> None:
    assert len(EXAMPLES) >= 40
    for name, ex in EXAMPLES:
        assert {"result", "requests", "delivered", "classified", "error", "dropped"} & set(ex), name


def test_the_reference_covers_the_whole_language() -> None:
    text = DOC.read_text()
    words = (
        set(PRIMARY) | set(MODIFIERS) | set(TESTS) | set(CTX_NAMES) | set(ROOTS)
        | {o for opts in DIRECTIVE_OPTIONS.values() for o in opts} | set(DestinationSpec.model_fields)
        | {"requests", "cases", "checks", "refine", "each", "headers", "params", "ci", "loose", "age_of"}
    )  # fmt: skip
    prose = re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    code = " ".join(re.findall(r"`[^`\n]+`", prose))
    missing = sorted(w for w in words if not re.search(rf"(?<![\w$]){re.escape(w)}(?![\w])", code))
    assert not missing, f"docs/spec-language.md does not document: {missing}"


def test_formats_table_is_generated_from_the_registry() -> None:
    text = DOC.read_text()
    assert reference.render(text) == text, "run: .venv/bin/python -m sdk.mapping.reference"
    for name in FORMATS:
        assert f"| `{name}`" in text


def test_committed_spec_schema_is_current() -> None:
    import json

    committed = json.loads((DOC.parents[1] / "sdk" / "schemas" / "spec.schema.json").read_text())
    assert committed == DestinationSpec.model_json_schema(by_alias=True), (
        "run `sluice schema spec --out sdk/schemas/spec.schema.json`"
    )


def test_every_spec_key_has_a_description_in_the_schema() -> None:
    """`sluice schema spec` is meant to be readable as a reference: every property says what it is."""
    schema = DestinationSpec.model_json_schema(by_alias=True)
    undocumented = []
    for name, model in [("DestinationSpec", schema), *schema.get("$defs", {}).items()]:
        if name.startswith("Response") or name == "Outcome":
            continue  # sdk/classify.py's models, documented in contract_tests/README.md
        for key, prop in (model.get("properties") or {}).items():
            if (
                "description" not in prop
                and "$ref" not in prop
                and not (prop.get("allOf") or prop.get("anyOf"))
            ):
                undocumented.append(f"{name}.{key}")
    assert not undocumented, undocumented
