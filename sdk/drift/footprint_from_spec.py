"""The part of a connector's footprint its ``spec.yaml`` declares.

Everything here reads the spec model (``sdk.spec.model.DestinationSpec``) and nothing else, so a change
of the spec language means adapting this one module. What it derives:

* one operation per endpoint: method, URL template split into the servers it can resolve to (vars
  expanded over the literal hosts their expressions can give) and a path with ``{name}`` placeholders,
  the vendor operation it implements (``openapi_operation``), content type from ``body_format``, static
  headers and query parameters;
* request fields from the mappings' request bodies (objects, dotted keys, ``each``/``array`` lists, both
  branches of ``if``), with the conditions (``when``) and event types under which they are sent, placed
  inside the body envelope (``json_array`` → ``/*``, ``batch.wrap`` → ``/<wrap>/*``); the contract's
  required paths and batching lists;
* the JSON types each field can carry (literals, formats, settings' schema types, defaults, ``keep_null``);
  unknown when the value comes straight from the event;
* auth (``auth`` block, or an ``Authorization`` header the endpoint sets), and the statuses and response
  fields the ``responses`` rules look at.

Mappers (Python) can add or move fields the spec cannot show; the observed part of the footprint
(``footprint_observed``, from cassettes) covers them. The small helpers at the end are the other facts
drift tooling reads from a spec (settings, secrets, response rules, operations, envelopes), so that
this module is the only one in ``sdk/drift`` that knows the spec model.
"""

from __future__ import annotations

import itertools
import json
import re
import urllib.parse
from typing import Any

from sdk.drift.footprint import (
    AuthUse,
    DescriptionPin,
    FieldUse,
    Footprint,
    OperationUse,
    ParamUse,
    ResponseUse,
    merge_fields,
)
from sdk.drift.shapes import type_name
from sdk.mapping.expressions import PRIMARY
from sdk.mapping.exprstring import ExprSyntaxError, ParsedExpr, parse, template_parts
from sdk.mapping.objects import _SPLIT as _KEY_DOTS
from sdk.spec.model import DestinationSpec, Endpoint

# The JSON type a value has after each format (formats that keep the type are absent).
FORMAT_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
    "iso8601": "string",
    "date": "string",
    "epoch_s": "integer",
    "epoch_ms": "integer",
    "epoch_us": "integer",
    "lower": "string",
    "upper": "string",
    "trim": "string",
    "sha256": "string",
    "json": "string",
    "truncate": "string",
    "list": "array",
    "flatten": "object",
    "compact": "object",
    "round": "number",
}
_CONTENT_TYPES = {
    "json": "application/json",
    "json_array": "application/json",
    "form": "application/x-www-form-urlencoded",
    "text": "text/plain",
    "xml": "application/xml",
    "query": None,
    "none": None,
}


def dotted_to_pointer(path: str, array_marker: str = "[]") -> str:
    """``a.b``, ``items[].id`` or ``list.0.x`` → ``/a/b``, ``/items/*/id``, ``/list/*/x``."""
    parts: list[str] = []
    for seg in path.split("."):
        if not seg:
            continue
        if seg.endswith(array_marker):
            parts += [seg[: -len(array_marker)], "*"]
        elif seg.isdigit():
            parts.append("*")
        else:
            parts.append(seg)
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts if p)


def _setting_types(spec: DestinationSpec, name: str) -> list[str]:
    prop = ((spec.settings or {}).get("properties") or {}).get(name)
    t = prop.get("type") if isinstance(prop, dict) else None
    if isinstance(t, str):
        return [t]
    return [x for x in t if isinstance(x, str)] if isinstance(t, list) else []


