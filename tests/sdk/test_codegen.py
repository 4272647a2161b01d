"""The generated fast path agrees with the closures (the reference semantics) on every connector.

Each connector's fixture events, and hypothesis-mutated variants of them, go through both ``Plan.run``
(generated code) and ``Plan.run_closures``; the planned requests, or the errors (type and message), must be
equal. A difference is a code generation bug.
"""

from __future__ import annotations

import copy
import json
import re
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import SluiceError
from sdk.mapping.env import Env
from sdk.registry import integration_folders
from sdk.spec.model import DestinationSpec

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = [f for f in integration_folders() if (f / "spec.yaml").exists()]


def _load(folder: Path) -> Connector | None:
    try:
        return Connector.from_folder(folder)
    except SluiceError:
        return None  # a spec not on v2 yet: nothing to compare


def _fixtures(folder: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for f in sorted((folder / "fixtures").glob("*.json")):
        data = json.loads(f.read_text())
        if isinstance(data.get("event"), dict):
            out.append((data["event"], data.get("config") or {}))
    return out


def _outcome(conn: Connector, event: dict[str, Any], config: dict[str, Any], generated: bool) -> Any:
    ctx = TransformContext.at("2024-05-01T12:00:00Z", seed="diff")
    try:
        bound = conn.bind(config)
        etype = str(event.get("type", "")).strip().lower()
        if etype not in conn.plan.mappings:
            return ("unmapped", etype)
        env = Env(
            copy.deepcopy(event), bound.settings, bound.vars, ctx, {}, conn.plan.names, etype, bound.cache
        )
        planned = conn.plan.run(env) if generated else conn.plan.run_closures(env)
        # The requests as sent too: endpoint templates read lets through env.let, which are generated
        # functions on the fast path and closures on the other.
        requests = [conn._request(p, bound, env).to_wire() for p in planned]
        return [(p.endpoint, p.body, p.headers, p.params) for p in planned], requests
    except SluiceError as e:
        return (type(e).__name__, e.message)
    except RecursionError:
        return ("RecursionError",)


CASES = []
for _folder in FOLDERS:
    _conn = _load(_folder)
    if _conn is not None and _conn.plan.generated:
        CASES.append((_folder.name, _conn, _fixtures(_folder)))


@pytest.mark.parametrize("name, conn, fixtures", CASES, ids=[c[0] for c in CASES])
def test_generated_code_agrees_with_closures_on_fixtures(name: str, conn: Connector, fixtures: list) -> None:
    assert fixtures, f"{name} has no fixtures to compare on"
    for event, config in fixtures:
        assert _outcome(conn, event, config, True) == _outcome(conn, event, config, False), event


_SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", " ", "a", "x@y.io", "Go"])
_KEYS = st.sampled_from(["a", "id", "type", "email"])
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=6,
)
_PATHS = [
    ("userId",), ("anonymousId",), ("event",), ("name",), ("traits",), ("traits", "email"),
    ("properties",), ("properties", "revenue"), ("properties", "products"), ("context", "traits"),
    ("context", "device", "token"), ("context", "externalId"), ("timestamp",), ("integrations",),
    ("groupId",), ("previousId",), ("header",),
]  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
@pytest.mark.parametrize("name, conn, fixtures", CASES, ids=[c[0] for c in CASES])
def test_generated_code_agrees_with_closures_on_mutated_events(
    name: str, conn: Connector, fixtures: list, data: st.DataObject
) -> None:
    event, config = copy.deepcopy(data.draw(st.sampled_from(fixtures)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_PATHS))
        cur = event
        for k in path[:-1]:
            if not isinstance(cur.get(k), dict):
                cur[k] = {}
            cur = cur[k]
        cur[path[-1]] = data.draw(_JSON)
    assert _outcome(conn, event, config, True) == _outcome(conn, event, config, False)


# -- constructs the generator writes itself (no closure fallback) ------------------------------------------
# Each case runs one small spec through both paths, requires equal outcomes (errors included), requires that
# the generated code called no closure, and that the event came back unchanged and unshared. Expected values
# marked "by hand" are worked out from docs/spec-language.md, not from either path's output.

_FALLBACK = re.compile(r"= [CP]\d+\(env\)")


def _demo(body: Any, let: dict[str, Any] | None = None, mapper: types.ModuleType | None = None) -> Connector:
    spec = {
        "spec_version": 2,
        "name": "demo",
        "display_name": "Demo",
        "settings": {"type": "object", "additionalProperties": True},
        "event_types": ["track", "identify", "group"],
        "endpoints": {"e": {"url": "https://api.demo.io/v1/x"}},
        "let": let or {},
        "mappings": {t: {"endpoint": "e", "body": body} for t in ("track", "identify", "group")},
    }
    return Connector(DestinationSpec.model_validate(spec), mapper=mapper)


