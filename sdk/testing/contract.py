"""The vendor's request contract: every body a connector sends, checked against the vendor's own terms.

Where the vendor publishes OpenAPI, an endpoint names its operation (``openapi_operation``) and the
body is validated against the reduced extract. Where it does not, the spec's ``request_schemas``
maps the endpoint to a hand-written JSON Schema (``integrations/<name>/contract/<endpoint>.schema.json``)
written from the vendor docs; the file's ``x-vendor-docs`` says which page and part it follows. A
body is validated as it goes on the wire: JSON as parsed, a form as its fields (JSON-looking values
parsed), text as a string. Endpoints without a body (``body_format: none``) have nothing to check;
every other endpoint must have a contract, so no connector is exempt.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jsonschema

from sdk.connector import Connector
from sdk.request import VendorRequest

DOCS_KEY = "x-vendor-docs"


@cache
def _validator(path: str) -> jsonschema.protocols.Validator:
    schema = json.loads(Path(path).read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def wire_body(req: VendorRequest) -> Any:
    """The body as the vendor receives it, parsed back: what a request schema describes (for a non-HTTP
    transport, the operation object)."""
    if req.transport != "http":
        return req.raw
    kind = req.body_kind
    raw = req.body_bytes().decode("utf-8")
    if kind == "json":
        return json.loads(raw)
    if kind == "form":
        out: dict[str, Any] = {}
        for k, v in parse_qsl(raw, keep_blank_values=True):
            try:
                out[k] = json.loads(v) if v[:1] in "[{" else v
            except ValueError:
                out[k] = v
        return out
    if kind == "text":
        return raw
    return None


def contract_gaps(connector: Connector) -> list[str]:
    """Endpoints that send a body but have no vendor contract (lint finding), and broken schema files."""
    spec, folder = connector.spec, connector.folder
    rel = f"integrations/{spec.name}/spec.yaml"
    out = []
    for name, ep in spec.endpoints.items():
        if ep.body_format == "none" or ep.openapi_operation:
            continue
        path = spec.request_schemas.get(name)
        if path is None:
            out.append(
                f"{rel} request_schemas.{name}: endpoint {name!r} sends a body but has no vendor contract; "
                f"write contract/{name}.schema.json (JSON Schema of the body, from the vendor docs, with "
                f'"{DOCS_KEY}": {{"url": ..., "section": ...}}) and reference it, or name an '
                "openapi_operation"
            )
            continue
        file = (folder or Path(".")) / path
        try:
            schema = json.loads(file.read_text())
            jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(
                schema
            )
        except (OSError, ValueError, jsonschema.SchemaError) as e:
            out.append(f"{rel} request_schemas.{name}: {path} is not a readable JSON Schema ({e})")
            continue
        docs = schema.get(DOCS_KEY)
        if not (
            isinstance(docs, dict) and str(docs.get("url", "")).startswith("https://") and docs.get("section")
        ):
            out.append(
                f'integrations/{spec.name}/{path}: add "{DOCS_KEY}": {{"url": <vendor docs page>, '
                '"section": <the part of the page it follows>}'
            )
    return out


def contract_problems(connector: Connector, req: VendorRequest) -> list[str]:
    """Where ``req``'s body breaks the vendor contract of the endpoint that produced it."""
    spec = connector.spec
    name = connector.endpoint_of(req)
    if name is None:
        return [f"request to {req.method} {req.url.split('?', 1)[0]} matches no endpoint of the spec"]
    ep = spec.endpoints[name]
    if ep.openapi_operation and spec.openapi is not None and connector.folder is not None:
        from sdk.openapi.validate import load_validator

        errs = load_validator(connector.folder / spec.openapi.document, ep.openapi_operation).errors(req)
        return [f"{ep.openapi_operation}: {e}" for e in errs]
    path = spec.request_schemas.get(name)
    if req.body_kind is None and req.transport == "http":
        return []  # nothing on the wire to check (GET/DELETE)
    if path is None or connector.folder is None:
        return [f"endpoint {name!r} has no vendor contract to check against"]
    body = wire_body(req)
    errors = sorted(_validator(str(connector.folder / path)).iter_errors(body), key=lambda e: list(e.path))
    return [
        f"{path} at {'/'.join(str(p) for p in e.path) or '(body)'}: {e.message[:200]}" for e in errors[:10]
    ]


KNOWN_MISMATCHES = "contract/known_mismatches.json"


def known_mismatches(folder: Path) -> dict[str, Any]:
    """Documented, not-yet-fixed departures from the vendor contract (strict xfails in the suite)."""
    path = folder / KNOWN_MISMATCHES
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
