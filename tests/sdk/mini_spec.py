"""A one-endpoint destination built from a few mapping keys, for engine feature tests."""

from __future__ import annotations

from typing import Any

from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.spec.model import DestinationSpec

NOW = TransformContext.at("2024-05-01T12:00:00Z")


def mini_connector(etype: str, mapping: dict[str, Any], **spec: Any) -> Connector:
    """A destination taking ``etype`` events to https://x.example/ through ``mapping`` (endpoint ``e``
    unless the mapping names its own endpoints in ``spec``)."""
    full = {
        "spec_version": 2,
        "name": "mini",
        "display_name": "Mini",
        "event_types": [etype],
        "endpoints": {"e": {"url": "https://x.example/"}},
        "mappings": {etype: {"endpoint": "e", **mapping}},
        **spec,
    }
    return Connector(DestinationSpec.model_validate(full))


def mini_body(etype: str, body: Any, event: dict[str, Any], settings: dict[str, Any] | None = None) -> Any:
    """The one request body ``body`` maps ``event`` to."""
    [req] = mini_connector(etype, {"body": body}).transform({"type": etype, **event}, settings or {}, NOW)
    return req.json_body
