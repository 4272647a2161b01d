"""JSON Schema as vendors write it, reduced to what drift comparison needs.

A schema is *flattened* into alternatives ("branches"): ``$ref`` followed (across files, siblings of
``$ref`` honoured as an ``allOf``, recursion cut), ``allOf`` merged, ``oneOf``/``anyOf`` expanded, and
``nullable`` / ``x-nullable`` / OpenAPI 3.1 type arrays folded into one set of types. A field then
*exists* when some branch declares it, and its constraints are the loosest over the branches that do,
because a value is accepted when any alternative accepts it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sdk.drift.document import Document

Node = tuple[Any, Document]

# Upper bounds (max*) narrow when they shrink; lower bounds (min*) narrow when they grow.
UPPER = ("maxLength", "maximum", "exclusiveMaximum", "maxItems", "maxProperties")
LOWER = ("minLength", "minimum", "exclusiveMinimum", "minItems", "minProperties")
EXACT = ("pattern", "format", "multipleOf")
_MAX_BRANCHES = 32
_DOC_KEYS = {"description", "summary", "example", "examples", "title", "externalDocs", "$comment"}


def canon(value: Any) -> str:
    """A value as comparable text, so enum comparisons ignore order and YAML/JSON spelling."""
    return json.dumps(value, sort_keys=True, default=str)


@dataclass
class Branch:
    """One alternative of a schema, with ``allOf`` parts merged into it."""

    types: frozenset[str] | None = None  # None: any type
    props: dict[str, list[Node]] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    additional: Any = None  # None: open; False: closed; a Node: schema of any other key
    pattern_props: list[tuple[str, Node]] = field(default_factory=list)
    items: list[Node] = field(default_factory=list)
    enum: frozenset[str] | None = None
    constraints: dict[str, Any] = field(default_factory=dict)
    deprecated: bool = False

    def is_object_like(self) -> bool:
        return self.types is None or "object" in self.types


ANY = Branch()


def _types_of(schema: dict[str, Any]) -> frozenset[str] | None:
    t = schema.get("type")
    if isinstance(t, str):
        out = {t}
    elif isinstance(t, list):
        out = {x for x in t if isinstance(x, str)}
    else:
        # No `type`: infer from the keywords, which is how vendors write allOf parts.
        if "properties" in schema or "required" in schema or "additionalProperties" in schema:
            out = {"object"}
        elif "items" in schema:
            out = {"array"}
        else:
            return None
    if schema.get("nullable") is True or schema.get("x-nullable") is True:
        out.add("null")
    return frozenset(out)


def _own(schema: dict[str, Any], doc: Document) -> Branch:
    b = Branch(types=_types_of(schema))
    props = schema.get("properties")
    if isinstance(props, dict):
        b.props = {str(k): [(v, doc)] for k, v in props.items()}
    req = schema.get("required")
    if isinstance(req, list):
        b.required = frozenset(str(x) for x in req)
    add = schema.get("additionalProperties")
    if add is False:
        b.additional = False
    elif isinstance(add, dict) and add:
        b.additional = (add, doc)
    pp = schema.get("patternProperties")
    if isinstance(pp, dict):
        b.pattern_props = [(str(k), (v, doc)) for k, v in pp.items()]
    items = schema.get("items")
    if isinstance(items, dict):
        b.items = [(items, doc)]
    elif isinstance(items, list):  # tuple validation (draft 4): the schema of some position
        b.items = [({"anyOf": [x for x in items if isinstance(x, dict)]}, doc)]
    if isinstance(schema.get("enum"), list):
        b.enum = frozenset(canon(v) for v in schema["enum"])
        if any(v is None for v in schema["enum"]) and b.types is not None:
            b.types = b.types | {"null"}
    elif "const" in schema:
        b.enum = frozenset({canon(schema["const"])})
    for k in (*UPPER, *LOWER, *EXACT):
        if k in schema and schema[k] is not None and not isinstance(schema[k], bool):
            b.constraints[k] = schema[k]
    b.deprecated = schema.get("deprecated") is True
    return b


def _meet_types(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    out = set(a & b)
    if ("integer" in a and "number" in b) or ("number" in a and "integer" in b):
        out.add("integer")
    return frozenset(out)


def merge(a: Branch, b: Branch) -> Branch:
    """Both must hold (``allOf``): properties united, required united, constraints the tighter."""
    props = {k: list(v) for k, v in a.props.items()}
    for k, v in b.props.items():
        props.setdefault(k, []).extend(v)
    if a.additional is False or b.additional is False:
        additional: Any = False
    else:
        additional = a.additional if a.additional is not None else b.additional
    constraints = dict(a.constraints)
    for k, v in b.constraints.items():
        if k not in constraints:
            constraints[k] = v
        elif k in UPPER:
            constraints[k] = min(constraints[k], v)
        elif k in LOWER:
            constraints[k] = max(constraints[k], v)
        else:
            constraints[k] = v
    if a.enum is not None and b.enum is not None:
        enum: frozenset[str] | None = a.enum & b.enum
    else:
        enum = a.enum if a.enum is not None else b.enum
    return Branch(
        types=_meet_types(a.types, b.types),
        props=props,
        required=a.required | b.required,
        additional=additional,
        pattern_props=a.pattern_props + b.pattern_props,
        items=a.items + b.items,
        enum=enum,
        constraints=constraints,
        deprecated=a.deprecated or b.deprecated,
    )


def union(branches: list[Branch]) -> Branch:
    """One branch accepting what any of ``branches`` accepts (used only to bound explosion)."""
    if not branches:
        return Branch()
    out = Branch(
        types=None
        if any(b.types is None for b in branches)
        else frozenset().union(*(b.types or () for b in branches)),
        required=frozenset.intersection(*(b.required for b in branches)),
        enum=None
        if any(b.enum is None for b in branches)
        else frozenset().union(*(b.enum or () for b in branches)),
        deprecated=all(b.deprecated for b in branches),
    )
    for b in branches:
        for k, v in b.props.items():
            out.props.setdefault(k, []).extend(v)
        out.items.extend(b.items)
        out.pattern_props.extend(b.pattern_props)
    closed = all(b.additional is False for b in branches)
    schemas = [b.additional for b in branches if isinstance(b.additional, tuple)]
    out.additional = False if closed else (schemas[0] if schemas and len(schemas) == len(branches) else None)
    return out


def _product(left: list[Branch], right: list[Branch]) -> list[Branch]:
    out = [merge(a, b) for a in left for b in right]
    return out if len(out) <= _MAX_BRANCHES else [union(out)]


class Flattener:
    """Flattens schemas of one comparison; ``$ref`` targets are flattened once and remembered."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, str], list[Branch]] = {}

    def flatten(self, schema: Any, doc: Document, stack: tuple[tuple[str, str], ...] = ()) -> list[Branch]:
        if not isinstance(schema, dict):
            return [Branch()]  # `true`, `{}` or junk: anything goes
        ref = schema.get("$ref")
        if isinstance(ref, str):
            key = (doc.location, ref)
            if key in stack:
                return [Branch()]  # recursive schema: unchecked below this depth
            if key in self._memo:
                base = self._memo[key]
            else:
                target, tdoc = doc.resolve(ref)
                base = self.flatten(target, tdoc, (*stack, key))
                self._memo[key] = base
            siblings = {k: v for k, v in schema.items() if k != "$ref" and k not in _DOC_KEYS}
            # OpenAPI 3.0 says siblings of $ref are ignored; vendors rely on them (required, nullable)
            # and JSON Schema validators honour them, so they count here too.
            return _product(base, self.flatten(siblings, doc, stack)) if siblings else base
        out = [_own(schema, doc)]
        for part in schema.get("allOf") or []:
            out = _product(out, self.flatten(part, doc, stack))
        for comb in ("oneOf", "anyOf"):
            alts = schema.get(comb)
            if isinstance(alts, list) and alts:
                expanded: list[Branch] = []
                for alt in alts:
                    expanded.extend(self.flatten(alt, doc, stack))
                out = _product(out, expanded)
        return out

    def flatten_all(self, nodes: list[Node]) -> list[Branch]:
        """Alternatives: a value may match any of ``nodes``."""
        out: list[Branch] = []
        for schema, doc in nodes:
            out.extend(self.flatten(schema, doc))
        return out if len(out) <= _MAX_BRANCHES else [union(out)]

    def flatten_each(self, nodes: list[Node]) -> list[Branch]:
        """Conjunction: schemas ``allOf`` parts gave the same property; a value must match them all."""
        out: list[Branch] | None = None
        for schema, doc in nodes:
            f = self.flatten(schema, doc)
            out = f if out is None else _product(out, f)
        return out or [Branch()]


