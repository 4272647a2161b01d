"""``sluice openapi extract``: a vendor's OpenAPI/Swagger file reduced to the operations a connector uses.

Why reduce: vendor files are megabytes of prose and unrelated endpoints, and
their licences vary; what the harness needs is the request (and response)
schemas of a handful of operations. The extract keeps those operations, the
components they reference (transitively, so ``$ref`` still resolve), and drops
``description``/``summary``/``example(s)`` so diffs between vendor versions
show contract changes, not documentation edits. ``x-sluice-source`` records
which file (by sha256) and which ``info.version`` it came from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml

from sdk.errors import SpecError

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
DOC_KEYS = {
    "description",
    "summary",
    "example",
    "examples",
    "externalDocs",
    "x-readme",
    "x-codegen-request-body-name",
}
# Keys whose values are maps from user-chosen names to schemas: a child named "description" there is a
# property, not documentation, and must be kept.
NAME_MAPS = {
    "properties",
    "patternProperties",
    "definitions",
    "schemas",
    "responses",
    "parameters",
    "requestBodies",
    "headers",
    "securitySchemes",
    "content",
    "variables",
    "links",
    "callbacks",
    "encoding",
    "$defs",
    "dependentSchemas",
    "paths",
}


class _Loader(yaml.SafeLoader):
    """SafeLoader that accepts the bare ``=`` scalar (the YAML 'value' tag) OneSignal's file contains."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_document(path: Path) -> dict[str, Any]:
    """Parse a vendor file (JSON or YAML) into a dict; errors say which file and why."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e}") from e
    try:
        data = json.loads(raw) if path.suffix == ".json" else yaml.load(raw, Loader=_Loader)  # noqa: S506
    except (ValueError, yaml.YAMLError) as e:
        raise SpecError(f"{path} is neither valid JSON nor YAML: {e}") from e
    if not isinstance(data, dict) or not ("openapi" in data or "swagger" in data):
        raise SpecError(f"{path}: not an OpenAPI/Swagger document (no top-level `openapi` or `swagger` key)")
    return data


def parse_operation(op: str) -> tuple[str, str]:
    """``'POST /import'`` → ``('post', '/import')``; the path may carry a ``#fragment`` (Mixpanel)."""
    m = re.fullmatch(r"\s*([A-Za-z]+)\s+(\S+)\s*", op or "")
    if not m or m.group(1).lower() not in HTTP_METHODS:
        raise SpecError(
            f"operation {op!r} must look like 'POST /path' (an HTTP method, a space, the path key)"
        )
    return m.group(1).lower(), m.group(2)


def _strip_fragment(path: str) -> str:
    return path.split("#", 1)[0]


def find_path_key(doc: dict[str, Any], method: str, path: str) -> str:
    """The key under ``paths`` for ``path``: exact, else ignoring ``#fragments`` and a trailing slash."""
    paths = doc.get("paths") or {}
    if path in paths and method in (paths[path] or {}):
        return path

    def norm(p: str) -> str:
        return re.sub(r"\{[^}]*\}", "{}", _strip_fragment(p)).rstrip("/") or "/"

    hits = [k for k, v in paths.items() if norm(k) == norm(path) and isinstance(v, dict) and method in v]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise SpecError(
            f"'{method.upper()} {path}' matches several path keys ({', '.join(sorted(hits))}); "
            f"name one exactly, fragment included"
        )
    near = sorted(k for k in paths if norm(k).split("/")[1:2] == norm(path).split("/")[1:2])[:8]
    raise SpecError(
        f"operation '{method.upper()} {path}' is not in the document; "
        f"similar paths: {', '.join(near) or '(none)'}"
    )


def strip_docs(node: Any, name_map: bool = False) -> Any:
    """Drop documentation keys; ``name_map`` says the dict maps user-chosen names (keep every key)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if name_map:
                out[k] = strip_docs(v, False)
            elif k in DOC_KEYS or k.startswith("x-readme"):
                continue
            else:
                out[k] = strip_docs(v, k in NAME_MAPS)
        return out
    if isinstance(node, list):
        return [strip_docs(v, False) for v in node]
    return node


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            found.add(ref)
        for v in node.values():
            found |= _refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= _refs(v)
    return found


def _pointer_get(doc: dict[str, Any], ref: str) -> Any:
    cur: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(cur, dict) or part not in cur:
            raise SpecError(f"unresolvable $ref {ref!r} in the vendor document")
        cur = cur[part]
    return cur


def _pointer_set(doc: dict[str, Any], ref: str, value: Any) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]
    cur = doc
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value


def extract_operations(
    doc: dict[str, Any], operations: list[str], source: Path | None = None, source_bytes: bytes | None = None
) -> dict[str, Any]:
    """The reduced document: only ``operations``, referenced components kept, documentation stripped."""
    out: dict[str, Any] = {}
    if "openapi" in doc:
        out["openapi"] = doc["openapi"]
    else:
        out["swagger"] = doc["swagger"]
        for k in ("host", "basePath", "schemes", "consumes", "produces"):
            if k in doc:
                out[k] = doc[k]
    info = doc.get("info") or {}
    out["info"] = {"title": info.get("title", ""), "version": str(info.get("version", ""))}
    if "servers" in doc:
        out["servers"] = strip_docs(doc["servers"])
    out["paths"] = {}
    for op in operations:
        method, path = parse_operation(op)
        key = find_path_key(doc, method, path)
        item = doc["paths"][key]
        kept: dict[str, Any] = {}
        if "parameters" in item:
            kept["parameters"] = item["parameters"]
        src_op = item[method]
        kept[method] = {
            k: v
            for k, v in src_op.items()
            if k
            in ("operationId", "parameters", "requestBody", "responses", "consumes", "produces", "security")
        }
        out["paths"].setdefault(key, {}).update(strip_docs(kept))
    # Pull in referenced components until closed.
    seen: set[str] = set()
    todo = _refs(out["paths"])
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        target = strip_docs(_pointer_get(doc, ref))
        _pointer_set(out, ref, target)
        todo |= _refs(target) - seen
    raw = source_bytes if source_bytes is not None else (source.read_bytes() if source else b"")
    out["x-sluice-source"] = {
        "file": source.name if source else None,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "info_version": str(info.get("version", "")),
        "spec_format": f"openapi {doc['openapi']}" if "openapi" in doc else f"swagger {doc['swagger']}",
        "operations": list(operations),
        "extracted_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    }
    return out


def extract_file(source: Path, operations: list[str], out: Path) -> dict[str, Any]:
    doc = load_document(source)
    reduced = extract_operations(doc, operations, source, source.read_bytes())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(reduced, indent=2, ensure_ascii=False) + "\n")
    return reduced