def _expr_types(p: ParsedExpr, spec: DestinationSpec) -> tuple[list[str], list[Any] | None]:
    """Types of an expression: its last type-changing format, else its settings' schema or literal types."""
    fmt_type = None
    for name, _ in p.formats:
        fmt_type = FORMAT_TYPES.get(name, fmt_type)
    if fmt_type:
        return [fmt_type], None
    types: set[str] = set()
    values: list[Any] = []
    for op in p.operands:
        if op.path is None:
            types.add(type_name(op.literal))
            values.append(op.literal)
        elif op.path.root == "settings" and op.path.static and len(op.path.keys) == 1:
            st = _setting_types(spec, op.path.keys[0])
            if not st:
                return [], None
            types.update(st)
        elif op.path.root == "ctx" and op.path.keys[:1] in (("now",), ("message_id",)):
            types.add("string")
        else:
            return [], None
    return sorted(types), (values if len(values) == len(p.operands) else None)


def field_types(node: Any, spec: DestinationSpec) -> tuple[list[str], list[Any] | None]:
    """The JSON types (empty: unknown) and, for constants, the values a leaf value can carry."""
    types: list[str]
    values: list[Any] | None = None
    if isinstance(node, str):
        try:
            parts = template_parts(node) if "{{" in node else [parse(node)]
        except ExprSyntaxError:
            return [], None
        if len(parts) != 1 or isinstance(parts[0], str):
            return ["string"], ([node] if all(isinstance(x, str) for x in parts) else None)
        return _expr_types(parts[0], spec)
    if node is None or isinstance(node, bool | int | float):
        return [type_name(node)], [node]
    if not isinstance(node, dict):
        return [], None
    if "value" in node:
        types, values = [type_name(node["value"])], [node["value"]]
    elif "from" in node:
        srcs = node["from"] if isinstance(node["from"], list) else [node["from"]]
        found: set[str] = set()
        for src in srcs:
            t, _ = field_types(src, spec) if isinstance(src, str) else ([], None)
            if not t:
                found = set()
                break
            found.update(t)
        types = sorted(found)
    elif "template" in node:
        types = ["string"]
    else:
        types = []
    fmts = node.get("format")
    fmt_type = None
    for fmt in fmts if isinstance(fmts, list) else [fmts] if fmts else []:
        name = fmt if isinstance(fmt, str) else next(iter(fmt), "")
        fmt_type = FORMAT_TYPES.get(name, fmt_type)
    if fmt_type:
        types, values = [fmt_type], None
    if not types:
        return [], None
    if node.get("default") is not None:
        types = sorted(set(types) | {type_name(node["default"])})
        if values is not None:
            values.append(node["default"])
    if node.get("keep_null"):
        types = sorted(set(types) | {"null"})
    return types, values


def _literals(node: Any) -> list[str]:
    """The literal texts a ``vars`` expression can give (hosts from tables, cases, defaults)."""
    out: list[str] = []
    if isinstance(node, str):
        try:
            parsed = parse(node) if "{{" not in node else None
        except ExprSyntaxError:
            parsed = None
        if parsed is not None:
            out += [str(op.literal) for op in parsed.operands if op.path is None and op.literal is not None]
    elif isinstance(node, dict):
        if isinstance(node.get("table"), dict):
            out += [str(v) for v in node["table"].values() if not isinstance(v, dict | list)]
        if "default" in node and not isinstance(node["default"], dict | list) and node["default"] is not None:
            out.append(str(node["default"]))
        if "value" in node and isinstance(node["value"], str):
            out.append(node["value"])
        for key in ("then", "else", "first"):
            if key in node:
                items = node[key] if isinstance(node[key], list) else [node[key]]
                for item in items:
                    out += _literals(item)
        if isinstance(node.get("cases"), dict):
            for v in node["cases"].values():
                out += _literals(v)
    return list(dict.fromkeys(out))


def _template_names(template: str) -> list[tuple[str, str]]:
    """(text of the token, the path it reads) for each ``{{ }}`` part of a template."""
    out = []
    for m in re.finditer(r"\{\{(.*?)\}\}", template):
        try:
            p = parse(m.group(1))
        except ExprSyntaxError:
            continue
        path = next((op.path for op in p.operands if op.path is not None), None)
        name = (path.root + "." + ".".join(path.keys)) if path is not None and path.static else "value"
        out.append((m.group(0), name))
    return out