@dataclass
class View:
    """What a description says about one place in a body.

    ``status``: ``declared`` (named in some branch), ``dynamic`` (covered by additionalProperties or
    patternProperties), ``open`` (undeclared but accepted as an extra), ``refused`` (undeclared and
    every branch is closed).
    """

    status: str
    branches: list[Branch]
    required: bool = False

    @property
    def exists(self) -> bool:
        return self.status in ("declared", "dynamic")

    @property
    def accepted(self) -> bool:
        return self.status != "refused"


def split_pointer(pointer: str) -> list[str]:
    if pointer in ("", "/"):
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]


def join_pointer(parts: list[str]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def walk(fl: Flattener, root: list[Branch], parts: list[str]) -> View:
    """The view at ``parts`` below ``root``; ``*`` steps into array items."""
    branches = root
    status = "declared"
    required = False
    for seg in parts:
        if status == "open":
            return View("open", [ANY])
        child: list[Branch] = []
        declared = dynamic = open_ = False
        req_votes: list[bool] = []
        for b in branches:
            if seg == "*":
                if b.items:
                    child.extend(fl.flatten_each(b.items))
                    declared = True
                elif b.types is None or "array" in b.types:
                    open_ = True
                continue
            if seg in b.props:
                child.extend(fl.flatten_each(b.props[seg]))
                declared = True
                req_votes.append(seg in b.required)
                continue
            matched = [n for pat, n in b.pattern_props if _search(pat, seg)]
            if matched:
                child.extend(fl.flatten_each(matched))
                dynamic = True
            elif isinstance(b.additional, tuple):
                child.extend(fl.flatten(*b.additional))
                dynamic = True
            elif b.additional is not False and b.is_object_like():
                open_ = True
        if declared or dynamic:
            branches = child if len(child) <= _MAX_BRANCHES else [union(child)]
            status = "declared" if declared and status == "declared" else "dynamic"
            required = bool(req_votes) and all(req_votes)
        elif open_:
            return View("open", [ANY])
        else:
            return View("refused", [])
    return View(status, branches, required)


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


@dataclass
class Facts:
    """The loosest reading of a field over its branches: what values some alternative accepts."""

    types: frozenset[str] | None
    enum: frozenset[str] | None
    constraints: dict[str, Any]
    deprecated: bool


def facts(branches: list[Branch]) -> Facts:
    if not branches:
        return Facts(None, None, {}, False)
    types = (
        None
        if any(b.types is None for b in branches)
        else frozenset().union(*(b.types or () for b in branches))
    )
    enum = (
        None
        if any(b.enum is None for b in branches)
        else frozenset().union(*(b.enum or () for b in branches))
    )
    constraints: dict[str, Any] = {}
    for k in UPPER:
        vals = [b.constraints.get(k) for b in branches]
        if all(v is not None for v in vals):
            constraints[k] = max(vals)
    for k in LOWER:
        vals = [b.constraints.get(k) for b in branches]
        if all(v is not None for v in vals):
            constraints[k] = min(vals)
    for k in EXACT:
        vals = [b.constraints.get(k) for b in branches]
        if all(v is not None for v in vals):
            constraints[k] = tuple(sorted({str(v) for v in vals}))
    return Facts(types, enum, constraints, any(b.deprecated for b in branches))


def accepts_type(declared: frozenset[str] | None, sent: str) -> bool:
    if declared is None or sent in declared:
        return True
    return sent == "integer" and "number" in declared


def enumerate_fields(
    fl: Flattener, root: list[Branch], max_depth: int = 8, limit: int = 4000
) -> dict[str, View]:
    """Every declared place below ``root`` (depth- and count-bounded), for the ``--all`` listing."""
    out: dict[str, View] = {}
    todo: list[tuple[list[str], list[Branch]]] = [([], root)]
    while todo and len(out) < limit:
        parts, branches = todo.pop()
        if len(parts) >= max_depth:
            continue
        names: set[str] = set()
        has_items = False
        for b in branches:
            names.update(b.props)
            has_items = has_items or bool(b.items)
        for seg in sorted(names) + (["*"] if has_items else []):
            view = walk(fl, branches, [seg])
            if not view.exists:
                continue
            child = [*parts, seg]
            out[join_pointer(child)] = view
            todo.append((child, view.branches))
    return out
