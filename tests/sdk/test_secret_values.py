"""Secret setting values, nested ones included: a ``secret: true`` property of list rows (Slack's per-channel
webhook URLs) is redacted like a top-level secret. Expectations written by hand from the docstring of
``DestinationSpec.secret_values``."""

from sdk.spec.model import DestinationSpec

SPEC = {
    "spec_version": 2,
    "name": "demo",
    "display_name": "Demo",
    "settings": {
        "type": "object",
        "properties": {
            "apiKey": {"type": "string", "secret": True},
            "region": {"type": "string"},
            "channels": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "hook": {"type": "string", "secret": True}},
                },
            },
            "auth": {"type": "object", "secret": True},
        },
    },
    "event_types": ["track"],
    "endpoints": {"e": {"url": "https://x.example/"}},
    "mappings": {"track": {"endpoint": "e", "body": {"a": "event"}}},
}


def test_top_level_nested_and_whole_object_secrets_are_collected_longest_first():
    spec = DestinationSpec.model_validate(SPEC)
    config = {
        "apiKey": "key-1",
        "region": "eu-west",
        "channels": [
            {"name": "orders", "hook": "https://hooks.example/T/B/long-secret"},
            {"name": "x", "hook": ""},
        ],
        "auth": {"user": "svc", "pass": "p4ss"},
        "unknown": "not-a-secret",
    }
    assert spec.secret_values(config) == ["https://hooks.example/T/B/long-secret", "key-1", "p4ss", "svc"]


def test_values_of_other_settings_and_booleans_are_not_secrets():
    spec = DestinationSpec.model_validate(SPEC)
    assert spec.secret_values({"region": "us", "channels": [{"name": "orders"}], "apiKey": True}) == []