def _expand_url(template: str, spec: DestinationSpec) -> tuple[str, list[str], str | None]:
    """(URL with ``{name}`` placeholders, servers it can resolve to, path) for an endpoint URL template."""
    tokens = _template_names(template)
    generic = template
    for text, name in tokens:
        generic = generic.replace(text, "{" + name.split(".")[-1] + "}", 1)
    if template.lstrip().startswith("{{") and tokens and not tokens[0][1].startswith("vars."):
        return generic, [], None  # a URL the user supplies (webhooks): no vendor server
    var_names = sorted({name[5:] for _, name in tokens if name.startswith("vars.")})
    choices = [(_literals(spec.vars.get(n)) or ["{" + n + "}"]) for n in var_names]
    servers: list[str] = []
    path: str | None = None
    for combo in itertools.islice(itertools.product(*choices), 64):
        chosen = dict(zip(var_names, combo, strict=True))
        url = template
        for text, name in tokens:
            value = chosen.get(name[5:]) if name.startswith("vars.") else None
            url = url.replace(text, value if value is not None else "{" + name.split(".")[-1] + "}", 1)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme and parts.netloc and "{" not in parts.netloc:
            servers.append(f"{parts.scheme}://{parts.netloc}")
            path = path or (parts.path or "/")
    return generic, list(dict.fromkeys(servers)), path


def _auth(spec: DestinationSpec) -> AuthUse:
    a = spec.auth
    if a.type in ("basic", "bearer"):
        return AuthUse(type=a.type)
    if a.type in ("header", "query"):
        return AuthUse(type=a.type, name=a.name or ("Authorization" if a.type == "header" else "api_key"))
    return AuthUse()


def _endpoint_auth(ep: Endpoint) -> AuthUse | None:
    """An endpoint that sets its own Authorization header (e.g. HTTP Basic from a template filter)."""
    for k, v in ep.headers.items():
        if k.lower() == "authorization":
            scheme = v.strip().split(" ", 1)[0].lower()
            if scheme in ("basic", "bearer"):
                return AuthUse(type=scheme)  # type: ignore[arg-type]
            return AuthUse(type="header", name=k)
    return None


def _responses(spec: DestinationSpec) -> list[ResponseUse]:
    by_status: dict[str, ResponseUse] = {}
    for rule in spec.responses:
        w = rule.when
        statuses = [str(s) for s in (w.status or [])] or ([w.status_class] if w.status_class else ["default"])
        reads = _rule_reads(rule)
        for st in statuses:
            r = by_status.setdefault(st, ResponseUse(status=st))
            r.reads = list(dict.fromkeys(r.reads + reads))
    return list(by_status.values())


def _rule_reads(rule: Any) -> list[str]:
    """Response fields one rule looks at: its conditions, the reason it quotes, the items it names."""
    w = rule.when
    paths = [w.body_path] if w.body_path else []
    paths += [c.path for c in w.body]
    reads = [dotted_to_pointer(p) for p in paths if p and p != "$"]
    if w.body_regex:
        reads += ["/" + n for n in re.findall(r'"([A-Za-z_$][\w$-]*)"(?:\\s\*)?:', w.body_regex)]
    reads += [dotted_to_pointer(p) for p in rule.reason_path]
    if rule.per_job is not None:
        reads += [dotted_to_pointer(p) for p in [*rule.per_job.failed, *rule.per_job.by_value]]
    return list(dict.fromkeys(reads))


def delivery_envelope(ep: Endpoint) -> str:
    """Where delivery puts a built request body on the wire (``batch.wrap``: in a list under a key).

    Cassettes record bodies before delivery, so recorded fields are moved under this prefix too.
    """
    if ep.batch is not None and ep.batch.wrap:
        return dotted_to_pointer(ep.batch.wrap) + "/*"
    return ""


def _envelope(ep: Endpoint) -> str:
    """Where one mapped body sits on the wire: the delivery envelope, then ``json_array``'s list."""
    return delivery_envelope(ep) + ("/*" if ep.body_format == "json_array" else "")


def _hoisted(ep: Endpoint, prefix: str) -> list[str]:
    """Pointers (``/api_key``) of the keys ``batch.hoist`` moves into the envelope of wrapped bodies."""
    if not prefix or ep.batch is None or not ep.batch.wrap:
        return []
    return [dotted_to_pointer(k) for k in ep.batch.hoist]


