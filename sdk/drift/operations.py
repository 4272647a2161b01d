"""One vendor operation, the same shape whether the description is Swagger 2 or OpenAPI 3.x.

Swagger 2 spreads a request over ``in: body`` (one schema per ``consumes`` type) and ``in: formData``
parameters (folded here into one object schema per form media type); OpenAPI 3 has ``requestBody``.
Servers come from ``schemes``/``host``/``basePath`` or ``servers`` (variables expanded), security from
``securityDefinitions`` or ``components.securitySchemes``, reduced to the few ways a credential travels.
"""

from __future__ import annotations

import difflib
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from sdk.drift.document import Document
from sdk.drift.schema import Node
from sdk.errors import SpecError

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Keywords a Swagger 2 non-body parameter shares with a schema.
_PARAM_SCHEMA_KEYS = (
    "type", "format", "items", "enum", "default", "maximum", "minimum", "exclusiveMaximum",
    "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems", "multipleOf",
    "x-nullable",
)  # fmt: skip


@dataclass
class Param:
    name: str
    location: str  # query | header | path | cookie
    required: bool
    schema: Node | None
    deprecated: bool = False


@dataclass
class OperationView:
    doc: Document
    method: str
    path: str  # the key under `paths`, fragment included
    operation_id: str | None
    deprecated: bool
    servers: list[str]
    params: dict[tuple[str, str], Param] = field(default_factory=dict)  # (location, lower-case name)
    bodies: dict[str, Node] = field(default_factory=dict)  # media type -> schema
    responses: dict[str, dict[str, Node]] = field(default_factory=dict)  # status -> media type -> schema
    security: list[list[str]] | None = None  # alternatives of credential kinds; None: not described

    @property
    def key(self) -> str:
        return f"{self.method.upper()} {self.path}"


def parse_operation(op: str) -> tuple[str, str]:
    """``'POST /import'`` → ``('post', '/import')``."""
    m = re.fullmatch(r"\s*([A-Za-z]+)\s+(\S+)\s*", op or "")
    if not m or m.group(1).lower() not in HTTP_METHODS:
        raise SpecError(f"operation {op!r} must look like 'POST /path' (an HTTP method, a space, the path)")
    return m.group(1).lower(), m.group(2)