def _both(conn: Connector, event: dict[str, Any], settings: dict[str, Any] | None = None) -> Any:
    """The body (or the error) from the generated code, checked equal to the closures' and fully generated."""
    source = next(iter(conn.plan.generated.values())).__sluice_source__
    assert not _FALLBACK.search(source), source
    before = copy.deepcopy(event)
    results = []
    for generated in (True, False):
        ev = copy.deepcopy(event)
        kept = copy.deepcopy(ev)
        try:
            bound = conn.bind(settings or {})
            env = Env(ev, bound.settings, bound.vars, TransformContext.at("2024-05-01T12:00:00Z"), {},
                      conn.plan.names, str(ev["type"]), bound.cache)  # fmt: skip
            planned = conn.plan.run(env) if generated else conn.plan.run_closures(env)
            (p,) = planned
            assert ev == kept, "the input event was modified"
            _assert_unshared(p.body, ev)
            results.append(p.body)
        except SluiceError as e:
            results.append((type(e).__name__, e.message))
    assert event == before
    assert results[0] == results[1]
    return results[0]


def _containers(v: Any) -> list[Any]:
    out = []
    if isinstance(v, dict | list):
        out.append(v)
        for x in v.values() if isinstance(v, dict) else v:
            out.extend(_containers(x))
    return out


def _assert_unshared(body: Any, event: dict[str, Any]) -> None:
    mine = [id(c) for c in _containers(body)]
    assert len(mine) == len(set(mine)), "an output holds the same container twice"
    assert not set(mine) & {id(c) for c in _containers(event)}, "an output shares a container with the event"


def test_template_keys_are_generated() -> None:
    # By hand, from the `object` example of docs/spec-language.md.
    conn = _demo(
        {"...": "properties", "user.id": "userId", "$groups.{{ traits.groupType }}": "traits.groupValue"}
    )
    event = {"type": "group", "userId": "u", "properties": {"a": 1},
             "traits": {"groupType": "company", "groupValue": "acme"}}  # fmt: skip
    assert _both(conn, event) == {"a": 1, "user": {"id": "u"}, "$groups": {"company": "acme"}}


def test_template_key_values_missing_empty_or_not_text() -> None:
    conn = _demo(
        {
            "{{ traits.kind }}": {"from": "traits.value", "when": {"present": "traits.value"}},
            "ids.{{ traits.kind | upper }}.{{ traits.n }}": "userId",
            "a\\.b": "traits.value",
            "{{ settings.key }}": "traits.value",
        }
    )
    full = {"type": "identify", "userId": "u1", "traits": {"kind": "email", "n": 2, "value": {"x": [1]}}}
    # By hand: nested keys from the templates, an escaped dot kept in a key, a number key part as text.
    assert _both(conn, full, {"key": "k"}) == {
        "email": {"x": [1]}, "ids": {"EMAIL": {"2": "u1"}}, "a.b": {"x": [1]}, "k": {"x": [1]}
    }  # fmt: skip
    # A key whose value is missing, null or empty is an error naming it, but only for a field that is written.
    assert (
        _both(conn, {"type": "identify", "traits": {"value": 1}}, {"key": "k"})[0] == "InstrumentationError"
    )
    assert _both(conn, {"type": "identify", "userId": "u", "traits": {"kind": "", "value": 1}}, {"key": "k"})[
        0
    ] == ("InstrumentationError")
    assert _both(conn, {"type": "identify", "traits": {}}, {"key": "k"}) == {}
    assert _both(
        conn,
        {"type": "identify", "userId": "u", "traits": {"value": 1, "kind": "x", "n": None}},
        {"key": "k"},
    )[0] == ("InstrumentationError")
    # A key read from the settings only: its absence is a configuration error.
    assert _both(conn, {"type": "identify", "traits": {"value": 1, "kind": "x", "n": 1}})[0] == (
        "ConfigurationError"
    )
    # A template key computing `...` spreads, as the closures decide on the key's text.
    spread = _demo({"{{ traits.kind }}": "traits.value"})
    assert _both(spread, {"type": "identify", "traits": {"kind": "...", "value": {"a": 1}}}) == {"a": 1}


def _cond(cond: Any, event: dict[str, Any], settings: dict[str, Any] | None = None) -> Any:
    body = {"r": {"if": cond, "then": "'yes'", "else": "'no'"}}
    out = _both(_demo(body), {"type": "track", **event}, settings)
    return out["r"] if isinstance(out, dict) else out


