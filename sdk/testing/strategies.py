"""Hypothesis strategies for events, importable by contributors::

    from sdk.testing.strategies import events
    @given(events("track"))
    def test_my_connector_never_crashes(event): ...

The generators lean on the nasty cases that break mappers in production:
unicode everywhere, nulls where objects are expected, wrong scalar types,
missing ids, 50 KB strings, 500-key dicts and deeply nested properties.
Huge values are drawn from a few prebuilt constants instead of generated
character by character, so 200 examples per event type stay fast.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")

HUGE_STRING = "é" + "x" * 50_000
WIDE_DICT = {f"k{i}": i for i in range(500)}


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": "bottom"}
    for i in range(depth):
        node = {f"level{i}": node}
    return node


DEEP_DICT = _nested(60)
NASTY_STRINGS = [
    "",
    " ",
    "null",
    "None",
    "0",
    "-1",
    "1e309",
    "NaN",
    "true",
    "💩🎉",
    "日本語テキスト",
    "\u202eRTL",
    "a\x00b",
    "line\nbreak",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%s%n",
    "../../etc/passwd",
    "\ud7ff",
    "ß" * 10,
]

# Settings every fuzz test should use: fixed seed, bounded, no example database, no timing flakiness.
# Vendor-contract fuzzing re-runs the first examples of the same derandomized stream (a subset, to
# keep the suite fast); the full 200 run for crash and well-formedness checks in test_fuzz.
CONTRACT_FUZZ_EXAMPLES = 40

FUZZ_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

text = st.one_of(st.text(max_size=30), st.sampled_from(NASTY_STRINGS))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
huge = st.sampled_from([HUGE_STRING, WIDE_DICT, DEEP_DICT, list(range(1000))])
json_values = st.recursive(
    st.one_of(scalars, huge),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=12,
)
property_dicts = st.dictionaries(
    st.one_of(
        st.sampled_from(
            [
                "revenue",
                "price",
                "quantity",
                "currency",
                "email",
                "name",
                "products",
                "id",
                "value",
                "category",
                "url",
                "title",
                "phone",
                "$set",
            ]
        ),
        st.text(max_size=15),
    ),
    json_values,
    max_size=8,
)
ids = st.one_of(st.none(), text, st.integers(), st.uuids().map(str), st.just(""))
timestamps = st.one_of(
    st.none(),
    st.just("2024-05-01T12:00:00.000Z"),
    st.just("not a date"),
    st.integers(min_value=0, max_value=2**41),
    st.datetimes().map(lambda d: d.isoformat()),
    text,
)
# Wrong-typed values that replace whole sub-objects of an event.
wrong_types = st.one_of(st.none(), st.integers(), text, st.lists(scalars, max_size=3), st.booleans())


def _base_event(event_type: str) -> dict[str, Any]:
    return {
        "type": event_type,
        "messageId": "fuzz-message-id",
        "anonymousId": "fuzz-anon-id",
        "userId": "fuzz-user-id",
        "timestamp": "2024-05-01T12:00:00.000Z",
        "context": {"ip": "203.0.113.9", "library": {"name": "fuzz", "version": "0"}, "traits": {}},
        "properties": {},
        "traits": {},
        "event": "Fuzz Event",
        "name": "Fuzz Page",
        "groupId": "fuzz-group",
        "previousId": "fuzz-previous",
        "integrations": {"All": True},
    }


@st.composite
def events(
    draw: st.DrawFn, event_type: str, base: st.SearchStrategy[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One event of ``event_type``: a realistic base (a fixture event if given) with hostile mutations."""
    ev = copy.deepcopy(draw(base)) if base is not None else _base_event(event_type)
    ev["type"] = event_type
    for key in ("userId", "anonymousId", "messageId", "groupId", "previousId"):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            ev.pop(key, None)
        elif choice == 1:
            ev[key] = draw(ids)
    if draw(st.booleans()):
        ev["timestamp"] = draw(timestamps)
    for key in ("properties", "traits"):
        choice = draw(st.integers(0, 6))
        if choice <= 2:
            cur = ev.get(key) if isinstance(ev.get(key), dict) else {}
            ev[key] = {**cur, **draw(property_dicts)}
        elif choice == 3:
            ev[key] = draw(wrong_types)
        elif choice == 4:
            ev.pop(key, None)
    choice = draw(st.integers(0, 6))
    ctx = ev.get("context") if isinstance(ev.get("context"), dict) else {}
    if choice <= 1:
        ctx = {**ctx, "traits": draw(st.one_of(property_dicts, wrong_types))}
        ev["context"] = ctx
    elif choice == 2:
        ev["context"] = draw(wrong_types)
    elif choice == 3:
        ctx = {
            **ctx,
            draw(st.sampled_from(["device", "os", "page", "app", "campaign", "locale"])): draw(json_values),
        }
        ev["context"] = ctx
    if draw(st.integers(0, 4)) == 0:
        ev[draw(st.sampled_from(["event", "name", "userId", "properties"]))] = draw(huge)
    if draw(st.integers(0, 6)) == 0:
        ev["event"] = draw(st.one_of(wrong_types, text))
    return ev


def config_variants(base_configs: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Configs from the connector's own fixtures: fuzzing is about events, not broken settings."""
    return st.sampled_from(base_configs or [{}])