def media_base(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def norm_path(path: str, keep_fragment: bool = True, keep_slash: bool = True) -> str:
    """Parameter names do not change a URL: ``/contacts/{id}`` and ``/contacts/{contact_id}`` are one."""
    base, _, frag = path.partition("#")
    base = re.sub(r"\{[^}]*\}", "{}", base)
    if not keep_slash:
        base = base.rstrip("/") or "/"
    return base + ("#" + frag if keep_fragment and frag else "")


def all_operations(doc: Document) -> list[tuple[str, str]]:
    out = []
    for path, item in (doc.data.get("paths") or {}).items():
        if isinstance(item, dict):
            out.extend((m, str(path)) for m in item if m in HTTP_METHODS)
    return out


@dataclass
class Located:
    view: OperationView | None
    how: str  # exact | params_renamed | trailing_slash | fragment | missing
    candidates: list[str] = field(default_factory=list)


def locate(doc: Document, method: str, path: str) -> Located:
    """Find ``method path`` in ``doc``: exactly, else up to parameter names, a trailing slash, a fragment."""
    method = method.lower()
    ops = all_operations(doc)
    tries = (
        ("exact", lambda p: p),
        ("params_renamed", lambda p: norm_path(p)),
        ("trailing_slash", lambda p: norm_path(p, keep_slash=False)),
        ("fragment", lambda p: norm_path(p, keep_fragment=False, keep_slash=False)),
    )
    for how, norm in tries:
        want = norm(path)
        hits = [p for m, p in ops if m == method and norm(p) == want]
        if len(hits) == 1:
            return Located(operation_view(doc, method, hits[0]), how)
        if len(hits) > 1:
            exact = [p for p in hits if p == path]
            if exact:
                return Located(operation_view(doc, method, exact[0]), how)
            break
    return Located(None, "missing")


def rename_candidates(
    old: Document, new: Document, method: str, path: str, operation_id: str | None
) -> list[str]:
    """Operations new in ``new`` that look like ``method path`` renamed (same operationId, or a near path)."""
    method = method.lower()
    before = {(m, norm_path(p, keep_slash=False)) for m, p in all_operations(old)}
    fresh = [(m, p) for m, p in all_operations(new) if (m, norm_path(p, keep_slash=False)) not in before]
    scored: list[tuple[float, str]] = []
    for m, p in fresh:
        op = new.data["paths"][p].get(m) or {}
        if operation_id and isinstance(op, dict) and op.get("operationId") == operation_id:
            scored.append((2.0, f"{m.upper()} {p}"))
            continue
        if m != method:
            continue
        ratio = difflib.SequenceMatcher(None, norm_path(path), norm_path(p)).ratio()
        if ratio >= 0.75:
            scored.append((ratio, f"{m.upper()} {p}"))
    return [s for _, s in sorted(scored, reverse=True)[:3]]


def _servers(doc: Document, item: dict[str, Any], op: dict[str, Any]) -> list[str]:
    data = doc.data
    if doc.is_swagger:
        host = data.get("host")
        if not host:
            return []
        schemes = op.get("schemes") or data.get("schemes") or ["https"]
        base = str(data.get("basePath") or "")
        return [f"{s}://{host}{base}".rstrip("/") for s in schemes]
    servers = op.get("servers") or item.get("servers") or data.get("servers") or []
    out: list[str] = []
    for s in servers:
        if not isinstance(s, dict) or not isinstance(s.get("url"), str) or not s["url"].strip():
            continue
        url = s["url"]
        variables = s.get("variables") or {}
        names = re.findall(r"\{([^}]+)\}", url)
        choices = []
        for n in names:
            var = variables.get(n) or {}
            vals = [str(v) for v in (var.get("enum") or [])] or [str(var.get("default", "{" + n + "}"))]
            choices.append(vals)
        for combo in itertools.product(*choices) if names else [()]:
            u = url
            for n, v in zip(names, combo, strict=True):
                u = u.replace("{" + n + "}", v)
            out.append(u.rstrip("/"))
    return list(dict.fromkeys(out))


def _param_schema(p: dict[str, Any], doc: Document) -> Node | None:
    if isinstance(p.get("schema"), dict):
        return p["schema"], doc
    kept = {k: v for k, v in p.items() if k in _PARAM_SCHEMA_KEYS}
    return (kept, doc) if kept else None


def _credential_kinds(doc: Document, requirement: dict[str, Any]) -> list[str] | None:
    data = doc.data
    schemes = (
        data.get("securityDefinitions")
        if doc.is_swagger
        else ((data.get("components") or {}).get("securitySchemes"))
    ) or {}
    kinds = []
    for name in requirement:
        scheme, _ = doc.deref(schemes.get(name))
        if not isinstance(scheme, dict):
            return None
        t = str(scheme.get("type", "")).lower()
        if t == "basic" or (t == "http" and str(scheme.get("scheme", "")).lower() == "basic"):
            kinds.append("basic")
        elif t == "http":
            kinds.append(str(scheme.get("scheme", "bearer")).lower())
        elif t in ("oauth2", "openidconnect"):
            kinds.append("bearer")
        elif t == "apikey":
            kinds.append(f"{str(scheme.get('in', 'header')).lower()}:{str(scheme.get('name', '')).lower()}")
        else:
            kinds.append(t or "unknown")
    return kinds


def operation_view(doc: Document, method: str, path: str) -> OperationView:
    item, idoc = doc.deref(doc.data["paths"][path])
    op, odoc = idoc.deref(item[method])
    view = OperationView(
        doc=odoc,
        method=method,
        path=path,
        operation_id=op.get("operationId"),
        deprecated=op.get("deprecated") is True,
        servers=_servers(doc, item, op),
    )
    form: list[Param] = []
    body_schema: Node | None = None
    for raw in [*(item.get("parameters") or []), *(op.get("parameters") or [])]:
        p, pdoc = odoc.deref(raw)
        if not isinstance(p, dict) or "name" not in p:
            continue
        loc = str(p.get("in", ""))
        if loc == "body":
            body_schema = (p.get("schema") or {}, pdoc)
            continue
        param = Param(
            str(p["name"]),
            loc,
            p.get("required") is True,
            _param_schema(p, pdoc),
            p.get("deprecated") is True,
        )
        if loc == "formData":
            form.append(param)
        else:
            view.params[(loc, param.name.lower())] = param
    if doc.is_swagger:
        consumes = [
            media_base(c) for c in (op.get("consumes") or doc.data.get("consumes") or ["application/json"])
        ]
        if body_schema is not None:
            for mt in consumes:
                view.bodies[mt] = body_schema
        if form:
            props = {p.name: (p.schema[0] if p.schema else {}) for p in form}
            for p in form:
                if p.deprecated and isinstance(props[p.name], dict):
                    props[p.name] = {**props[p.name], "deprecated": True}
            synthesized = {
                "type": "object",
                "properties": props,
                "required": [p.name for p in form if p.required],
            }
            for mt in [c for c in consumes if c in FORM_TYPES] or ["application/x-www-form-urlencoded"]:
                view.bodies[mt] = (synthesized, odoc)
    else:
        rb, rdoc = odoc.deref(op.get("requestBody") or {})
        for mt, media in ((rb or {}).get("content") or {}).items():
            if isinstance(media, dict):
                view.bodies[media_base(str(mt))] = (media.get("schema") or {}, rdoc)
    for status, resp in (op.get("responses") or {}).items():
        r, rdoc = odoc.deref(resp)
        media: dict[str, Node] = {}
        if not isinstance(r, dict):
            continue
        if doc.is_swagger:
            if "schema" in r:
                for mt in op.get("produces") or doc.data.get("produces") or ["application/json"]:
                    media[media_base(mt)] = (r["schema"], rdoc)
        else:
            for mt, m in (r.get("content") or {}).items():
                if isinstance(m, dict):
                    media[media_base(str(mt))] = (m.get("schema") or {}, rdoc)
        view.responses[str(status).upper()] = media
    security = op.get("security") if "security" in op else doc.data.get("security")
    if isinstance(security, list):
        alts = []
        for requirement in security:
            if isinstance(requirement, dict):
                kinds = _credential_kinds(doc, requirement)
                if kinds is not None:
                    alts.append(kinds)
        view.security = alts
    return view


def pick_body(bodies: dict[str, Node], content_type: str | None) -> tuple[str, Node] | None:
    """The body schema for ``content_type``; without one, the JSON (else form, else first) schema."""
    if not bodies:
        return None
    if content_type:
        ct = media_base(content_type)
        if ct in bodies:
            return ct, bodies[ct]
    for mt, node in bodies.items():
        if mt == "application/json" or mt.endswith("+json"):
            if not content_type or "json" in content_type:
                return mt, node
    for mt, node in bodies.items():
        if mt in FORM_TYPES and (not content_type or media_base(content_type) in FORM_TYPES):
            return mt, node
    return next(iter(bodies.items()))


def status_matches(documented: str, wanted: str) -> bool:
    """Does documented status ``200``/``2XX``/``DEFAULT`` cover the footprint's ``200``/``2xx``?"""
    d, w = documented.upper(), wanted.upper()
    if d == w:
        return True
    if re.fullmatch(r"\dXX", d) and re.fullmatch(r"\d\d\d", w):
        return d[0] == w[0]
    if re.fullmatch(r"\dXX", w) and re.fullmatch(r"\d\d\d", d):
        return d[0] == w[0]
    return False
