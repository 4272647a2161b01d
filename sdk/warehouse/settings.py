"""Everything that shapes one event's rows, gathered from three places in one object.

* destination settings (``config``): ``allowUsersContextTraits``, ``underscoreDivideNumbers``,
  ``skipTracksTable``, ``skipUsersTable``, ``storeFullEvent``, ``jsonPaths`` (comma-separated);
* per-event options: ``integrations.<KEY>.options`` (``KEY`` is the warehouse's key, such as
  ``POSTGRES`` or ``RS``), over ``integrations.DATA_WAREHOUSE.options`` which applies to every
  warehouse: ``skipTracksTable``, ``skipUsersTable``, ``useBlendoCasing``,
  ``skipReservedKeywordsEscaping``, ``jsonPaths`` (a list);
* load options: ``metadata.sourceCategory`` (``cloud`` sources send ``recordId``s and deep objects)
  and ``env.WH_MAX_COLUMNS_IN_EVENT`` (default 200).

Flags missing from the destination settings are off, as for destinations created before the flag
existed; Sluice's own ``integration: warehouse`` config turns the modern defaults on explicitly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sdk.warehouse.naming import Naming
from sdk.warehouse.providers import Provider, provider_for

DEFAULT_MAX_COLUMNS = 200


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "on")
    return bool(value)


def _paths(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return [p.strip() for p in value if isinstance(p, str) and p.strip()]


def integration_options(event: dict[str, Any], provider: Provider) -> dict[str, Any]:
    """``DATA_WAREHOUSE`` options overlaid by the warehouse's own (keys matched case-insensitively)."""
    integrations = event.get("integrations")
    if not isinstance(integrations, dict):
        return {}
    by_key = {str(k).upper(): v for k, v in integrations.items()}
    out: dict[str, Any] = {}
    for key in ("DATA_WAREHOUSE", provider.key):
        block = by_key.get(key)
        if isinstance(block, dict) and isinstance(block.get("options"), dict):
            out.update(block["options"])
    return out


@dataclass(frozen=True)
class Settings:
    provider: Provider
    naming: Naming
    users_context_traits: bool
    skip_tracks: bool
    skip_users: bool
    store_full_event: bool
    json_paths: tuple[str, ...]
    max_columns: int
    source_category: str

    @classmethod
    def build(
        cls, provider: Provider, config: dict[str, Any], event: dict[str, Any], options: dict[str, Any]
    ) -> Settings:
        """The settings for this event; events with the same options share one (cached) instance,
        and so its name cache."""
        config = config if isinstance(config, dict) else {}
        options = options if isinstance(options, dict) else {}
        opts = integration_options(event, provider)
        key = json.dumps(
            [config, opts, options.get("env"), options.get("metadata")], sort_keys=True, default=str
        )
        return _build(provider.name, key)

    @classmethod
    def _from(cls, provider: Provider, key: str) -> Settings:
        config, opts, env, metadata = json.loads(key)
        env = env if isinstance(env, dict) else {}
        metadata = metadata if isinstance(metadata, dict) else {}
        try:
            max_columns = int(env.get("WH_MAX_COLUMNS_IN_EVENT") or DEFAULT_MAX_COLUMNS)
        except (TypeError, ValueError):
            max_columns = DEFAULT_MAX_COLUMNS
        naming = Naming(
            provider,
            divide_numbers=_flag(config.get("underscoreDivideNumbers")),
            blendo=_flag(opts.get("useBlendoCasing")),
            escape_keywords=not _flag(opts.get("skipReservedKeywordsEscaping")),
        )
        return cls(
            provider=provider,
            naming=naming,
            users_context_traits=_flag(config.get("allowUsersContextTraits")),
            skip_tracks=_flag(config.get("skipTracksTable")) or _flag(opts.get("skipTracksTable")),
            skip_users=_flag(config.get("skipUsersTable")) or _flag(opts.get("skipUsersTable")),
            store_full_event=_flag(config.get("storeFullEvent")),
            json_paths=tuple(_paths(config.get("jsonPaths")) + _paths(opts.get("jsonPaths"))),
            max_columns=max_columns,
            source_category=str(metadata.get("sourceCategory") or "").lower(),
        )


@lru_cache(maxsize=1024)
def _build(provider_name: str, key: str) -> Settings:
    return Settings._from(provider_for(provider_name), key)