def _param(name: str, template: str, location: str, source: str) -> ParamUse:
    """A header or query parameter; its value is known when the template is a constant."""
    static = "{{" not in template
    return ParamUse(
        pointer=name,
        location=location,
        types=["string"],  # type: ignore[arg-type]
        values=[template] if static else None,
        sources=[source],
    )


def footprint_from_spec(spec: DestinationSpec) -> Footprint:
    """The footprint ``spec`` declares (see the module docstring for what is derived)."""
    fp = Footprint(name=spec.name, vendor=spec.display_name, auth=_auth(spec))
    if spec.openapi is not None:
        fp.description = DescriptionPin(
            source=spec.openapi.source, document=spec.openapi.document, version=spec.openapi.version
        )
    responses = _responses(spec)
    ops: dict[str, OperationUse] = {}
    for name, ep in spec.endpoints.items():
        url, servers, path = _expand_url(ep.url, spec)
        method = ep.method
        if ep.openapi_operation:
            m, _, p = ep.openapi_operation.strip().partition(" ")
            method, path = m.upper(), p.strip()
        op = OperationUse(
            id=name,
            method=method,
            path=path,
            url=url,
            servers=servers,
            content_type=_CONTENT_TYPES.get(ep.body_format),
            responses=[r.model_copy(deep=True) for r in responses],
            sources=[f"spec: endpoints.{name}"],
        )
        own_auth = _endpoint_auth(ep)
        for k, v in ep.headers.items():
            if k.lower() == "authorization" and own_auth is not None:
                continue
            if k.lower() == "content-type":
                op.content_type = v if "{{" not in v else op.content_type
                continue
            op.params.append(_param(k, v, "header", f"spec: endpoints.{name}.headers"))
        for k, v in ep.params.items():
            op.params.append(_param(k, v, "query", f"spec: endpoints.{name}.params"))
        if spec.auth.type == "query" and spec.auth.name:
            op.params.append(
                ParamUse(pointer=spec.auth.name, location="query", types=["string"], sources=["spec: auth"])
            )
        if own_auth is not None and own_auth != fp.auth:
            op.auth = own_auth
        ops[name] = op
    _mapping_fields(spec, ops)
    _contract_and_batching(spec, ops)
    for op in ops.values():
        op.body = merge_fields(op.body, [])
    fp.operations = list(ops.values())
    return fp


_SETTING = re.compile(r"^\s*settings\.([A-Za-z_][A-Za-z0-9_]*)\s*$")


def _condition_text(when: Any) -> str:
    """A condition as a reader names it: ``setting X=true|false`` for a plain setting flag, else its JSON."""
    if isinstance(when, str) and (m := _SETTING.match(when)):
        return f"setting {m.group(1)}=true"
    if isinstance(when, dict) and list(when) == ["not"] and isinstance(when["not"], str):
        if m := _SETTING.match(when["not"]):
            return f"setting {m.group(1)}=false"
    return json.dumps(when, sort_keys=True)


def _conditions(node: dict) -> list[str]:
    return [_condition_text(node["when"])] if "when" in node else []


_NAMED = re.compile(r"^\s*(let|vars)\.([A-Za-z_][A-Za-z0-9_]*)\s*$")


def _named(node: Any, scope: dict[str, Any]) -> Any:
    """The definition a bare ``let.X`` / ``vars.X`` reference stands for (None: not a bare reference)."""
    m = _NAMED.match(node) if isinstance(node, str) else None
    return scope.get(f"{m.group(1)}.{m.group(2)}") if m else None


