"""sdk.openapi: reduced extracts (operations, refs, no prose, provenance) and request-body validation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from openapi_schema_validator import OAS31Validator

from sdk.errors import SpecError
from sdk.openapi.extract import extract_operations, load_document
from sdk.openapi.validate import load_validator, validator_for
from sdk.request import VendorRequest

from .conftest import REPO, run_cli

# A small hand-written vendor document with the gotchas seen in real ones: a bare `=` enum value
# (OneSignal), '#fragment' path keys (Mixpanel), $refs, prose to strip, and a property named "description".
VENDOR_YAML = """\
openapi: 3.0.2
info: {title: Demo Vendor, version: 7.1.0, description: lots of prose}
servers: [{url: "https://api.demo.test", description: main}]
paths:
  /events:
    post:
      operationId: send-events
      summary: Send events
      description: Long text.
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/EventBatch"}
            example: {events: []}
      responses:
        "200": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Ok"}}}}
  /profiles#set:
    post:
      requestBody:
        content:
          application/json:
            schema: {type: object, required: [id, set], properties: {id: {type: string}, set: {type: object}}}
      responses: {"200": {description: ok}}
  /profiles#unset:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              required: [id, unset]
              properties: {id: {type: string}, unset: {type: array}}
      responses: {"200": {description: ok}}
  /unused:
    get: {responses: {"200": {description: never extracted}}}
components:
  schemas:
    EventBatch:
      type: object
      required: [events]
      properties:
        events: {type: array, maxItems: 2, items: {$ref: "#/components/schemas/Event"}}
    Event:
      type: object
      description: an event
      required: [name, time]
      properties:
        name: {type: string, example: Signup}
        time: {type: integer}
        description: {type: string, description: "a property that happens to be called description"}
        op: {type: string, enum: [add, =]}
    Ok: {type: object, properties: {code: {type: integer}}}
    Unused: {type: string}
"""

SWAGGER = {
    "swagger": "2.0",
    "info": {"title": "Form vendor", "version": "1.3"},
    "paths": {
        "/chat.post": {
            "post": {
                "consumes": ["application/x-www-form-urlencoded"],
                "parameters": [
                    {"name": "channel", "in": "formData", "type": "string", "required": True},
                    {"name": "as_user", "in": "formData", "type": "boolean"},
                ],
                "responses": {"200": {"description": "ok"}},
            }
        }
    },
}


def _walk_keys(node, parent=None):
    if isinstance(node, dict):
        for k, v in node.items():
            yield parent, k
            yield from _walk_keys(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _walk_keys(v, parent)


@pytest.fixture
def vendor_file(tmp_path: Path) -> Path:
    p = tmp_path / "vendor.yaml"
    p.write_text(VENDOR_YAML)
    return p


def test_extract_keeps_only_operations_refs_and_provenance(vendor_file: Path) -> None:
    doc = load_document(vendor_file)  # the bare `=` must not break loading
    out = extract_operations(
        doc, ["POST /events", "POST /profiles#set"], vendor_file, vendor_file.read_bytes()
    )
    assert sorted(out["paths"]) == ["/events", "/profiles#set"]
    assert sorted(out["components"]["schemas"]) == ["Event", "EventBatch", "Ok"]
    assert out["components"]["schemas"]["Event"]["properties"]["op"]["enum"] == ["add", "="]
    # prose stripped everywhere, but a property *named* description survives
    doc_keys = [(p, k) for p, k in _walk_keys(out) if k in ("description", "summary", "example", "examples")]
    assert doc_keys == [("properties", "description")]
    assert "description" not in out["components"]["schemas"]["Event"]["properties"]["description"]
    src = out["x-sluice-source"]
    assert src["sha256"] == hashlib.sha256(vendor_file.read_bytes()).hexdigest()
    assert src["info_version"] == "7.1.0" and src["file"] == "vendor.yaml"
    assert src["operations"] == ["POST /events", "POST /profiles#set"] and src["extracted_at"].endswith("Z")


def test_unknown_or_ambiguous_operation_is_a_clear_error(vendor_file: Path) -> None:
    doc = load_document(vendor_file)
    with pytest.raises(SpecError, match="not in the document"):
        extract_operations(doc, ["POST /nope"])
    with pytest.raises(SpecError, match="several path keys"):
        extract_operations(doc, ["POST /profiles"])
    with pytest.raises(SpecError, match="look like 'POST /path'"):
        extract_operations(doc, ["/events"])


def test_validation_against_extract(vendor_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "extract.json"
    r = run_cli(
        "openapi",
        "extract",
        str(vendor_file),
        "--operation",
        "POST /events",
        "--operation",
        "POST /profiles#unset",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    v = load_validator(out, "POST /events")
    good = VendorRequest(url="https://api.demo.test/events", json={"events": [{"name": "a", "time": 1}]})
    assert v.errors(good) == []
    bad = VendorRequest(url="https://api.demo.test/events", json={"events": [{"name": 5}, {}, {}]})
    errs = v.errors(bad)
    assert any("time" in e for e in errs) and any("events" in e for e in errs)
    unset = load_validator(out, "POST /profiles#unset")
    assert unset.errors(VendorRequest(url="https://x/profiles", json={"id": "1", "unset": ["a"]})) == []
    assert unset.errors(VendorRequest(url="https://x/profiles", json={"id": "1", "set": {}})) != []


def test_swagger2_form_operation_validates_form_bodies() -> None:
    v = validator_for(SWAGGER, "POST /chat.post")
    assert v.errors(VendorRequest(url="https://x/chat.post", form={"channel": "C1", "as_user": True})) == []
    assert v.errors(VendorRequest(url="https://x/chat.post", form={"as_user": True})) != []


def test_oas31_document_uses_2020_12_semantics() -> None:
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/c": {
                "put": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"email": {"type": ["string", "null"]}},
                                }
                            }
                        }
                    }
                }
            }
        },
    }
    v = validator_for(doc, "PUT /c")
    assert v.validator_cls is OAS31Validator
    assert v.errors(VendorRequest(method="PUT", url="https://x/c", json={"email": None})) == []
    assert v.errors(VendorRequest(method="PUT", url="https://x/c", json={"email": 3})) != []


def test_committed_mixpanel_extract_is_reduced_and_usable() -> None:
    path = REPO / "integrations" / "mixpanel" / "openapi" / "ingestion.json"
    data = json.loads(path.read_text())
    assert data["x-sluice-source"]["file"] == "ingestion-15005149.yaml"
    assert "/import" in data["paths"] and "/lookup-tables" not in data["paths"]
    v = load_validator(path, "POST /import")
    ok = VendorRequest(
        url="https://api.mixpanel.com/import",
        json=[
            {
                "event": "Signed up",
                "properties": {"time": 1714564800, "distinct_id": "u1", "$insert_id": "m1"},
            }
        ],
    )
    assert v.errors(ok) == []
    assert v.errors(VendorRequest(url="https://api.mixpanel.com/import", json=[{"properties": {}}])) != []
