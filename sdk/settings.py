"""Destination settings: checked once per distinct config against the spec's JSON Schema.

Three kinds of keys are accepted: those the spec declares, those it lists under ``ignored_settings``
(device-mode and UI-only keys that migrated RudderStack configs carry), and the settings every destination
shares (``COMMON_SETTINGS``: event filtering and consent, implemented once in ``sdk/event_filters.py``).
Any other key is either a near miss of a known one (``residencyserver`` for ``residencyServer``), refused
with a did-you-mean, because a misspelt setting silently sends data elsewhere; or reported once as a
warning, because configs also carry keys of features Sluice does not have.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema

from sdk.errors import ConfigurationError

_ROWS = {"type": ["array", "object", "null"]}
COMMON_SETTINGS: dict[str, Any] = {
    "eventFilteringOption": {
        "type": ["string", "null"],
        "enum": ["disable", "whitelistedEvents", "blacklistedEvents", "", None],
        "default": "disable",
        "description": "Track events by name: disable, whitelistedEvents (allow) or blacklistedEvents (drop)",
    },
    "whitelistedEvents": {**_ROWS, "description": "Allowlisted track event names, as [{eventName}] rows"},
    "blacklistedEvents": {**_ROWS, "description": "Denylisted track event names, as [{eventName}] rows"},
    "oneTrustCookieCategories": {**_ROWS, "description": "OneTrust categories that must be consented"},
    "ketchConsentPurposes": {**_ROWS, "description": "Ketch purposes that must be consented"},
    "consentManagement": {
        **_ROWS,
        "description": "Consent rules per source type: provider, consents, strategy",
    },
}
# Keys of RudderStack's own delivery machinery and UI, meaningless to a connector.
PLATFORM_KEYS = frozenset({
    "connectionMode", "useNativeSDK", "useNativeSDKToSend", "eventDelivery", "eventDeliveryTS",
    "blacklistedEvents", "whitelistedEvents", "eventFilteringOption", "destinationDefinitionId",
    "transformAt", "transformAtV1", "includeKeys", "excludeKeys", "saveDestinationResponse",
})  # fmt: skip


def _edit_distance(a: str, b: str, limit: int = 2) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


def near_miss(key: str, known: list[str]) -> str | None:
    """The known key ``key`` was probably meant to be: same letters but case, or a small typo."""
    low = key.lower()
    for k in known:
        if k.lower() == low:
            return k
    if len(key) < 8:
        return None  # short names differ by a letter by chance (`header` next to `headers`): only warn
    best = None
    for k in known:
        if len(k) >= 8 and _edit_distance(key.lower(), k.lower()) <= (1 if len(k) < 12 else 2):
            if best is None:
                best = k
            else:
                return None  # ambiguous: say nothing rather than guess
    return best


class SettingsValidator:
    """Validates configs and fills schema defaults; remembers configs it has seen."""

    def __init__(self, schema: dict[str, Any], destination: str, ignored: list[str] | None = None):
        schema = copy.deepcopy(schema or {"type": "object"})
        props = schema.setdefault("properties", {})
        for k, v in COMMON_SETTINGS.items():
            props.setdefault(k, v)
        self.schema = schema
        self.destination = destination
        jsonschema.Draft202012Validator.check_schema(self.schema)
        self.validator = jsonschema.Draft202012Validator(self.schema)
        self.declared = [k for k in props if k not in COMMON_SETTINGS]
        self.known = set(props) | set(ignored or ()) | PLATFORM_KEYS
        self.defaults = {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}
        self.secrets = {k for k, v in props.items() if isinstance(v, dict) and v.get("secret")}
        self._cache: dict[str, tuple[dict[str, Any], list[str]]] = {}
        # Config objects seen recently, by identity: the pipeline passes the same dict for every event of a
        # destination, so the JSON key is computed once. (Callers must not mutate a config after use.)
        self._by_id: dict[int, tuple[Any, tuple[dict[str, Any], list[str]]]] = {}

    def __call__(self, config: dict[str, Any] | None) -> dict[str, Any]:
        return self.check(config)[0]

    def check(self, config: dict[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
        """(settings with defaults, warnings about unknown keys); raises ConfigurationError."""
        seen = self._by_id.get(id(config))
        if seen is not None and seen[0] is config:
            return seen[1]
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
        if hit is None:
            hit = self._validate(config)
            if len(self._cache) > 1024:
                self._cache.clear()
            self._cache[key] = hit
        if len(self._by_id) > 256:
            self._by_id.clear()
        self._by_id[id(config)] = (config, hit)  # keeps `config` alive, so its id stays unique
        return hit

    def _validate(self, config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        warnings = []
        for k in config:
            if k in self.known:
                continue
            guess = near_miss(str(k), self.declared)
            if guess is not None:
                raise ConfigurationError(
                    f"{self.destination}: unknown setting `{k}`: did you mean `{guess}`? Fix the key in the "
                    "destination config"
                )
            warnings.append(f"{self.destination}: setting `{k}` is not used by this connector; it is ignored")
        errors = sorted(self.validator.iter_errors(config), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = ".".join(str(p) for p in e.path) or (
                e.message.split("'")[1] if e.validator == "required" and "'" in e.message else "config"
            )
            message = e.message
            if e.validator in ("anyOf", "oneOf", "allOf", "not", "if"):
                # A rule over several settings: its `description` says what to set; the config itself (which
                # jsonschema would quote, secrets and all) is never echoed.
                desc = e.schema.get("description") if isinstance(e.schema, dict) else None
                message = desc or f"the settings do not meet the rule {e.validator!r}"
            elif e.path and str(e.path[0]) in self.secrets:
                # jsonschema quotes the offending value; for a credential that would leak it into logs.
                message = f"the value (hidden: secret setting) fails {e.validator!r} {e.validator_value!r}"
            raise ConfigurationError(
                f"{self.destination}: setting {where!r} is invalid: {message}; fix the destination config"
            )
        full = copy.deepcopy(self.defaults)
        full.update({k: v for k, v in config.items() if v is not None or k not in full})
        return full, warnings
