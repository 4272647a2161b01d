"""A settings rule over several keys (anyOf/oneOf at the top of the settings schema) fails with the rule's
`description`, and never echoes the config (jsonschema would quote it, secrets included). Expectations written
by hand from the comment in SettingsValidator._validate."""

import pytest

from sdk.errors import ConfigurationError
from sdk.settings import SettingsValidator

SCHEMA = {
    "type": "object",
    "properties": {
        "apiKey": {"type": "string", "secret": True},
        "host": {"type": "string"},
        "url": {"type": "string"},
    },
    "description": "set host or url: requests need a server",
    "anyOf": [{"required": ["host"]}, {"required": ["url"]}],
}


def test_a_failed_rule_says_what_to_set_and_hides_the_config():
    v = SettingsValidator(SCHEMA, "Demo")
    with pytest.raises(ConfigurationError) as info:
        v({"apiKey": "sk-very-secret"})
    assert "set host or url: requests need a server" in info.value.message
    assert "sk-very-secret" not in info.value.message


def test_a_rule_without_description_still_hides_the_config():
    schema = {k: v for k, v in SCHEMA.items() if k != "description"}
    with pytest.raises(ConfigurationError) as info:
        SettingsValidator(schema, "Demo")({"apiKey": "sk-very-secret"})
    assert "anyOf" in info.value.message and "sk-very-secret" not in info.value.message


def test_a_config_meeting_the_rule_passes():
    assert (
        SettingsValidator(SCHEMA, "Demo")({"apiKey": "k", "url": "https://x.example"})["url"]
        == "https://x.example"
    )
