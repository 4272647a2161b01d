"""Destination settings: validated once per distinct config against the spec's JSON Schema."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema

from sdk.errors import ConfigurationError


class SettingsValidator:
    """Validates configs and fills schema defaults; remembers configs it has seen."""

    def __init__(self, schema: dict[str, Any], destination: str):
        self.schema = schema or {"type": "object"}
        self.destination = destination
        jsonschema.Draft202012Validator.check_schema(self.schema)
        self.validator = jsonschema.Draft202012Validator(self.schema)
        self.defaults = {
            k: v["default"]
            for k, v in (self.schema.get("properties") or {}).items()
            if isinstance(v, dict) and "default" in v
        }
        self.secrets = {
            k
            for k, v in (self.schema.get("properties") or {}).items()
            if isinstance(v, dict) and v.get("secret")
        }
        self._cache: dict[str, dict[str, Any]] = {}

    def __call__(self, config: dict[str, Any] | None) -> dict[str, Any]:
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise ConfigurationError(
                f"{self.destination}: the config must be an object, got {type(config).__name__}"
            )
        try:
            key = json.dumps(config, sort_keys=True, default=str)
        except (TypeError, ValueError):
            key = repr(config)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        errors = sorted(self.validator.iter_errors(config), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = ".".join(str(p) for p in e.path) or (
                e.message.split("'")[1] if e.validator == "required" and "'" in e.message else "config"
            )
            message = e.message
            if e.path and str(e.path[0]) in self.secrets:
                # jsonschema quotes the offending value; for a credential that would leak it into logs.
                message = f"the value (hidden: secret setting) fails {e.validator!r} {e.validator_value!r}"
            raise ConfigurationError(
                f"{self.destination}: setting {where!r} is invalid: {message}; fix the destination config"
            )
        full = copy.deepcopy(self.defaults)
        full.update({k: v for k, v in config.items() if v is not None or k not in full})
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[key] = full
        return full
