"""Validate a produced ``VendorRequest`` body against the vendor's own request schema.

The validator class follows the document: OpenAPI 3.1 uses JSON Schema 2020-12
semantics (``OAS31Validator``); 3.0 and Swagger 2 use ``OAS30Validator``
(``nullable``, draft-4-style). ``$ref`` are inlined once when the operation is
loaded (recursive refs become ``{}``, i.e. unchecked below that depth), so
validating thousands of fuzz outputs stays cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30Validator, OAS31Validator

from sdk.errors import SpecError
from sdk.openapi.extract import _pointer_get, find_path_key, load_document, parse_operation
from sdk.request import VendorRequest, form_value


def inline_refs(node: Any, doc: dict[str, Any], stack: tuple[str, ...] = ()) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in stack:
                return {}
            target = inline_refs(_pointer_get(doc, ref), doc, (*stack, ref))
            siblings = {k: inline_refs(v, doc, stack) for k, v in node.items() if k != "$ref"}
            if siblings and isinstance(target, dict):
                return {"allOf": [target, siblings]}
            return target
        return {k: inline_refs(v, doc, stack) for k, v in node.items()}
    if isinstance(node, list):
        return [inline_refs(v, doc, stack) for v in node]
    return node


@dataclass
class OperationValidator:
    operation: str
    schemas: dict[str, Any]  # media type → schema
    validator_cls: type

    def _pick(self, kind: str | None) -> tuple[str, Any] | None:
        if not self.schemas:
            return None
        if kind == "form":
            for mt in ("application/x-www-form-urlencoded", "multipart/form-data"):
                if mt in self.schemas:
                    return mt, self.schemas[mt]
        for mt, schema in self.schemas.items():
            if mt == "application/json" or mt.endswith("+json"):
                return mt, schema
        return next(iter(self.schemas.items()))

    def errors(self, req: VendorRequest) -> list[str]:
        """Validation errors of ``req``'s body (empty when valid or when the operation has no body schema)."""
        picked = self._pick(req.body_kind)
        if picked is None:
            return []
        mt, schema = picked
        if req.body_kind == "json":
            candidates = [req.json_body]
        elif req.body_kind == "form":
            form = req.form or {}
            candidates = [form, {k: form_value(v) for k, v in form.items()}]
            if "json" in mt and "data" in form:
                # Form-posted JSON (e.g. `data=<json>`) validated against the JSON schema of the payload.
                data = form["data"]
                if isinstance(data, str):
                    try:
                        data = json.loads(data)
                    except ValueError:
                        pass
                candidates.insert(0, data)
        elif req.body_kind == "text":
            candidates = [req.text]
        else:
            return []
        v = self.validator_cls(schema)
        best: list[str] | None = None
        for c in candidates:
            errs = [
                f"{'/'.join(str(p) for p in e.absolute_path) or '<body>'}: {e.message[:200]}"
                for e in v.iter_errors(c)
            ]
            if not errs:
                return []
            if best is None:
                best = errs
        return (best or [])[:10]


def validator_for(doc: dict[str, Any], operation: str) -> OperationValidator:
    method, path = parse_operation(operation)
    key = find_path_key(doc, method, path)
    op = doc["paths"][key][method]
    is_swagger = "swagger" in doc
    cls = OAS31Validator if str(doc.get("openapi", "")).startswith("3.1") else OAS30Validator
    schemas: dict[str, Any] = {}
    if is_swagger:
        params = list(doc["paths"][key].get("parameters", [])) + list(op.get("parameters", []))
        params = [inline_refs(p, doc) for p in params]
        body = [p for p in params if p.get("in") == "body"]
        form = [p for p in params if p.get("in") == "formData"]
        consumes = op.get("consumes") or doc.get("consumes") or ["application/json"]
        if body:
            for mt in consumes:
                schemas[mt] = body[0].get("schema", {})
        if form:
            props = {
                p["name"]: {k: v for k, v in p.items() if k in ("type", "enum", "format", "items")}
                for p in form
            }
            req = [p["name"] for p in form if p.get("required")]
            schemas["application/x-www-form-urlencoded"] = {
                "type": "object",
                "properties": props,
                "required": req,
            }
    else:
        rb = inline_refs(op.get("requestBody") or {}, doc)
        for mt, media in (rb.get("content") or {}).items():
            if isinstance(media, dict) and "schema" in media:
                schemas[mt] = media["schema"]
    return OperationValidator(operation, schemas, cls)


_cache: dict[tuple[str, float], dict[str, Any]] = {}


def load_validator(document: Path, operation: str) -> OperationValidator:
    """Validator for ``operation`` of the extract at ``document`` (the document is parsed once per file)."""
    key = (str(document), document.stat().st_mtime if document.exists() else 0.0)
    if key not in _cache:
        if not document.exists():
            raise SpecError(
                f"{document} does not exist; generate it with "
                f"`sluice openapi extract <vendor-file> --operation '{operation}' --out {document}`"
            )
        _cache[key] = load_document(document)
    return validator_for(_cache[key], operation)