def _body_fields(
    node: Any,
    pointer: str,
    when: list[str],
    source: str,
    spec: DestinationSpec,
    scope: dict[str, Any] | None = None,
    depth: int = 0,
) -> list[FieldUse]:
    """Leaf fields of a body expression, as pointers with types; unknown shapes stay one opaque field.

    Named values (``let``, ``vars``) and spreads of objects the spec writes out (``"...x": {if: ...}``)
    are followed, so fields a shared block sends are known from the spec alone; a spread of event data
    (``"...": properties``) adds fields only the data names, which the observed footprint covers.
    """
    scope = scope or {}
    if depth > 24:
        return []
    named = _named(node, scope)
    if named is not None:
        return _body_fields(named, pointer, when, source, spec, scope, depth + 1)
    if isinstance(node, dict):
        kind = next((k for k in PRIMARY if k in node), None)
        cond = _conditions(node)
        if kind is None or kind == "object":
            fields = node["object"] if kind == "object" else node
            out: list[FieldUse] = []
            for key, sub in fields.items():
                if not isinstance(key, str):
                    continue
                if key.startswith("..."):
                    out += _spread_fields(sub, pointer, when + cond, f"{source}.{key}", spec, scope, depth)
                    continue
                parts = ["*" if "{{" in p else p for p in _KEY_DOTS.split(key)]
                out += _body_fields(sub, pointer + dotted_to_pointer(".".join(parts)), when + cond,
                                    f"{source}.{key}", spec, scope, depth + 1)  # fmt: skip
            return out
        if kind == "array":
            return [f for i, item in enumerate(node["array"])
                    for f in _body_fields(item, pointer + "/*", when + cond, f"{source}[{i}]",
                                          spec, scope, depth + 1)]  # fmt: skip
        if kind == "each" and "map" in node:
            return _body_fields(
                node["map"], pointer + "/*", when + cond, f"{source}.map", spec, scope, depth + 1
            )
        if kind == "if":
            return [f for branch in ("then", "else") if branch in node
                    for f in _body_fields(node[branch], pointer, when + cond, f"{source}.{branch}",
                                          spec, scope, depth + 1)]  # fmt: skip
        if kind == "from" and _named(node["from"], scope) is not None and not node.get("format"):
            return _body_fields(node["from"], pointer, when + cond, source, spec, scope, depth + 1)
    if isinstance(node, list):
        return [f for i, item in enumerate(node)
                for f in _body_fields(item, pointer + "/*", when, f"{source}[{i}]", spec, scope,
                                      depth + 1)]  # fmt: skip
    types, values = field_types(node, spec)
    return [FieldUse(pointer=pointer, types=types, values=values, when=list(when), sources=[source])]


def _spread_fields(
    node: Any, pointer: str, when: list[str], source: str, spec: DestinationSpec, scope: dict, depth: int
) -> list[FieldUse]:
    """Fields a spread adds at ``pointer``: those of an object the spec writes (or names), none for data."""
    named = _named(node, scope)
    if named is not None:
        node = named
    if not isinstance(node, dict):
        return []  # event data spread: its keys are known only from the data
    kind = next((k for k in PRIMARY if k in node), None)
    if kind == "from" and isinstance(node.get("from"), str) and _named(node["from"], scope) is not None:
        cond = _conditions(node)
        return _spread_fields(node["from"], pointer, when + cond, source, spec, scope, depth + 1)
    if kind not in (None, "object", "if"):
        return []
    if kind == "if":
        cond = _conditions(node)
        return [f for branch in ("then", "else") if branch in node
                for f in _spread_fields(node[branch], pointer, when + cond, f"{source}.{branch}", spec,
                                        scope, depth + 1)]  # fmt: skip
    return _body_fields(node, pointer, when, source, spec, scope, depth + 1)


def _scope(spec: DestinationSpec, let: dict[str, Any]) -> dict[str, Any]:
    """What ``vars.X`` and ``let.X`` name for one event type (its own ``let`` shadows the spec's)."""
    out = {f"vars.{k}": v for k, v in spec.vars.items()}
    out.update({f"let.{k}": v for k, v in spec.let.items()})
    out.update({f"let.{k}": v for k, v in let.items()})
    return out