def test_starts_with_contains_and_eq_null_are_generated() -> None:
    # By hand: `ci` compares trimmed and case-folded text.
    assert _cond({"of": "event", "starts_with": "order", "ci": True}, {"event": "  Order Completed"}) == "yes"
    assert _cond({"of": "event", "starts_with": "order"}, {"event": "Order Completed"}) == "no"
    assert _cond({"of": "event", "starts_with": "Re"}, {"event": 12}) == "no"
    assert _cond({"of": "event", "starts_with": "1"}, {"event": 12}) == "yes"
    assert _cond({"of": "event", "starts_with": "x"}, {}) == "no"
    # `contains`: a list holds the value, or text contains it.
    assert _cond(
        {"of": "properties.tags", "contains": "VIP", "ci": True}, {"properties": {"tags": ["a", "vip"]}}
    ) == ("yes")
    assert _cond({"of": "properties.tags", "contains": "p"}, {"properties": {"tags": "vip"}}) == "yes"
    assert _cond({"of": "properties.tags", "contains": "p"}, {"properties": {"tags": ["vip"]}}) == "no"
    assert _cond({"of": "properties.tags", "contains": "p"}, {"properties": {"tags": {"p": 1}}}) == "no"
    for value, want in ((None, "yes"), ("", "no"), (0, "no")):
        assert _cond({"of": "properties.x", "eq": None}, {"properties": {"x": value}}) == want
    assert _cond({"of": "properties.x", "ne": None}, {"properties": {}}) == "no"


def test_matched_by_and_age_of_are_generated() -> None:
    rule = {"of": "event", "matched_by": "settings.pattern", "ci": True}
    assert _cond(rule, {"event": "Order Done"}, {"pattern": "^order"}) == "yes"
    assert _cond(rule, {"event": True}, {"pattern": "True"}) == "no"
    assert _cond(rule, {"event": "x"}, {"pattern": "(a+)+"}) == ("ConfigurationError", _cond_error(rule))
    # By hand: an event of 2024-04-28 is more than 72h old on 2024-05-01 (the context's now), and not when
    # measured at its own sentAt; an unreadable `at` falls back to now, an unreadable time is false.
    old = {"age_of": "timestamp", "gt": "72h"}
    assert _cond(old, {"timestamp": "2024-04-28T00:00:00Z"}) == "yes"
    assert _cond(old, {"timestamp": "not a time"}) == "no"
    at = {"age_of": "timestamp", "at": "sentAt", "gt": "72h"}
    assert _cond(at, {"timestamp": "2024-04-28T00:00:00Z", "sentAt": "2024-04-28T01:00:00Z"}) == "no"
    assert _cond(at, {"timestamp": "2024-04-28T00:00:00Z", "sentAt": "garbage"}) == "yes"


def _cond_error(rule: dict[str, Any]) -> str:
    from sdk.mapping.conditions import user_pattern

    with pytest.raises(SluiceError) as e:
        user_pattern("(a+)+", 2)
    return e.value.message


def _value(node: Any, event: dict[str, Any], settings: dict[str, Any] | None = None, **kw: Any) -> Any:
    out = _both(_demo({"v": node}, **kw), {"type": "track", **event}, settings)
    return out.get("v", "<missing>") if isinstance(out, dict) else out


def test_get_without_render_are_generated() -> None:
    # By hand, from the `get`, `without` and `render` examples of docs/spec-language.md.
    get = {
        "entries": "settings.eVarMapping",
        "key": "eVar{{ item.to }}",
        "value": {"get": "item.from", "in": "properties"},
    }
    mapping = [{"from": "city", "to": "5"}, {"from": "address.zip", "to": "6"}, {"from": "[", "to": "7"}]
    rows = {"eVarMapping": [*mapping, {"from": " ", "to": "8"}, {"from": "address", "to": "9"}]}
    props = {"properties": {"city": "Paris", "address": {"zip": "75001"}}}
    assert _value(get, props, rows) == {"eVar5": "Paris", "eVar6": "75001", "eVar9": {"zip": "75001"}}
    assert _value({"get": "settings.path"}, {"event": "e"}, {"path": "event"}) == "e"
    without = {"without": "settings.setOnce[*].property", "in": "traits"}
    traits = {"traits": {"plan": "pro", "seats": 3, "address": {"city": "Oslo", "zip": "0150"}}}
    once = {"setOnce": [{"property": "plan"}, {"property": "address.city"}]}
    assert _value(without, traits, once) == {"seats": 3, "address": {"zip": "0150"}}
    assert _value({"without": "settings.names"}, {"event": "e", "a": 1}, {"names": ["a", ["type"], 3]}) == {
        "event": "e"
    }
    assert _value({"without": "settings.names", "in": "traits"}, {"traits": [1]}, {"names": "a"}) == [1]
    render = {"render": "settings.template"}
    tpl = {"template": "{{ userId }} did {{ event | upper }} {{ settings.webhookUrl }}"}
    assert _value(render, {"userId": "u1", "event": "signup"}, tpl) == "u1 did SIGNUP "
    scoped = {
        "render": "settings.template",
        "in": {"merge": ["traits", {"object": {"name": "traits.firstName", "newline": {"value": "\n"}}}]},
        "escape": "html",
    }
    tpl = {"template": "Hi {{name}}{{newline}}{{plan}} {{{plan}}} {{ settings.webhookUrl }}"}
    assert _value(scoped, {"traits": {"firstName": "Ada", "plan": "Pro & Co"}}, tpl) == (
        "Hi Ada\nPro &amp; Co Pro & Co "
    )
    assert _value(render, {}, {"template": "{{ a | nope( }}"})[0] == "InstrumentationError"
    assert _value(render, {}, {"template": 3}) == "<missing>"


