"""A var that cannot be computed is a configuration error: vars read only settings, so the settings are
what the user must fix (before this, a lookup's `otherwise: error` in a var surfaced as an error in the
event)."""

from __future__ import annotations

import pytest

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import ConfigurationError
from sdk.spec.model import DestinationSpec

NOW = TransformContext.at("2024-05-01T12:00:00Z")


def _connector(host: dict) -> Connector:
    return Connector(
        DestinationSpec.model_validate(
            {
                "spec_version": 2,
                "name": "regional",
                "display_name": "Regional",
                "settings": {"type": "object", "properties": {"region": {"type": "string"}}},
                "event_types": ["track"],
                "vars": {"host": host},
                "endpoints": {"e": {"url": "https://{{ vars.host }}/v1/track"}},
                "mappings": {"track": {"endpoint": "e", "body": {"name": "event"}}},
            }
        )
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
