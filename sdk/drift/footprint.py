"""A footprint: what a connector depends on at a vendor, and nothing else.

Drift is judged against it, so that a vendor change outside it raises no alarm. It lists the operations
called (method, path template, servers, content type), every request field the connector can send (JSON
pointers, ``*`` for any array element, with the JSON types it sends and the condition under which it
sends them), the query/header parameters, the response fields and statuses it reads or classifies, and
how it authenticates. Footprints are built from a connector (``sdk.drift.build``) or written by hand as
YAML, where compact forms keep them short::

    footprint: 1
    name: acme-events
    auth: {type: bearer}
    description: {source: "https://acme.dev/openapi.json", document: acme-2024-01.json}
    operations:
      - id: send_event
        operation: POST /v1/events          # the path key in the vendor description
        server: https://api.acme.dev
        content_type: application/json
        params: {"header:Acme-Version": {type: string, values: ["2024-01"]}}
        body:
          /name: string
          /time: [integer]
          /properties: {type: object, when: "track events"}
        responses: {"202": [/id], "4xx": [/errors/*/code]}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sdk.errors import SpecError

JSON_TYPES = ("string", "integer", "number", "boolean", "object", "array", "null")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _type_list(v: Any) -> Any:
    if v is None:
        return []
    if isinstance(v, str):
        return [v]
    return v


class FieldUse(_Strict):
    """One place in a request the connector may fill."""

    pointer: str = Field(
        description="JSON pointer into the body (or the parameter name); `*`: any array element"
    )
    types: list[str] = Field(
        default_factory=list, alias="type", description="JSON types sent; empty: unknown"
    )
    values: list[Any] | None = Field(default=None, description="the only values sent, when known")
    when: list[str] = Field(
        default_factory=list, description="sent only under these conditions; empty: always"
    )
    sources: list[str] = Field(default_factory=list, description="where this entry was derived from")

    @field_validator("types", mode="before")
    @classmethod
    def _types(cls, v: Any) -> Any:
        v = _type_list(v)
        bad = [t for t in v if t not in JSON_TYPES]
        if bad:
            raise ValueError(f"unknown JSON type(s) {bad}; use {', '.join(JSON_TYPES)}")
        return v

    @field_validator("when", mode="before")
    @classmethod
    def _when(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else (v or [])

    @field_validator("pointer")
    @classmethod
    def _pointer(cls, v: str) -> str:
        if v and not v.startswith("/"):
            raise ValueError(f"pointer {v!r} must start with '/' (JSON pointer), e.g. /data/attributes/email")
        return v


class ParamUse(FieldUse):
    """A query, header or path parameter; ``pointer`` holds its name."""

    location: Literal["header", "query", "path", "cookie"] = Field(alias="in")

    @field_validator("pointer")
    @classmethod
    def _pointer(cls, v: str) -> str:
        return v


class ResponseUse(_Strict):
    """A response the connector reads: its status (``200``, ``2xx``, ``default``) and the fields read."""

    status: str
    reads: list[str] = Field(default_factory=list, description="JSON pointers read from the body")
    classifies: bool = Field(default=True, description="the connector's response rules look at this status")


class AuthUse(_Strict):
    """How the credential travels: HTTP basic, a bearer token, a named header or query parameter."""

    type: Literal["none", "basic", "bearer", "header", "query"] = "none"
    name: str | None = None


class OperationUse(_Strict):
    id: str
    method: str = "POST"
    path: str | None = Field(
        default=None, description="path key in the vendor description (fragment allowed)"
    )
    url: str | None = Field(default=None, description="full URL template, `{x}` for parts filled per request")
    servers: list[str] = Field(default_factory=list)
    content_type: str | None = None
    operation_id: str | None = None
    auth: AuthUse | None = Field(default=None, description="when it differs from the footprint's auth")
    body: list[FieldUse] = Field(default_factory=list)
    params: list[ParamUse] = Field(default_factory=list)
    responses: list[ResponseUse] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _compact(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        op = data.pop("operation", None)
        if isinstance(op, str):
            method, _, path = op.strip().partition(" ")
            data.setdefault("method", method.upper())
            data.setdefault("path", path.strip())
        server = data.pop("server", None)
        if isinstance(server, str):
            data["servers"] = [server, *(data.get("servers") or [])]
        if isinstance(data.get("body"), dict):
            data["body"] = [_field(p, spec) for p, spec in data["body"].items()]
        if isinstance(data.get("params"), dict):
            params = []
            for key, spec in data["params"].items():
                loc, sep, name = str(key).partition(":")
                if not sep:
                    raise ValueError(f"parameter {key!r} must be written 'header:Name' or 'query:name'")
                params.append({**_field("/" + name, spec), "pointer": name, "in": loc})
            data["params"] = params
        if isinstance(data.get("responses"), dict):
            data["responses"] = [
                {"status": str(st), **({"reads": spec} if isinstance(spec, list) else (spec or {}))}
                for st, spec in data["responses"].items()
            ]
        return data

    @property
    def key(self) -> str:
        return f"{self.method.upper()} {self.path or self.url or '?'}"


def _field(pointer: str, spec: Any) -> dict[str, Any]:
    if spec is None:
        return {"pointer": pointer}
    if isinstance(spec, (str, list)):
        return {"pointer": pointer, "type": spec}
    if isinstance(spec, dict):
        return {"pointer": pointer, **spec}
    raise ValueError(f"body entry {pointer!r}: give a type, a list of types, or a mapping")


class DescriptionPin(_Strict):
    """The vendor description the footprint was written against."""

    source: str | None = Field(default=None, description="URL, or 'owner/repo path' on GitHub")
    document: str | None = Field(default=None, description="local copy, relative to the footprint file")
    version: str | None = None
    sha256: str | None = None


class Footprint(_Strict):
    footprint: int = 1
    name: str
    vendor: str | None = None
    notes: str = ""
    description: DescriptionPin | None = None
    auth: AuthUse = Field(default_factory=AuthUse)
    operations: list[OperationUse] = Field(default_factory=list)
    # Where relative paths (description.document) resolve from; not part of the file.
    base_dir: str | None = Field(default=None, exclude=True)

    def operation(self, op_id: str) -> OperationUse | None:
        return next((o for o in self.operations if o.id == op_id), None)

    def document_path(self) -> Path | None:
        if not self.description or not self.description.document:
            return None
        p = Path(self.description.document)
        return p if p.is_absolute() else Path(self.base_dir or ".") / p

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=False, exclude_defaults=True, exclude={"base_dir"})


def load_footprint(path: Path) -> Footprint:
    """Read a hand-written footprint (YAML or JSON); errors name the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SpecError(f"{path}: cannot read footprint: {e}") from e
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a footprint is a mapping with name, auth and operations")
    try:
        fp = Footprint.model_validate(raw)
    except ValidationError as e:
        lines = [f"  {'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:10]]
        raise SpecError(f"{path}: invalid footprint:\n" + "\n".join(lines)) from e
    fp.base_dir = str(path.resolve().parent)
    return fp


def dump_footprint(fp: Footprint, as_json: bool = False) -> str:
    data = fp.to_dict()
    if as_json:
        return json.dumps(data, indent=2, ensure_ascii=False)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)


