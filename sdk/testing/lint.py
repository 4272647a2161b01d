"""Spec lint: everything about an integration folder that can be checked without sending a request.

Each problem is one sentence naming the file and key to change and how, because
the reader is a contributor who just ran ``sluice validate`` or the contract suite.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import jsonschema

from sdk.connector import Connector, _load_mapper, load_spec
from sdk.errors import SluiceError
from sdk.testing.cases import SECRET_LIKE_SETTING, load_cases
from sdk.testing.responses import load_documented

_SETTING_REF = re.compile(r"settings\.([A-Za-z0-9_]+)")


def lint_integration(folder: Path) -> list[str]:
    """All lint problems of ``folder`` (empty list: lint passes)."""
    problems: list[str] = []
    spec_path = folder / "spec.yaml"
    rel = f"integrations/{folder.name}"
    try:
        spec = load_spec(spec_path)
    except SluiceError as e:
        return [e.message]
    if spec.name != folder.name:
        problems.append(f"{rel}/spec.yaml name: is {spec.name!r}; set it to the folder name {folder.name!r}")
    try:
        # The spec's `call`/`refine` names resolve against its own mapper (an unimportable mapper is
        # reported by lint_mapper below).
        mapper_path = folder / "mapper.py"
        try:
            mapper = _load_mapper(mapper_path, f"lint_{spec.name}") if mapper_path.exists() else None
        except Exception:  # noqa: BLE001 - reported below with the reason
            mapper = None
        Connector(spec, folder, mapper)
    except SluiceError as e:
        problems.append(f"{rel}/spec.yaml: does not compile: {e.message}")
    problems += load_documented(folder).problems

    for ep in spec.contract.required if spec.contract else {}:
        if ep not in spec.endpoints:
            problems.append(
                f"{rel}/spec.yaml contract.required.{ep}: no such endpoint; use one of "
                f"{sorted(spec.endpoints)}"
            )

    # settings schema
    settings = spec.settings or {}
    try:
        jsonschema.Draft202012Validator.check_schema(settings)
    except jsonschema.SchemaError as e:
        problems.append(f"{rel}/spec.yaml settings: not a valid JSON Schema ({e.message}); fix that key")
    if settings.get("type") not in (None, "object"):
        problems.append(f"{rel}/spec.yaml settings.type: must be 'object'")
    props = settings.get("properties") or {}
    secret = set(spec.secret_settings())
    for key, prop in props.items():
        if not isinstance(prop, dict):
            problems.append(f"{rel}/spec.yaml settings.properties.{key}: must be a JSON Schema object")
            continue
        looks_secret = SECRET_LIKE_SETTING.search(key) and prop.get("type", "string") == "string"
        # `secret: false` is an explicit, reviewable statement that a credential-sounding name is not one.
        if looks_secret and key not in secret and prop.get("secret") is not False:
            problems.append(
                f"{rel}/spec.yaml settings.properties.{key}: looks like a credential; add `secret: true` "
                f"so it is redacted from cassettes and logs (or `secret: false` if it is not a credential)"
            )
    a = spec.auth
    for attr in ("password", "token", "value"):
        tmpl = getattr(a, attr)
        for ref in _SETTING_REF.findall(tmpl or ""):
            if ref not in secret:
                problems.append(
                    f"{rel}/spec.yaml settings.properties.{ref}: used as auth.{attr}, so it is a secret; "
                    f"add `secret: true`"
                )

    # vendor metadata
    if not (spec.vendor.api_version or "").strip():
        problems.append(f"{rel}/spec.yaml vendor.api_version: say which vendor API version this targets")
    if not spec.vendor.docs:
        problems.append(
            f"{rel}/spec.yaml vendor.docs: list at least one link to the vendor's API documentation"
        )
    if not (folder / "README.md").exists():
        problems.append(f"{rel}/README.md: missing; describe what the connector does, settings and quirks")

    # fixtures cover every supported event type
    cases = load_cases(folder)
    if not cases:
        problems.append(f"{rel}/fixtures/: no fixture cases; add one <case>.json per supported event type")
    covered = {c.event_type for c in cases if c.response is not None and not c.expect_error}
    for etype in spec.event_types:
        if etype not in covered:
            problems.append(
                f"{rel}/fixtures/: no success case for {etype!r} events; add e.g. "
                f"fixtures/{etype}_basic.json "
                f"with an event of type {etype!r} and the vendor's documented response"
            )

    # scaffold placeholders left behind
    from sdk.scaffold import leftovers

    problems.extend(leftovers(folder))

    # mapper functions: public functions are named by the spec (refine/call), take 4 arguments and
    # import only the SDK's public surface.
    mapper_path = folder / "mapper.py"
    if mapper_path.exists():
        problems.extend(lint_mapper(mapper_path, spec, rel))

    # OpenAPI references
    ops = {n: ep.openapi_operation for n, ep in spec.endpoints.items() if ep.openapi_operation}
    if ops and spec.openapi is None:
        problems.append(
            f"{rel}/spec.yaml openapi: endpoints name openapi_operation but there is no `openapi.document`; "
            f"generate one with `sluice openapi extract` and reference it"
        )
    if spec.openapi is not None:
        doc_path = folder / spec.openapi.document
        if not doc_path.exists():
            problems.append(
                f"{rel}/spec.yaml openapi.document: {spec.openapi.document} does not exist; generate it with "
                "`sluice openapi extract <vendor-file> --operation 'POST /path' --out "
                f"{rel}/{spec.openapi.document}`"
            )
        else:
            from sdk.openapi.validate import load_validator

            for name, op in ops.items():
                try:
                    load_validator(doc_path, op)
                except SluiceError as e:
                    problems.append(f"{rel}/spec.yaml endpoints.{name}.openapi_operation: {e.message}")
            try:
                import json

                if "x-sluice-source" not in json.loads(doc_path.read_text()):
                    problems.append(
                        f"{rel}/{spec.openapi.document}: no x-sluice-source; regenerate it with "
                        f"`sluice openapi extract`"
                    )
            except ValueError:
                problems.append(
                    f"{rel}/{spec.openapi.document}: not JSON; regenerate it with `sluice openapi extract`"
                )
    return problems


def _spec_function_names(spec: Any) -> set[str]:
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("call"), str):
                names.add(node["call"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for m in spec.mappings.values():
        for r in m.request_specs:
            if r.refine:
                names.add(r.refine)
    walk(spec.model_dump(mode="json", by_alias=True))
    return names


def lint_mapper(mapper_path: Path, spec: Any, rel: str) -> list[str]:
    """What is wrong with a mapper.py: unused or misnamed functions, wrong arity, private imports."""
    import ast

    from sdk.stats import MAX_MAPPER_LINES

    problems: list[str] = []
    text = mapper_path.read_text()
    if len(text.splitlines()) > MAX_MAPPER_LINES:
        problems.append(
            f"{rel}/mapper.py has {len(text.splitlines())} lines (at most {MAX_MAPPER_LINES}): what in it "
            "is a pattern the spec language should declare? (docs/spec-language.md)"
        )
    tree = ast.parse(text)
    for node in ast.walk(tree):
        mods: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            mods = [node.module]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        for m in mods:
            if m.split(".")[0] in ("sdk", "pipeline") and m != "sdk":
                problems.append(
                    f"{rel}/mapper.py line {node.lineno}: imports {m}; a mapper imports only "
                    "`from sdk import ...` "
                    "(errors, get, formats, TransformContext), never engine internals"
                )
    try:
        mapper = _load_mapper(mapper_path, f"lint_{spec.name}")
    except Exception as e:  # noqa: BLE001 - any import failure is a lint finding
        return [*problems, f"{rel}/mapper.py: cannot be imported ({type(e).__name__}: {e})"]
    used = _spec_function_names(spec)
    for attr, val in vars(mapper).items():
        if attr.startswith("_") or not inspect.isfunction(val) or val.__module__ != mapper.__name__:
            continue
        if attr not in used:
            problems.append(
                f"{rel}/mapper.py {attr}(): no `refine: {attr}` or `call: {attr}` in spec.yaml uses it; "
                f"rename it to _{attr} if it is a helper, or use it from the spec"
            )
            continue
        n = len(inspect.signature(val).parameters)
        if n != 4:
            problems.append(
                f"{rel}/mapper.py {attr}(): takes {n} arguments; refine and call functions take "
                "(value_or_body, event, settings, ctx)"
            )
    return problems
