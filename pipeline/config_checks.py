"""Start-up checks of each destination's config beyond its JSON Schema: what it would actually send.

Why: a schema says ``webhookUrl`` is a string; it does not say that ``not a url`` or ``ftp://host``
fails every single event, one dead letter at a time, for as long as the pipeline runs. So before
anything listens, each destination maps two probe events (a track and an identify, made up here) with
its real config, and the requests it would send are checked: an http(s) URL with a host, valid header
names, no header values with line breaks, no framing or hop-by-hop headers (those belong to the HTTP
client). A config error the connector itself raises for every probe is refused too. Errors name the
key path (``destinations[0].config.webhookUrl``); values are not echoed, since settings hold secrets.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit

from pipeline.config import ConfigError
from sdk import steps
from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.errors import ConfigurationError
from sdk.transports import transport_class

_PROBES: tuple[dict[str, Any], ...] = (
    {
        "type": "track",
        "event": "Sluice Config Check",
        "userId": "sluice-config-check",
        "anonymousId": "sluice-config-check",
        "messageId": "sluice-config-check-track",
        "timestamp": "2024-01-01T00:00:00.000Z",
        "properties": {"check": True},
        "context": {"library": {"name": "sluice"}},
    },
    {
        "type": "identify",
        "userId": "sluice-config-check",
        "anonymousId": "sluice-config-check",
        "messageId": "sluice-config-check-identify",
        "timestamp": "2024-01-01T00:00:00.000Z",
        "traits": {"email": "config-check@example.com"},
        "context": {"library": {"name": "sluice"}},
    },
)
# RFC 9110 token characters.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Message framing and connection management are the HTTP client's; a configured value would corrupt them.
FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "host", "connection", "keep-alive", "upgrade", "te", "trailer"}
)


def check_destination(connector: Connector, config: dict[str, Any], where: str) -> None:
    """Raise ConfigError (naming ``where`` and the setting) when ``config`` cannot produce valid requests."""
    config_errors: list[str] = []
    produced = 0
    for probe in _PROBES:
        try:
            requests = connector.transform(
                copy.deepcopy(probe), config, TransformContext.at(None, seed="check")
            )
        except ConfigurationError as e:
            config_errors.append(e.message)
            continue
        except Exception:  # noqa: BLE001 - a probe an event-specific rule rejects says nothing about config
            continue
        produced += 1
        if connector.has_steps:
            token = [connector.token_request(config)] if connector.spec.auth.exchange else []
            requests = [*token, *(steps.probe(r) for r in requests)]
        for r in requests:
            if r.transport != "http":
                _check_transport(r.transport, config, where)
                continue
            _check_request(r.method, r.url, r.headers, config, where)
    if config_errors and not produced:
        message = config_errors[0]
        raise ConfigError(f"{where}.config{setting_path(config, message)}: {message}")


def _check_transport(name: str, config: dict[str, Any], where: str) -> None:
    """A non-HTTP transport checks its own connection settings (address, database, ...) without connecting."""
    try:
        transport_class(name)(config)
    except (KeyError, ValueError) as e:
        message = str(e).strip("'\"")
        raise ConfigError(f"{where}.config{setting_path(config, message)}: {message}") from None


def _check_request(
    method: str, url: str, headers: dict[str, str], config: dict[str, Any], where: str
) -> None:
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        found = _setting_holding(config, lambda v: bool(v.strip()) and url.strip().startswith(v.strip()))
        why = f"uses scheme {parts.scheme!r}" if parts.scheme else "is not an absolute URL"
        raise ConfigError(
            f"{where}.config{found}: the destination URL {why}; set an absolute http:// or https:// URL"
        )
    for name, value in headers.items():
        found = _setting_holding(config, lambda v, n=name: v.strip().lower() == n.lower())
        if not _TOKEN.match(name):
            raise ConfigError(
                f"{where}.config{found}: {name!r} is not a valid HTTP header name; use letters, digits and -"
            )
        if name.lower() in FRAMING_HEADERS:
            raise ConfigError(
                f"{where}.config{found}: header {name!r} is set by the HTTP client and cannot be configured; "
                "remove it"
            )
        if "\r" in value or "\n" in value:
            raise ConfigError(f"{where}.config{found}: the value of header {name!r} contains a line break")


def _leaves(value: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")]
    return [(path, value)] if isinstance(value, str) else []


def _setting_holding(config: dict[str, Any], predicate: Any) -> str:
    """The key path (``.headers[1].from``) of the longest string setting matching ``predicate``, or ''."""
    hits = [(len(v), p) for p, v in _leaves(config) if predicate(v)]
    return max(hits)[1] if hits else ""


def setting_path(config: dict[str, Any], message: str) -> str:
    """Best guess of the setting a connector's message is about: a value it quotes, else a key it names."""
    quoted = _setting_holding(
        config, lambda v: bool(v) and (repr(v) in message or repr(v.strip()) in message)
    )
    if quoted:
        return quoted
    for key in sorted(config, key=len, reverse=True):
        if re.search(rf"(?<![\w-]){re.escape(str(key))}(?![\w-])", message):
            return f".{key}"
    return ""