def merge_fields(a: list[FieldUse], b: list[FieldUse], conditions_from_a: bool = False) -> list[FieldUse]:
    """Fields of both lists, one per pointer. ``conditions_from_a``: ``b`` knows nothing about when a
    field is sent (recordings), so a field of ``a`` keeps its conditions."""
    out: dict[tuple[str, str], FieldUse] = {}
    from_a: set[tuple[str, str]] = set()
    for i, f in enumerate([*a, *b]):
        key = (getattr(f, "location", "body"), f.pointer)
        cur = out.get(key)
        if cur is None:
            out[key] = f.model_copy(deep=True)
            if i < len(a):
                from_a.add(key)
            continue
        if conditions_from_a and i >= len(a) and key in from_a:
            f = f.model_copy(update={"when": cur.when or ["(recorded)"]})
        cur.types = sorted(set(cur.types) | set(f.types))  # empty (unknown) only when no source knows
        if cur.values is not None and f.values is not None:
            cur.values = cur.values + [v for v in f.values if v not in cur.values]
        else:
            cur.values = None
        cur.when = [] if not cur.when or not f.when else sorted(set(cur.when) | set(f.when))
        cur.sources = list(dict.fromkeys(cur.sources + f.sources))
    return sorted(out.values(), key=lambda f: f.pointer)


