"""Two versions of a vendor description compared inside a footprint, each change with a severity.

Only what the footprint names is judged: its operations (matched up to parameter names, a trailing
slash or a ``#fragment``), their servers and auth, the request content type, the parameters and body
fields it sends (and the objects those fields sit in), and the response fields and statuses it reads.
Everything else is ``ignored`` and listed only on request. The rules, in short:

* breaking: operation gone (rename candidates named), server gone, content type or auth scheme no
  longer accepted, a new required property or parameter the connector does not send (alternatives of
  ``oneOf``/``anyOf`` considered: it breaks when no alternative is satisfied any more), a sent property
  removed, retyped so that what is sent no longer fits, or narrowed (enum, pattern, length, format,
  bounds); a read response field removed or retyped;
* warning: newly deprecated operation, parameter or field; new optional properties in an object the
  connector builds; a read response field's enum widened; a documented status the connector
  classifies gone; a path respelled (trailing slash);
* info: everything else inside the footprint (loosened constraints, enums widened on sent fields,
  requirements dropped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sdk.drift.document import Document
from sdk.drift.footprint import AuthUse, FieldUse, Footprint, OperationUse
from sdk.drift.operations import (
    FORM_TYPES,
    OperationView,
    all_operations,
    locate,
    media_base,
    norm_path,
    pick_body,
    rename_candidates,
    status_matches,
)
from sdk.drift.report import DriftReport
from sdk.drift.schema import (
    ANY,
    EXACT,
    LOWER,
    UPPER,
    Branch,
    Facts,
    Flattener,
    View,
    accepts_type,
    canon,
    enumerate_fields,
    facts,
    join_pointer,
    split_pointer,
    walk,
)


@dataclass
class _Ctx:
    report: DriftReport
    op_id: str
    include_ignored: bool


def compare_descriptions(
    fp: Footprint, old: Document, new: Document, include_ignored: bool = False
) -> DriftReport:
    """Changes from ``old`` to ``new`` that touch ``fp`` (plus, with ``include_ignored``, the rest)."""
    report = DriftReport("spec", fp.name, old.describe(), new.describe())
    if old.version != new.version:
        report.notes.append(f"description version {old.version or '?'} -> {new.version or '?'}")
    fl = Flattener()
    for op in fp.operations:
        ctx = _Ctx(report, op.id, include_ignored)
        old_view, how = _find(old, op)
        if old_view is None:
            report.operations[op.id] = f"{op.key}: not described in the old document; not checked"
            report.add(
                "info",
                "not_described",
                op.id,
                "operation",
                f"{op.key} is not in the old description, so it is not checked",
            )
            continue
        loc = locate(new, old_view.method, old_view.path)
        new_view = loc.view
        if new_view is None and old_view.operation_id:
            moved = [
                (m, p)
                for m, p in all_operations(new)
                if (new.data["paths"][p].get(m) or {}).get("operationId") == old_view.operation_id
            ]
            if len(moved) == 1:
                new_view = locate(new, *moved[0]).view
                report.add(
                    "breaking",
                    "path_changed",
                    op.id,
                    "operation",
                    f"{old_view.key} is now {moved[0][0].upper()} {moved[0][1]} (same operationId "
                    f"{old_view.operation_id!r}); update the endpoint URL",
                    old_view.key,
                    f"{moved[0][0].upper()} {moved[0][1]}",
                )
        if new_view is None:
            cands = rename_candidates(old, new, old_view.method, old_view.path, old_view.operation_id)
            hint = f"; possibly renamed to {', '.join(cands)}" if cands else ""
            report.add(
                "breaking",
                "operation_removed",
                op.id,
                "operation",
                f"{old_view.key} is gone from the new description{hint}",
                old_view.key,
                cands or None,
            )
            report.operations[op.id] = f"{old_view.key} -> removed"
            continue
        report.operations[op.id] = (
            f"{old_view.key}"
            + (f" -> {new_view.key}" if new_view.key != old_view.key else "")
            + f" ({how}/{loc.how})"
        )
        if loc.how == "trailing_slash":
            report.add(
                "warning",
                "path_respelled",
                op.id,
                "operation",
                f"path key {old_view.path} is now {new_view.path} (trailing slash); the vendor may "
                f"redirect or refuse the old spelling: send the new one",
                old_view.path,
                new_view.path,
            )
        elif loc.how in ("params_renamed", "fragment") and new_view.path != old_view.path:
            report.add(
                "info",
                "path_respelled",
                op.id,
                "operation",
                f"path key {old_view.path} is now {new_view.path} (same URL)",
                old_view.path,
                new_view.path,
            )
        _compare_operation(ctx, fl, fp, op, old_view, new_view)
    if include_ignored:
        _document_level(report, fp, old, new)
    return report


def _find(doc: Document, op: OperationUse) -> tuple[OperationView | None, str]:
    paths = [op.path] if op.path else []
    if op.url and not op.path:
        paths.append(urlsplit(op.url).path)
    for path in paths:
        loc = locate(doc, op.method, path)
        if loc.view is not None:
            return loc.view, loc.how
        # The document's servers may carry a base path (/v3) that the footprint's path includes.
        for m, p in all_operations(doc):
            if m != op.method.lower():
                continue
            for server in _doc_servers(doc, m, p):
                base = urlsplit(server).path.rstrip("/")
                if base and path.startswith(base + "/"):
                    loc = locate(doc, op.method, path[len(base) :])
                    if loc.view is not None:
                        return loc.view, loc.how
    return None, "missing"


def _doc_servers(doc: Document, method: str, path: str) -> list[str]:
    from sdk.drift.operations import operation_view

    return operation_view(doc, method, path).servers


# -- one operation --------------------------------------------------------------------------------
def _compare_operation(
    ctx: _Ctx, fl: Flattener, fp: Footprint, op: OperationUse, old: OperationView, new: OperationView
) -> None:
    r = ctx.report
    _servers(ctx, op, old, new)
    if new.deprecated and not old.deprecated:
        r.add("warning", "deprecated", op.id, "operation", f"{new.key} is now marked deprecated; plan a move")
    elif new.deprecated:
        r.add("info", "deprecated", op.id, "operation", f"{new.key} was and still is marked deprecated")
    _auth(ctx, op.auth or fp.auth, op, old, new)
    sends_body = bool(op.body) or op.content_type is not None
    if sends_body and (old.bodies or new.bodies):
        _content_type_and_body(ctx, fl, op, old, new)
    _params(ctx, fl, op, old, new, op.auth or fp.auth)
    _responses(ctx, fl, op, old, new)


def _server_match(server: str, listed: list[str]) -> bool:
    s = server.rstrip("/").lower()
    for d in listed:
        d = d.rstrip("/").lower()
        if "://" not in d:  # relative server URL: compare the path part only
            if urlsplit(s).path.rstrip("/") == d.rstrip("/"):
                return True
            continue
        pattern = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(d)) + "$"
        if re.match(pattern, s) or s == d:
            return True
    return False


def _servers(ctx: _Ctx, op: OperationUse, old: OperationView, new: OperationView) -> None:
    if not op.servers or not old.servers:
        return
    known = [s for s in op.servers if _server_match(s, old.servers)]
    if not known:
        ctx.report.add(
            "info",
            "server_unchecked",
            op.id,
            "server",
            f"none of {', '.join(op.servers)} is listed by the old description ({', '.join(old.servers)})",
        )
        return
    for s in known:
        if new.servers and not _server_match(s, new.servers):
            ctx.report.add(
                "breaking",
                "server_changed",
                op.id,
                "server",
                f"{s} is no longer listed; the description now lists {', '.join(new.servers)}",
                s,
                new.servers,
            )


def _kind_ok(auth: AuthUse, kind: str, headers: set[str], query: set[str]) -> bool:
    if kind.startswith("header:") and kind[7:] in headers:
        return True
    if kind.startswith("query:") and kind[6:] in query:
        return True
    name = (auth.name or "").lower()
    if auth.type == "bearer":
        return kind in ("bearer", "header:authorization")
    if auth.type == "basic":
        return kind in ("basic", "header:authorization")
    if auth.type == "header":
        return kind == f"header:{name}" or (name == "authorization" and kind in ("bearer", "basic"))
    if auth.type == "query":
        return kind == f"query:{name}"
    return False


def _auth_ok(auth: AuthUse, alts: list[list[str]] | None, headers: set[str], query: set[str]) -> bool | None:
    if alts is None:
        return None
    if not alts:
        return True
    return any(all(_kind_ok(auth, k, headers, query) for k in alt) for alt in alts)


def _auth(ctx: _Ctx, auth: AuthUse, op: OperationUse, old: OperationView, new: OperationView) -> None:
    headers = {p.pointer.lower() for p in op.params if p.location == "header"}
    query = {p.pointer.lower() for p in op.params if p.location == "query"}
    before = _auth_ok(auth, old.security, headers, query)
    after = _auth_ok(auth, new.security, headers, query)
    described = " or ".join(" + ".join(a) or "anonymous" for a in (new.security or [])) or "none"
    how = auth.type + (f" ({auth.name})" if auth.name else "")
    if before is True and after is False:
        ctx.report.add(
            "breaking",
            "auth_changed",
            op.id,
            "auth",
            f"the connector authenticates with {how}; the description now accepts {described}",
            old.security,
            new.security,
        )
    elif before is False and after is not True and old.security != new.security:
        ctx.report.add(
            "info",
            "auth_unchecked",
            op.id,
            "auth",
            f"{how} does not match the old description's security either; now: {described}",
        )


def _ct_accepted(ct: str, bodies: dict[str, Any]) -> bool:
    return media_base(ct) in bodies


def _content_type_and_body(
    ctx: _Ctx, fl: Flattener, op: OperationUse, old: OperationView, new: OperationView
) -> None:
    r = ctx.report
    ct = op.content_type
    if ct and old.bodies and _ct_accepted(ct, old.bodies) and not _ct_accepted(ct, new.bodies):
        if new.bodies:
            r.add(
                "breaking",
                "content_type_changed",
                op.id,
                "content-type",
                f"{media_base(ct)} is no longer accepted; the description now takes {', '.join(new.bodies)}",
                sorted(old.bodies),
                sorted(new.bodies),
            )
        else:
            r.add(
                "breaking",
                "body_removed",
                op.id,
                "content-type",
                "the operation no longer describes a request body",
            )
            return
    old_pick, new_pick = pick_body(old.bodies, ct), pick_body(new.bodies, ct)
    if old_pick is None or new_pick is None:
        return
    if ct and not _ct_accepted(ct, old.bodies):
        r.add(
            "info",
            "content_type_unchecked",
            op.id,
            "content-type",
            f"the footprint sends {ct} but the old description takes {', '.join(old.bodies)}; "
            f"compared {old_pick[0]}",
        )
    where = "form" if old_pick[0] in FORM_TYPES else "body"
    _body(ctx, fl, op.body, fl.flatten(*old_pick[1]), fl.flatten(*new_pick[1]), where)


# -- fields ---------------------------------------------------------------------------------------
def _fmt(values: Any) -> str:
    if values is None:
        return "any"
    if isinstance(values, (set, frozenset, list, tuple)):
        return "[" + ", ".join(sorted(str(v) for v in values)) + "]"
    return str(values)


def _compare_facts(
    ctx: _Ctx, where: str, f: FieldUse | None, fo: Facts, fn: Facts, request: bool = True
) -> None:
    r, op = ctx.report, ctx.op_id
    sent = list(f.types) if f and f.types else []
    # Types: what the connector sends (or, unknown, what the old description allowed) must still fit.
    if sent:
        lost = [t for t in sent if accepts_type(fo.types, t) and not accepts_type(fn.types, t)]
    else:
        lost = [t for t in sorted(fo.types or ()) if not accepts_type(fn.types, t)]
    if lost and (set(lost) - {"null"}):
        r.add(
            "breaking",
            "type_changed",
            op,
            where,
            f"type {_fmt(fo.types)} -> {_fmt(fn.types)}; "
            + (f"the connector sends {_fmt(sent)}" if sent else f"{_fmt(lost)} no longer accepted"),
            sorted(fo.types or []),
            sorted(fn.types or []),
        )
    elif lost:
        r.add(
            "warning",
            "type_changed",
            op,
            where,
            "null is no longer accepted; check that the connector never sends it",
            sorted(fo.types or []),
            sorted(fn.types or []),
        )
    elif fo.types != fn.types and fo.types is not None:
        r.add("info", "type_changed", op, where, f"type {_fmt(fo.types)} -> {_fmt(fn.types)} (still fits)")
    if request:
        _request_enum(ctx, where, f, fo, fn)
        _constraints(ctx, where, f, fo, fn)
    else:
        if fn.enum is not None and fo.enum is not None and fn.enum - fo.enum:
            r.add(
                "warning",
                "enum_widened",
                op,
                where,
                f"may now also be {_fmt(fn.enum - fo.enum)}; make sure the connector handles it",
                sorted(fo.enum),
                sorted(fn.enum),
            )
        elif fo.enum is not None and fn.enum is None:
            r.add("warning", "enum_widened", op, where, f"was one of {_fmt(fo.enum)}, now any value")
    if fn.deprecated and not fo.deprecated:
        r.add("warning", "deprecated", op, where, "now marked deprecated")


def _request_enum(ctx: _Ctx, where: str, f: FieldUse | None, fo: Facts, fn: Facts) -> None:
    r, op = ctx.report, ctx.op_id
    eo, en = fo.enum, fn.enum
    values = {canon(v) for v in f.values} if f and f.values is not None else None
    if en is None:
        if eo is not None:
            r.add("info", "enum_dropped", op, where, f"was one of {_fmt(eo)}, any value now accepted")
        return
    if values is not None:
        bad = sorted(v for v in values if v not in en and (eo is None or v in eo))
        if bad:
            r.add(
                "breaking",
                "enum_narrowed",
                op,
                where,
                f"the connector sends {_fmt(bad)}, no longer allowed (now one of {_fmt(en)})",
                sorted(eo) if eo else None,
                sorted(en),
            )
        elif eo is None or eo - en:
            r.add(
                "info",
                "enum_narrowed",
                op,
                where,
                f"now one of {_fmt(en)}; the values the connector sends are allowed",
            )
    elif eo is None:
        r.add("breaking", "enum_added", op, where, f"now restricted to {_fmt(en)}", None, sorted(en))
    elif eo - en:
        r.add(
            "breaking",
            "enum_narrowed",
            op,
            where,
            f"no longer allowed: {_fmt(eo - en)}",
            sorted(eo),
            sorted(en),
        )
    if eo is not None and en - eo:
        r.add("info", "enum_widened", op, where, f"now also allows {_fmt(en - eo)}")


def _pattern_fits(patterns: tuple[str, ...], values: list[Any] | None) -> bool:
    if not values:
        return False
    try:
        return all(any(re.search(p, str(v)) for p in patterns) for v in values)
    except re.error:
        return False


def _constraints(ctx: _Ctx, where: str, f: FieldUse | None, fo: Facts, fn: Facts) -> None:
    r, op = ctx.report, ctx.op_id
    for k in UPPER:
        o, n = fo.constraints.get(k), fn.constraints.get(k)
        if n is not None and (o is None or n < o):
            r.add("breaking", "constraint_narrowed", op, where, f"{k} {_fmt(o)} -> {n}", o, n)
        elif o is not None and (n is None or n > o):
            r.add("info", "constraint_widened", op, where, f"{k} {o} -> {_fmt(n)}", o, n)
    for k in LOWER:
        o, n = fo.constraints.get(k), fn.constraints.get(k)
        if n is not None and (o is None or n > o):
            r.add("breaking", "constraint_narrowed", op, where, f"{k} {_fmt(o)} -> {n}", o, n)
        elif o is not None and (n is None or n < o):
            r.add("info", "constraint_widened", op, where, f"{k} {o} -> {_fmt(n)}", o, n)
    for k in EXACT:
        o, n = fo.constraints.get(k), fn.constraints.get(k)
        if n is not None and n != o:
            if k == "pattern" and _pattern_fits(n, f.values if f else None):
                r.add(
                    "info",
                    "constraint_narrowed",
                    op,
                    where,
                    f"pattern now {_fmt(n)}; the values sent match it",
                )
            else:
                r.add(
                    "breaking",
                    "constraint_narrowed",
                    op,
                    where,
                    f"{k} {_fmt(o)} -> {_fmt(n)}",
                    list(o) if o else None,
                    list(n),
                )
        elif o is not None and n is None:
            r.add("info", "constraint_widened", op, where, f"{k} {_fmt(o)} dropped")


def _object_branches(view: View) -> list[Branch]:
    if view.status == "open":
        return [ANY]
    return [b for b in view.branches if b.is_object_like()]


def _body(
    ctx: _Ctx,
    fl: Flattener,
    fields: list[FieldUse],
    old_root: list[Branch],
    new_root: list[Branch],
    label: str,
) -> None:
    r, op = ctx.report, ctx.op_id
    by_pointer = {f.pointer: f for f in fields}
    # The containers of sent fields are sent too (an array's maxItems, an object turned into a string).
    for f in fields:
        parts = split_pointer(f.pointer)
        for i in range(1, len(parts)):
            prefix = join_pointer(parts[:i])
            if prefix not in by_pointer:
                kind = "array" if parts[i] == "*" else "object"
                by_pointer[prefix] = FieldUse(
                    pointer=prefix, types=[kind], sources=["container of a sent field"]
                )
    removed: list[str] = []
    covered: set[str] = {""}
    moved: list[str] | None = None
    for pointer in sorted(by_pointer):
        f = by_pointer[pointer]
        parts = split_pointer(pointer)
        covered.update(join_pointer(parts[:i]) for i in range(len(parts) + 1))
        if any(pointer.startswith(x + "/") for x in removed):
            continue
        where = f"{label} {pointer}"
        vo, vn = walk(fl, old_root, parts), walk(fl, new_root, parts)
        if vo.exists:
            if not vn.exists:
                top = _topmost_removed(fl, old_root, new_root, parts)
                below = sum(1 for x in fields if x.pointer.startswith(top + "/"))
                extra = f" (with {below} field(s) the connector sends below it)" if below else ""
                if vn.status == "refused":
                    detail = f"removed{extra}; undeclared properties are refused there now"
                else:
                    detail = (
                        f"removed{extra}; still accepted as an undeclared extra, "
                        "but the vendor may ignore or reject it"
                    )
                if moved is None:
                    moved = _fresh_pointers(fl, old_root, new_root)
                name = split_pointer(top)[-1] if top else ""
                hints = [p for p in moved if split_pointer(p)[-1:] == [name]][:3]
                if hints:
                    detail += f"; possibly moved to {', '.join(hints)}"
                r.add("breaking", "property_removed", op, f"{label} {top}", detail, None, hints or None)
                removed.append(top)
            else:
                _compare_facts(ctx, where, f, facts(vo.branches), facts(vn.branches))
        elif vo.status == "open" and vn.status == "refused":
            r.add(
                "breaking",
                "property_refused",
                op,
                where,
                "undeclared and no longer accepted (the object is now closed)",
            )
            removed.append(pointer)
        elif vo.status == "open" and vn.exists and f.types:
            nf = facts(vn.branches)
            lost = [t for t in f.types if not accepts_type(nf.types, t)]
            if set(lost) - {"null"}:
                r.add(
                    "breaking",
                    "type_changed",
                    op,
                    where,
                    f"now declared as {_fmt(nf.types)}; the connector sends {_fmt(f.types)}",
                )
        elif vo.status == "refused":
            r.add(
                "info",
                "not_accepted_before",
                op,
                where,
                "the old description does not accept it either; unchecked",
            )
    nodes = sorted({p for p in covered if not any(p.startswith(x + "/") or p == x for x in removed)})
    for node in nodes:
        _node(ctx, fl, node, by_pointer, old_root, new_root, label)
    if ctx.include_ignored:
        _ignored_fields(ctx, fl, old_root, new_root, covered, label)


def _topmost_removed(fl: Flattener, old_root: list[Branch], new_root: list[Branch], parts: list[str]) -> str:
    """The highest ancestor of ``parts`` that the new description lost too (report a subtree once)."""
    top = parts
    for i in range(len(parts) - 1, 0, -1):
        if walk(fl, old_root, parts[:i]).exists and not walk(fl, new_root, parts[:i]).exists:
            top = parts[:i]
        else:
            break
    return join_pointer(top)


def _fresh_pointers(fl: Flattener, old_root: list[Branch], new_root: list[Branch]) -> list[str]:
    """Places the new description declares and the old one did not (candidates for a moved field)."""
    before = enumerate_fields(fl, old_root)
    return sorted(p for p in enumerate_fields(fl, new_root) if p not in before)


def _node(
    ctx: _Ctx,
    fl: Flattener,
    node: str,
    by_pointer: dict[str, FieldUse],
    old_root: list[Branch],
    new_root: list[Branch],
    label: str,
) -> None:
    """Requirements and additions of one object the connector builds (``node``)."""
    r, op = ctx.report, ctx.op_id
    parts = split_pointer(node)
    vo, vn = walk(fl, old_root, parts), walk(fl, new_root, parts)
    if not vn.accepted or not vo.accepted:
        return
    ob, nb = _object_branches(vo), _object_branches(vn)
    if not nb:
        return
    children: dict[str, FieldUse] = {}
    for p, f in by_pointer.items():
        cp = split_pointer(p)
        if len(cp) == len(parts) + 1 and cp[: len(parts)] == parts and cp[-1] != "*":
            children[cp[-1]] = f
    sent = set(children)
    where = f"{label} {node or '/'}"

    def missing(b: Branch) -> frozenset[str]:
        return b.required - sent

    old_ok = any(not missing(b) for b in ob) if ob else True
    new_missing = sorted((missing(b) for b in nb), key=len)
    new_ok = not new_missing[0]
    old_must = frozenset.intersection(*(b.required for b in ob)) if ob else frozenset()
    if old_ok and not new_ok:
        keys = sorted(new_missing[0])
        alt = (
            " (no alternative of the schema is satisfied by what the connector sends)" if len(nb) > 1 else ""
        )
        r.add(
            "breaking",
            "required_added",
            op,
            where,
            f"now requires {', '.join(keys)}, which the connector does not send{alt}",
            None,
            keys,
        )
    elif not old_ok and not new_ok:
        new_must = frozenset.intersection(*(b.required for b in nb))
        added = sorted(new_must - old_must - sent)
        if added:
            r.add(
                "breaking",
                "required_added",
                op,
                where,
                f"now requires {', '.join(added)}, which the connector does not send",
                None,
                added,
            )
    # Required now, but the connector sends it only sometimes. "Before" is what the alternatives the
    # connector satisfied already required, so a oneOf of required-sets does not look new.
    best_new = min(nb, key=lambda b: len(missing(b)))
    satisfied = [b.required for b in ob if not missing(b)]
    old_req = frozenset().union(*satisfied) if satisfied else old_must
    for k in sorted(best_new.required & sent):
        f = children[k]
        if k not in old_req and f.when:
            r.add(
                "breaking",
                "required_added",
                op,
                f"{label} {join_pointer([*parts, k])}",
                f"now required, but the connector sends it only when {'; '.join(f.when)}",
            )
        elif k not in old_req:
            r.add(
                "info",
                "required_added",
                op,
                f"{label} {join_pointer([*parts, k])}",
                "now required; the connector sends it",
            )
    for k in sorted(old_must - frozenset.intersection(*(b.required for b in nb))):
        r.add("info", "required_removed", op, f"{label} {join_pointer([*parts, k])}", "no longer required")
    # New optional properties in an object the connector fills field by field.
    if sent and vo.status != "open":
        before = set().union(*(b.props for b in ob)) if ob else set()
        after = set().union(*(b.props for b in nb))
        new_required = set().union(*(b.required for b in nb))
        fresh = sorted(after - before - new_required)
        if fresh and before:
            r.add(
                "warning",
                "property_added",
                op,
                where,
                f"new optional propert{'y' if len(fresh) == 1 else 'ies'}: {', '.join(fresh)}",
                None,
                fresh,
            )


def _ignored_fields(
    ctx: _Ctx, fl: Flattener, old_root: list[Branch], new_root: list[Branch], covered: set[str], label: str
) -> None:
    r, op = ctx.report, ctx.op_id
    before, after = enumerate_fields(fl, old_root), enumerate_fields(fl, new_root)
    for p in sorted(set(before) | set(after)):
        if p in covered:
            continue
        parent = p.rsplit("/", 1)[0]
        if (p not in after and parent in before and parent not in after) or (
            p not in before and parent in after and parent not in before
        ):
            continue  # reported at the parent
        where = f"{label} {p}"
        if p not in after:
            r.add("ignored", "property_removed", op, where, "removed (outside the footprint)")
        elif p not in before:
            req = " (required)" if after[p].required else ""
            r.add("ignored", "property_added", op, where, f"added{req} (outside the footprint)")
        else:
            fo, fn = facts(before[p].branches), facts(after[p].branches)
            diffs = []
            if fo.types != fn.types:
                diffs.append(f"type {_fmt(fo.types)} -> {_fmt(fn.types)}")
            if fo.enum != fn.enum:
                diffs.append(f"enum {_fmt(fo.enum)} -> {_fmt(fn.enum)}")
            if fo.constraints != fn.constraints:
                diffs.append(f"constraints {fo.constraints} -> {fn.constraints}")
            if before[p].required != after[p].required:
                diffs.append("now required" if after[p].required else "no longer required")
            if diffs:
                r.add("ignored", "property_changed", op, where, "; ".join(diffs) + " (outside the footprint)")


# -- parameters and responses ---------------------------------------------------------------------
def _param_facts(fl: Flattener, param: Any) -> Facts:
    if param.schema is None:
        return Facts(None, None, {}, param.deprecated)
    f = facts(fl.flatten(*param.schema))
    return Facts(f.types, f.enum, f.constraints, f.deprecated or param.deprecated)


def _params(
    ctx: _Ctx, fl: Flattener, op: OperationUse, old: OperationView, new: OperationView, auth: AuthUse
) -> None:
    r = ctx.report
    sent = {(p.location, p.pointer.lower()): p for p in op.params}
    for (loc, name), p in sent.items():
        where = f"{loc} {p.pointer}"
        o, n = old.params.get((loc, name)), new.params.get((loc, name))
        if o is None:
            continue
        if n is None:
            r.add("breaking", "parameter_removed", op.id, where, "the parameter is gone from the description")
            continue
        _compare_facts(ctx, where, p, _param_facts(fl, o), _param_facts(fl, n))
    auth_param = (auth.type if auth.type in ("header", "query") else "", (auth.name or "").lower())
    fresh_optional = []
    for (loc, name), n in sorted(new.params.items()):
        if loc not in ("header", "query", "cookie"):
            continue
        o = old.params.get((loc, name))
        if n.required and not (o and o.required):
            if (loc, name) in sent:
                r.add(
                    "info", "required_added", op.id, f"{loc} {n.name}", "now required; the connector sends it"
                )
            elif (loc, name) == auth_param or (
                loc == "header" and name == "authorization" and auth.type != "none"
            ):
                continue
            else:
                r.add(
                    "breaking",
                    "parameter_required",
                    op.id,
                    f"{loc} {n.name}",
                    f"new required {loc} parameter {n.name!r}, which the connector does not send",
                )
        elif o is None and not n.required:
            fresh_optional.append(f"{loc} {n.name}")
    if fresh_optional:
        r.add(
            "warning",
            "parameter_added",
            op.id,
            "parameters",
            f"new optional parameter(s): {', '.join(fresh_optional)}",
        )


def _response_roots(fl: Flattener, view: OperationView, status: str) -> list[Branch]:
    roots: list[Branch] = []
    for st, media in view.responses.items():
        if status_matches(st, status):
            picked = pick_body(media, "application/json")
            if picked is not None:
                roots.extend(fl.flatten(*picked[1]))
    return roots


def _responses(ctx: _Ctx, fl: Flattener, op: OperationUse, old: OperationView, new: OperationView) -> None:
    r = ctx.report
    for use in op.responses:
        old_st = [s for s in old.responses if status_matches(s, use.status)]
        new_st = [s for s in new.responses if status_matches(s, use.status)]
        if old_st and not new_st:
            sev = "warning" if use.classifies else "info"
            r.add(
                sev,
                "status_undocumented",
                op.id,
                f"response {use.status}",
                f"status {use.status} is no longer documented (now: {', '.join(new.responses) or 'none'})",
                old_st,
                sorted(new.responses),
            )
        old_roots, new_roots = _response_roots(fl, old, use.status), _response_roots(fl, new, use.status)
        if not old_roots or not new_roots:
            continue
        for pointer in use.reads:
            parts = split_pointer(pointer)
            vo, vn = walk(fl, old_roots, parts), walk(fl, new_roots, parts)
            where = f"response {use.status} {pointer}"
            if vo.exists and not vn.exists:
                r.add(
                    "breaking",
                    "response_field_removed",
                    op.id,
                    where,
                    "a field the connector reads is gone from the documented response",
                )
            elif vo.exists:
                _compare_facts(ctx, where, None, facts(vo.branches), facts(vn.branches), request=False)


def _document_level(report: DriftReport, fp: Footprint, old: Document, new: Document) -> None:
    before = {(m, norm_path(p, keep_slash=False)): p for m, p in all_operations(old)}
    after = {(m, norm_path(p, keep_slash=False)): p for m, p in all_operations(new)}
    for label, ops in (("removed", before.keys() - after.keys()), ("added", after.keys() - before.keys())):
        if ops:
            real = before if label == "removed" else after
            listed = sorted(f"{m.upper()} {real[(m, p)]}" for m, p in ops)
            more = f" and {len(listed) - 20} more" if len(listed) > 20 else ""
            report.add(
                "ignored",
                f"operations_{label}",
                "(document)",
                "paths",
                f"{len(listed)} operation(s) {label} outside the footprint: {', '.join(listed[:20])}{more}",
            )
