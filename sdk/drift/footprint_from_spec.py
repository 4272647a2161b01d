"""The part of a connector's footprint its ``spec.yaml`` declares.

Everything here reads the spec model (``sdk.spec.model.DestinationSpec``) and nothing else, so a change
of the spec language means adapting this one module. What it derives:

* one operation per endpoint: method, URL template split into the servers it can resolve to (template
  vars expanded over their ``map`` and ``default``) and a path with ``{name}`` placeholders, the vendor
  operation it implements (``openapi_operation``), content type from ``body_format``, static headers and
  query parameters;
* request fields from the mappings (``common`` + per event type), including those only some settings
  (``if_setting``) or event types produce, placed inside the body envelope (``json_array`` → ``/*``,
  ``batch.wrap`` → ``/<wrap>/*``); the contract's required paths and batching lists;
* the JSON types each field can carry (constant values, formats, settings' schema types, defaults,
  ``keep_null``); unknown when the value comes straight from the event;
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
from sdk.spec.model import DestinationSpec, Endpoint, Field_

_TOKEN = re.compile(r"\{\{\s*([^}|]+?)\s*((?:\|\s*[a-z_0-9]+\s*)*)\}\}")
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


def field_types(f: Field_, spec: DestinationSpec) -> tuple[list[str], list[Any] | None]:
    """The JSON types (empty: unknown) and, for constants, the values a field can carry."""
    types: set[str] = set()
    values: list[Any] | None = None
    unknown = False
    if f.value is not None:
        tokens = _TOKEN.findall(f.value) if isinstance(f.value, str) else []
        if not tokens:
            types.add(type_name(f.value))
            values = [f.value]
        elif len(tokens) == 1 and _TOKEN.fullmatch(f.value.strip()) and not tokens[0][1].strip():
            root, _, rest = tokens[0][0].partition(".")
            settings_types = _setting_types(spec, rest) if root == "settings" else []
            if settings_types:
                types.update(settings_types)
            else:
                unknown = True
        else:
            types.add("string")
    else:
        for src in f.from_:
            if src.startswith("$settings."):
                st = _setting_types(spec, src[len("$settings.") :])
                types.update(st)
                unknown = unknown or not st
            elif src in ("$now", "$message_id"):
                types.add("string")
            else:
                unknown = True
    fmt_type = None
    for fmt in f.format:
        name = fmt if isinstance(fmt, str) else next(iter(fmt), "")
        fmt_type = FORMAT_TYPES.get(name, fmt_type)
    if fmt_type:
        types, unknown = {fmt_type}, False
    if unknown:
        return [], None
    if f.default is not None:
        types.add(type_name(f.default))
        if values is not None:
            values.append(f.default)
    if f.keep_null:
        types.add("null")
    return sorted(types), values


def _expand_url(template: str, spec: DestinationSpec) -> tuple[str, list[str], str | None]:
    """(URL with ``{name}`` placeholders, servers it can resolve to, path) for an endpoint URL template."""
    generic = _TOKEN.sub(lambda m: "{" + m.group(1).split(".")[-1] + "}", template)
    if template.lstrip().startswith("{{"):
        head = _TOKEN.match(template.lstrip())
        if head and not head.group(1).startswith("vars."):
            return generic, [], None  # a URL the user supplies (webhooks): no vendor server
    var_names = sorted({m.group(1)[5:] for m in _TOKEN.finditer(template) if m.group(1).startswith("vars.")})
    choices = []
    for name in var_names:
        var = spec.vars.get(name)
        vals = [str(v) for v in (var.map.values() if var else [])] + (
            [str(var.default)] if var and var.default is not None else []
        )
        choices.append(list(dict.fromkeys(vals)) or ["{" + name + "}"])
    servers: list[str] = []
    path: str | None = None
    for combo in itertools.islice(itertools.product(*choices), 64):
        chosen = dict(zip(var_names, combo, strict=True))

        def sub(m: re.Match[str], chosen: dict[str, str] = chosen) -> str:
            expr = m.group(1)
            if expr.startswith("vars.") and expr[5:] in chosen:
                return chosen[expr[5:]]
            return "{" + expr.split(".")[-1] + "}"

        url = _TOKEN.sub(sub, template)
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
        reads: list[str] = []
        if w.body_path:
            reads.append(dotted_to_pointer(w.body_path))
        if w.body_regex:
            reads += ["/" + n for n in re.findall(r'"([A-Za-z_$][\w$-]*)"(?:\\s\*)?:', w.body_regex)]
        for st in statuses:
            r = by_status.setdefault(st, ResponseUse(status=st))
            r.reads = list(dict.fromkeys(r.reads + reads))
    return list(by_status.values())


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


def _mapping_fields(spec: DestinationSpec, ops: dict[str, OperationUse]) -> None:
    per_endpoint: dict[str, list[str]] = {}
    for etype, m in spec.mappings.items():
        per_endpoint.setdefault(m.endpoint, []).append(etype)
    for endpoint, etypes in per_endpoint.items():
        op = ops[endpoint]
        prefix = _envelope(spec.endpoints[endpoint])
        seen: dict[str, FieldUse] = {}
        sent_by: dict[str, set[str]] = {}
        for etype in etypes:
            fields: dict[str, Any] = dict(spec.common.body) if spec.common else {}
            fields.update(spec.mappings[etype].body)  # type: ignore[index]
            for dest, f in fields.items():
                if isinstance(f, str):
                    f = Field_.model_validate({"from": [f]})
                pointer = prefix + dotted_to_pointer(dest, array_marker="\0")
                types, values = field_types(f, spec)
                when = [f"setting {k}={json.dumps(v)}" for k, v in (f.if_setting or {}).items()]
                entry = FieldUse(
                    pointer=pointer,
                    types=types,
                    values=values,
                    when=when,
                    sources=[f"spec: mappings.{etype}.{dest}"],
                )
                sent_by.setdefault(pointer, set()).add(etype)
                cur = seen.get(pointer)
                if cur is None:
                    seen[pointer] = entry
                else:
                    cur.types = sorted(set(cur.types) | set(types))
                    cur.values = None if cur.values is None or values is None else cur.values + values
                    cur.when = [] if not cur.when or not when else sorted(set(cur.when) | set(when))
                    cur.sources.append(entry.sources[0])
        for pointer, f in seen.items():
            missing = set(etypes) - sent_by[pointer]
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
        for p in paths:
            op.body.append(
                FieldUse(
                    pointer=prefix + dotted_to_pointer(p), sources=[f"spec: contract.required.{endpoint}"]
                )
            )
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
    """Response fields the spec's response rules read (``body_path``), as pointers."""
    return {dotted_to_pointer(r.when.body_path) for r in spec.responses if r.when.body_path}


def openapi_operations(spec: DestinationSpec) -> dict[str, str]:
    """Endpoint name -> the vendor operation ('METHOD /path') it implements, where the spec says."""
    return {n: ep.openapi_operation for n, ep in spec.endpoints.items() if ep.openapi_operation}


def endpoint_envelope(spec: DestinationSpec, endpoint: str) -> str:
    """``delivery_envelope`` of the endpoint called ``endpoint`` ("" for an unknown name)."""
    ep = spec.endpoints.get(endpoint)
    return delivery_envelope(ep) if ep is not None else ""