def merge_footprints(base: Footprint, extra: Footprint) -> Footprint:
    """``extra`` (e.g. a hand-written file) added to ``base``: operations matched by id."""
    out = base.model_copy(deep=True)
    if extra.auth.type != "none":
        out.auth = extra.auth
    if extra.description is not None:
        out.description = extra.description
        out.base_dir = extra.base_dir
    for op in extra.operations:
        cur = out.operation(op.id)
        if cur is None:
            out.operations.append(op.model_copy(deep=True))
            continue
        for attr in ("path", "url", "content_type", "operation_id"):
            if getattr(op, attr):
                setattr(cur, attr, getattr(op, attr))
        cur.method = op.method or cur.method
        cur.servers = list(dict.fromkeys(cur.servers + op.servers))
        cur.body = merge_fields(cur.body, op.body)
        cur.params = merge_fields(cur.params, op.params)  # type: ignore[assignment]
        statuses = {r.status: r for r in cur.responses}
        for r in op.responses:
            if r.status in statuses:
                statuses[r.status].reads = list(dict.fromkeys(statuses[r.status].reads + r.reads))
            else:
                cur.responses.append(r.model_copy())
        cur.sources = list(dict.fromkeys(cur.sources + op.sources))
    return out


def render_footprint(fp: Footprint) -> str:
    """A footprint for people: one block per operation, one line per field."""
    lines = [f"footprint {fp.name}" + (f" ({fp.vendor})" if fp.vendor else "")]
    lines.append(f"  auth: {fp.auth.type}" + (f" {fp.auth.name}" if fp.auth.name else ""))
    if fp.description:
        d = fp.description
        bits = [
            x
            for x in (d.source, d.version and f"version {d.version}", d.document and f"copy {d.document}")
            if x
        ]
        lines.append(f"  description: {', '.join(bits)}")
    for op in fp.operations:
        lines.append(f"  {op.key}  [{op.id}]")
        if op.servers:
            lines.append(f"    servers: {', '.join(op.servers)}")
        if op.content_type:
            lines.append(f"    content type: {op.content_type}")
        if op.auth:
            lines.append(f"    auth: {op.auth.type}" + (f" {op.auth.name}" if op.auth.name else ""))
        for p in op.params:
            lines.append(f"    {p.location:6} {p.pointer:40} {_types(p)}{_cond(p)}")
        for f in op.body:
            lines.append(f"    body   {f.pointer:40} {_types(f)}{_cond(f)}")
        for r in op.responses:
            reads = ", ".join(r.reads) or "status only"
            lines.append(f"    answer {r.status:40} {reads}" + ("" if r.classifies else "  (recorded)"))
    return "\n".join(lines)


def _types(f: FieldUse) -> str:
    t = "|".join(f.types) or "?"
    if f.values is not None:
        t += " in " + json.dumps(f.values, ensure_ascii=False)[:60]
    return t


def _cond(f: FieldUse) -> str:
    return f"  when {'; '.join(f.when)}" if f.when else ""


def whole_operations_footprint(doc: Any, operations: list[str]) -> Footprint:
    """A footprint using *everything* ``doc`` declares for ``operations`` (``sluice openapi diff``)."""
    from sdk.drift.operations import locate, parse_operation, pick_body
    from sdk.drift.schema import Flattener, enumerate_fields, facts

    fl = Flattener()
    fp = Footprint(name=f"{doc.title or 'description'} (all fields)")
    for i, op in enumerate(operations):
        method, path = parse_operation(op)
        view = locate(doc, method, path).view
        if view is None:
            raise SpecError(f"operation {op!r} is not in {doc.location}")
        use = OperationUse(id=f"op{i + 1}", method=method.upper(), path=view.path, servers=view.servers[:1])
        picked = pick_body(view.bodies, None)
        if picked is not None:
            use.content_type = picked[0]
            for pointer, v in enumerate_fields(fl, fl.flatten(*picked[1])).items():
                use.body.append(FieldUse(pointer=pointer, types=sorted(facts(v.branches).types or [])))
        for (loc, _), p in view.params.items():
            if loc in ("header", "query", "cookie"):
                use.params.append(ParamUse(pointer=p.name, location=loc))  # type: ignore[arg-type]
        for status in view.responses:
            use.responses.append(ResponseUse(status=status))
        fp.operations.append(use)
    return fp