def test_sum_product_count_call_are_generated() -> None:
    # By hand, from the `sum`, `product` and `count` examples of docs/spec-language.md.
    products = {"properties": {"products": [{"price": 2, "quantity": 1}, {"price": "3.5", "quantity": 3}]}}
    assert _value({"sum": "properties.products", "of": "item.price | number"}, products) == 5.5
    cart = {"properties": {"price": "2.5", "quantity": 4}}
    assert _value({"product": ["properties.price", "properties.quantity"]}, cart) == 10.0
    assert _value({"product": ["properties.price"]}, {"properties": {}}) == "<missing>"
    assert _value({"sum": ["properties.price"]}, {"properties": {}}) == 0
    assert (
        _value(
            {"sum": "properties.products", "of": "item.price"}, {"properties": {"products": [{"price": "x"}]}}
        )[0]
        == "InstrumentationError"
    )
    assert _value({"count": "properties.products", "where": {"of": "item.quantity", "gt": 1}}, products) == 1
    assert _value({"count": "properties.products"}, products) == 2
    mapper = types.ModuleType("demo_mapper")
    exec(
        "def shout(v, event, settings, ctx):\n    return None if v is None else str(v).upper()", vars(mapper)
    )  # noqa: S102
    assert _value({"call": "shout", "with": "event"}, {"event": "go"}, mapper=mapper) == "GO"
    assert _value({"call": "shout"}, {"event": "go"}, mapper=mapper) == "<missing>"


def test_lookups_with_rows_many_and_otherwise_are_generated() -> None:
    rows = {"map": [{"from": "Order Completed", "to": "purchase"}, {"from": "order_completed", "to": "buy"},
                    {"from": "x", "to": ""}, "junk"]}  # fmt: skip
    node = {"lookup": "event", "rows": "settings.map", "table": {"signup": {"name": "sign_up"}}}
    # By hand: loose matching treats `_` and spaces alike; rows come before the table; `many` keeps each once.
    assert _value(node, {"event": "order completed"}, rows) == "purchase"
    assert _value({**node, "many": True}, {"event": "ORDER-completed"}, rows) == ["purchase", "buy"]
    assert _value(node, {"event": "Signup"}, rows) == {"name": "sign_up"}
    assert _value({**node, "otherwise": "pass", "many": True}, {"event": "nope"}, rows) == ["nope"]
    assert _value({**node, "default": {"name": "other"}}, {"event": "nope"}, rows) == {"name": "other"}
    assert _value({**node, "otherwise": "error"}, {"event": "nope"}, rows)[0] == "InstrumentationError"
    dropped = _value(
        {**node, "otherwise": "drop", "error": "{{ event }} is not mapped"}, {"event": "nope"}, rows
    )
    assert dropped == ("EventDropped", "nope is not mapped")
    by_key = {"lookup": "settings.trait", "rows": "traits", "match": "ci"}
    assert _value(by_key, {"traits": {"Plan": "pro", "plan ": "x"}}, {"trait": "PLAN"}) == "pro"


def test_long_fallback_chains_generate_flat_and_agree() -> None:
    """`a ?? b ?? ...` nests each fallback in the test before it; a chain too long to nest (Python allows
    100 levels of indentation) is written flat, with the same result: the first present operand."""
    chain = " ?? ".join(f"properties.p{i}" for i in range(40))
    conn = _demo({"x": chain, "y": "properties.a ?? properties.b ?? properties.c"})
    event = {"type": "track", "event": "e", "properties": {"p38": "", "p39": 5, "b": None, "c": "c"}}
    assert _both(conn, event) == {"x": 5, "y": "c"}  # by hand: "" and null are absent, so p39 and c
