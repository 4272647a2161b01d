"""``{of: X, matched_by: Y}``: a regular expression taken from an expression (a user's pattern in the
settings rows), searched in X; patterns that can backtrack exponentially are refused.

Expectations are written by hand from the condition's description in sdk/mapping/conditions.py.
"""

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import ConfigurationError
from sdk.mapping.conditions import user_pattern
from sdk.spec.model import DestinationSpec


@pytest.fixture(params=["generated", "closures"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SLUICE_CODEGEN", "1" if request.param == "generated" else "0")
    return request.param


def _channels(rows: list, event_name: object, ci: bool = False) -> list:
    where = {"of": "event", "matched_by": "item.pattern"}
    if ci:
        where["ci"] = True
    spec = {
        "spec_version": 2,
        "name": "demo",
        "display_name": "Demo",
        "settings": {"type": "object", "properties": {"rows": {"type": "array"}}},
        "event_types": ["track"],
        "endpoints": {"e": {"url": "https://api.demo.io/v1/route"}},
        "mappings": {
            "track": {
                "endpoint": "e",
                "body": {"to": {"each": "settings.rows", "where": where, "map": "item.channel"}},
            }
        },
    }
    conn = Connector(DestinationSpec.model_validate(spec))
    (req,) = conn.transform(
        {"type": "track", "event": event_name}, {"rows": rows}, TransformContext.at("2024-05-01T12:00:00Z")
    )
    return req.json_body["to"]


ROWS = [
    {"pattern": "^Order (Completed|Refunded)$", "channel": "orders"},
    {"pattern": "Trial", "channel": "growth"},
    {"pattern": None, "channel": "never"},
]


def test_the_pattern_is_searched_in_the_value(backend):
    assert _channels(ROWS, "Order Completed") == ["orders"]
    assert _channels(ROWS, "Free Trial Started") == ["growth"]
    assert _channels(ROWS, "Order Shipped") == []


def test_ci_ignores_case(backend):
    assert _channels(ROWS, "order refunded") == []
    assert _channels(ROWS, "order refunded", ci=True) == ["orders"]


def test_numbers_are_matched_as_text_and_missing_values_never_match(backend):
    assert _channels([{"pattern": "^4", "channel": "n"}], 42) == ["n"]
    assert _channels([{"pattern": ".*", "channel": "n"}], None) == []


def test_an_invalid_pattern_is_a_configuration_error(backend):
    with pytest.raises(ConfigurationError, match="not a valid regular expression"):
        _channels([{"pattern": "(", "channel": "x"}], "Order Completed")


@pytest.mark.parametrize("pattern", ["(a+)+$", "(\\w*)*", "(a|b)+", "(x{2})?"])
def test_patterns_that_can_backtrack_exponentially_are_refused(pattern):
    with pytest.raises(ConfigurationError, match="exponential"):
        user_pattern(pattern)


@pytest.mark.parametrize("pattern", ["^Trial (Started|Ended)$", "(ab)+", "[a-z]+", "\\(a+\\)+", "a{2,3}"])
def test_ordinary_patterns_are_accepted(pattern):
    assert user_pattern(pattern).pattern == pattern
