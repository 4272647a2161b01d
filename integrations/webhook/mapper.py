"""Webhook: method, headers and per-event URL come from settings and the event, which a spec cannot template.

Behaviour (the contract users rely on when they point a webhook at their own service):

* ``webhookMethod`` picks the method. POST, PUT and PATCH send the event as a JSON body with
  ``content-type: application/json`` unless a configured header overrides it. GET and DELETE have no body:
  the event's ``properties`` go in the query string, nested keys flattened with dots (``a.b.c``).
* ``headers`` (config) adds ``from: to`` pairs; an event may add more in its top-level ``header`` object
  (non-string values are sent as JSON, because a header can only carry text).
* An event may redirect itself with ``fullPath`` (a whole URL) and/or ``appendPath`` (appended to the URL).
  These three control keys are removed from the body so the receiver sees only the event.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from sdk.errors import ConfigurationError, InstrumentationError
from sdk.mapping.formats import flatten
from sdk.request import VendorRequest

BODY_METHODS = {"POST", "PUT", "PATCH"}
QUERY_METHODS = {"GET", "DELETE"}
CONTROL_KEYS = ("header", "fullPath", "appendPath")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_URL = re.compile(r"^https?://[^\s/?#]+", re.IGNORECASE)


def _header_text(value: Any) -> str:
    """Headers carry text only: objects and lists go as compact JSON, null as 'null', booleans lower-case."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _check_header(name: str, value: str, where: str, error: type[Exception]) -> None:
    if not _TOKEN.match(name):
        raise error(
            f"header name {name!r} from {where} is not a valid HTTP header name; use letters, digits and -"
        )
    if "\r" in value or "\n" in value:
        raise error(f"header {name!r} from {where} contains a line break; remove it")


def _method_of(settings: dict[str, Any]) -> str:
    method = str(settings.get("webhookMethod") or "POST").strip().upper()
    if method not in BODY_METHODS | QUERY_METHODS:
        raise ConfigurationError(
            f"webhookMethod {method!r} is not supported; use POST, PUT, PATCH, GET or DELETE"
        )
    return method


def _url_of(event: dict[str, Any], settings: dict[str, Any]) -> str:
    base = settings.get("webhookUrl")
    full = event.get("fullPath")
    if isinstance(full, str) and full.strip():
        base = full.strip()
        if not _URL.match(base):
            raise InstrumentationError(
                f"the event's fullPath {full[:80]!r} is not an http(s) URL; fix or remove it"
            )
    if not isinstance(base, str) or not _URL.match(base.strip()):
        raise ConfigurationError(
            "webhookUrl must be an absolute http:// or https:// URL; fix the destination config"
        )
    url = base.strip()
    append = event.get("appendPath")
    if isinstance(append, str) and append:
        if any(c in append for c in " \r\n\t"):
            raise InstrumentationError("the event's appendPath contains whitespace; URL-encode it")
        url += append
    return url


def _headers_of(event: dict[str, Any], settings: dict[str, Any], method: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    if method in BODY_METHODS:
        headers["content-type"] = "application/json"
    rows = settings.get("headers")
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        name = row.get("from")
        if not isinstance(name, str) or not name.strip():
            continue
        name = name.strip()
        value = _header_text(row.get("to", ""))
        _check_header(name, value, "the destination config", ConfigurationError)
        _set_header(headers, name, value)
    extra = event.get("header")
    if isinstance(extra, dict):
        for name, raw in extra.items():
            value = _header_text(raw)
            _check_header(str(name), value, "the event's 'header' object", InstrumentationError)
            _set_header(headers, str(name), value)
    return headers


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    """Header names are case-insensitive: a configured 'Content-Type' replaces the default one."""
    for existing in [k for k in headers if k.lower() == name.lower()]:
        del headers[existing]
    headers[name.lower()] = value


def transform(event: dict[str, Any], kit: Any) -> VendorRequest:
    settings = kit.settings
    method = _method_of(settings)
    url = _url_of(event, settings)
    headers = _headers_of(event, settings, method)
    if method in QUERY_METHODS:
        # The URL's own query (e.g. from appendPath) joins the properties as params, so no HTTP client can
        # drop one for the other when it encodes params into the URL.
        base, _, query = url.partition("?")
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(_query_of(event))
        return VendorRequest(method=method, url=base, headers=headers, params=params)
    return VendorRequest(method=method, url=url, headers=headers, json=_body_of(event))


def _query_of(event: dict[str, Any]) -> dict[str, Any]:
    """Properties as query parameters; empty objects/lists have no query form and are left out."""
    props = event.get("properties")
    if not isinstance(props, dict) or not props:
        return {}
    return {k: v for k, v in flatten(props, ".").items() if not isinstance(v, (dict, list))}


def _body_of(event: dict[str, Any]) -> dict[str, Any]:
    """The event minus routing keys; server-side ``request_ip`` fills ``context.ip`` if the SDK sent none."""
    body = {k: v for k, v in event.items() if k not in CONTROL_KEYS}
    ip = body.get("request_ip")
    ctx = body.get("context")
    if isinstance(ip, str) and ip and (ctx is None or isinstance(ctx, dict)) and not (ctx or {}).get("ip"):
        body["context"] = {**(ctx or {}), "ip": ip}
    return body
