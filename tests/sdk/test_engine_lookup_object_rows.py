"""`lookup` with an object as `rows`: read the key a setting names (e.g. the trait a destination's
"group type trait" setting points at). Expectations are written from the rule in sdk/mapping/lookup.py."""

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.spec.model import DestinationSpec

CTX = TransformContext.at("2024-05-01T12:00:00Z", seed="lookup-rows")


def _run(body, event, settings):
    spec = {
        "spec_version": 2, "name": "t", "display_name": "T", "event_types": ["group"],
        "settings": {"type": "object", "properties": {k: {} for k in settings}},
        "endpoints": {"e": {"url": "https://t.example/"}},
        "mappings": {"group": {"endpoint": "e", "body": body}},
    }  # fmt: skip
    [r] = Connector(DestinationSpec.model_validate(spec)).transform({"type": "group", **event}, settings, CTX)
    return r.json_body


TRAITS = {"plan_kind": "tier", "Plan Name": "Pro", "empty": "", "nothing": None, "seats": 4}


@pytest.mark.parametrize(
    ("mode", "key", "expected"),
    [
        ("exact", "plan_kind", {"v": "tier"}),
        ("exact", "Plan Name", {"v": "Pro"}),
        ("exact", "plan name", {}),  # exact: case matters
        ("ci", " plan NAME ", {"v": "Pro"}),
        ("loose", "plan_name", {"v": "Pro"}),  # loose: space and underscore alike
        ("exact", "seats", {"v": 4}),
        ("exact", "empty", {}),  # empty text and null are no match, as with settings rows
        ("exact", "nothing", {}),
        ("exact", "absent", {}),
    ],
)
def test_object_rows_read_the_named_key(mode, key, expected):
    body = {"v": {"lookup": "settings.which", "rows": "traits", "match": mode}}
    assert _run(body, {"traits": TRAITS}, {"which": key}) == expected


def test_object_rows_fall_back_to_the_static_table_and_default():
    body = {"v": {"lookup": "settings.which", "rows": "traits", "match": "exact",
                  "table": {"other": "from-table"}, "default": "none"}}  # fmt: skip
    assert _run(body, {"traits": TRAITS}, {"which": "other"}) == {"v": "from-table"}
    assert _run(body, {"traits": TRAITS}, {"which": "missing"}) == {"v": "none"}


def test_object_values_are_copied_not_shared():
    traits = {"company": {"name": "Acme"}}
    body = {"v": {"lookup": "settings.which", "rows": "traits", "match": "exact"}}
    out = _run(body, {"traits": traits}, {"which": "company"})
    assert out == {"v": {"name": "Acme"}}
    assert out["v"] is not traits["company"]
