"""`one_of` also takes an object: the subject must be one of its keys (a set written once, e.g. in `vars`,
read without building a list per test). Expectations follow the rule in sdk/mapping/conditions.py."""

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.spec.model import DestinationSpec

CTX = TransformContext.at("2024-05-01T12:00:00Z", seed="one-of")


def _kept(names, traits, ci=False):
    cond = {"of": "item.key", "one_of": "vars.names", **({"ci": True} if ci else {})}
    spec = {
        "spec_version": 2, "name": "t", "display_name": "T", "event_types": ["identify"],
        "settings": {"type": "object", "properties": {"names": {}}},
        "vars": {"names": {"entries": "settings.names", "key": "item", "value": True}},
        "endpoints": {"e": {"url": "https://t.example/"}},
        "mappings": {"identify": {"endpoint": "e", "body": {
            "kept": {"entries": "traits", "key": "item.key", "value": "item.value", "where": cond}}}},
    }  # fmt: skip
    conn = Connector(DestinationSpec.model_validate(spec))
    [r] = conn.transform({"type": "identify", "userId": "u", "traits": traits}, {"names": names}, CTX)
    return r.json_body.get("kept")


@pytest.mark.parametrize(
    ("names", "ci", "expected"),
    [
        (["age", "plan"], False, {"age": 3, "plan": "pro"}),
        (["AGE"], False, {}),  # exact: case matters
        (["AGE", " Plan "], True, {"age": 3, "plan": "pro"}),
        ([], False, {}),
    ],
)
def test_one_of_an_object_means_one_of_its_keys(names, ci, expected):
    assert _kept(names, {"age": 3, "plan": "pro", "email": "a@b.c"}, ci) == expected


def test_one_of_a_list_still_works():
    spec_cond = {"of": "event", "one_of": "properties.allowed"}
    spec = {
        "spec_version": 2, "name": "t", "display_name": "T", "event_types": ["track"],
        "endpoints": {"e": {"url": "https://t.example/"}},
        "mappings": {"track": {"endpoint": "e",
                               "body": {"ok": {"if": spec_cond, "then": True, "else": False}}}},
    }  # fmt: skip
    conn = Connector(DestinationSpec.model_validate(spec))
    [r] = conn.transform({"type": "track", "event": "b", "properties": {"allowed": ["a", "b"]}}, {}, CTX)
    assert r.json_body == {"ok": True}