def _mapping_fields(spec: DestinationSpec, ops: dict[str, OperationUse]) -> None:
    per_endpoint: dict[str, list[tuple[str, FieldUse]]] = {}
    for etype, m in spec.mappings.items():
        scope = _scope(spec, m.let)
        kind = "requests" if m.requests is not None else "cases"
        for i, r in enumerate(m.request_specs):
            if r.body is None:
                continue
            prefix = _envelope(spec.endpoints[r.endpoint])
            when = [_condition_text(r.when)] if r.when is not None else []
            source = f"spec: mappings.{etype}.{kind}[{i}].body"
            hoisted = _hoisted(spec.endpoints[r.endpoint], prefix)
            for f in _body_fields(r.body, prefix, when, source, spec, scope):
                for key in hoisted:  # batch.hoist: the key travels in the envelope, not in each element
                    if f.pointer == prefix + key or f.pointer.startswith(prefix + key + "/"):
                        f.pointer = f.pointer[len(prefix) :]
                per_endpoint.setdefault(r.endpoint, []).append((etype, f))
    for endpoint, entries in per_endpoint.items():
        op = ops[endpoint]
        etypes = {e for e, _ in entries}
        seen: dict[str, FieldUse] = {}
        sent_by: dict[str, set[str]] = {}
        for etype, entry in entries:
            sent_by.setdefault(entry.pointer, set()).add(etype)
            cur = seen.get(entry.pointer)
            if cur is None:
                seen[entry.pointer] = entry
                continue
            cur.types = sorted(set(cur.types) | set(entry.types)) if cur.types and entry.types else []
            cur.values = None if cur.values is None or entry.values is None else cur.values + entry.values
            cur.when = [] if not cur.when or not entry.when else sorted(set(cur.when) | set(entry.when))
            cur.sources.append(entry.sources[0])
        for pointer, f in seen.items():
            missing = etypes - sent_by[pointer]
            if missing:
                f.when = sorted(set(f.when) | {"event types: " + ", ".join(sorted(sent_by[pointer]))})
        op.body.extend(seen.values())


def _contract_and_batching(spec: DestinationSpec, ops: dict[str, OperationUse]) -> None:
    contract = spec.contract.required if spec.contract else {}
    for endpoint, paths in contract.items():
        op = ops.get(endpoint)
        if op is None:
            continue
        prefix = _envelope(spec.endpoints[endpoint])  # contract paths are checked per built body
        hoisted = _hoisted(spec.endpoints[endpoint], prefix)
        for p in paths:
            pointer = dotted_to_pointer(p)
            if not any(pointer == k or pointer.startswith(k + "/") for k in hoisted):
                pointer = prefix + pointer
            op.body.append(FieldUse(pointer=pointer, sources=[f"spec: contract.required.{endpoint}"]))
    for name, ep in spec.endpoints.items():
        lists = list((ep.batch.lists if ep.batch else {}) or {})
        if spec.batching.list_path:
            lists.append(spec.batching.list_path)
        for path in lists:
            ops[name].body.append(
                FieldUse(
                    pointer=delivery_envelope(ep) + dotted_to_pointer(path),
                    types=["array"],
                    sources=[f"spec: endpoints.{name}.batch"],
                )
            )


# -- the other facts drift tooling reads from a spec (live drift, payload checks, the weekly job) ----
def setting_names(spec: DestinationSpec) -> list[str]:
    return list(((spec.settings or {}).get("properties") or {}).keys())


def secret_settings(spec: DestinationSpec) -> list[str]:
    return spec.secret_settings()


def response_read_pointers(spec: DestinationSpec) -> set[str]:
    """Response fields the spec's response rules read (conditions, quoted reasons, named items)."""
    return {p for r in spec.responses for p in _rule_reads(r)}


def openapi_operations(spec: DestinationSpec) -> dict[str, str]:
    """Endpoint name -> the vendor operation ('METHOD /path') it implements, where the spec says."""
    return {n: ep.openapi_operation for n, ep in spec.endpoints.items() if ep.openapi_operation}


def endpoint_envelope(spec: DestinationSpec, endpoint: str) -> str:
    """``delivery_envelope`` of the endpoint called ``endpoint`` ("" for an unknown name)."""
    ep = spec.endpoints.get(endpoint)
    return delivery_envelope(ep) if ep is not None else ""
