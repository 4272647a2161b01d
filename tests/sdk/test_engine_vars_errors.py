"""A var that cannot be computed is a configuration error: vars read only settings, so the settings are
what the user must fix (before this, a lookup's `otherwise: error` in a var surfaced as an error in the
event)."""

from __future__ import annotations

import pytest
from mini_spec import NOW, mini_connector

from sdk.errors import ConfigurationError


def _connector(host: dict):
    return mini_connector(
        "track",
        {"body": {"name": "event"}},
        settings={"type": "object", "properties": {"region": {"type": "string"}}},
        vars={"host": host},
        endpoints={"e": {"url": "https://{{ vars.host }}/v1/track"}},
    )


LOOKUP = {
    "lookup": "settings.region",
    "table": {"eu": "api.eu.example"},
    "match": "ci",
    "otherwise": "error",
    "error": "region '{{ settings.region }}' is unknown; use EU",
}


def test_lookup_error_in_a_var_is_a_configuration_error_with_its_message() -> None:
    with pytest.raises(ConfigurationError, match="region 'mars' is unknown; use EU"):
        _connector(LOOKUP).transform({"type": "track", "event": "Go"}, {"region": "mars"}, NOW)


def test_required_var_missing_is_a_configuration_error() -> None:
    var = {"from": "settings.region", "required": True, "error": "set region"}
    with pytest.raises(ConfigurationError, match="set region"):
        _connector(var).transform({"type": "track", "event": "Go"}, {}, NOW)


def test_a_known_value_still_maps() -> None:
    [req] = _connector(LOOKUP).transform({"type": "track", "event": "Go"}, {"region": " EU "}, NOW)
    assert req.url == "https://api.eu.example/v1/track"
