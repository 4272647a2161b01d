"""The gateway's OpenAPI 3.1 description, written by hand from what the handlers accept and answer.

It is served at ``/openapi.json`` and fuzzed by schemathesis in the test suite
(tests/pipeline/test_gateway_fuzz.py), so it must stay exact: every status the gateway can answer is
listed with its body, and the limits are the configured ones. Events may carry fields not listed here
(Segment and RudderStack events do); they are stored as sent.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import SluiceConfig
from pipeline.gateway.events import EVENT_TYPES, MAX_DEPTH, MAX_ID_BYTES

_ERROR = {
    "type": "object",
    "required": ["success", "code", "message"],
    "properties": {
        "success": {"const": False},
        "code": {"type": "string"},
        "message": {"type": "string", "description": "what is wrong and how to fix it"},
    },
}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "string"}}
}


def _id(what: str) -> dict[str, Any]:
    return {
        "type": ["string", "integer"],
        "maxLength": MAX_ID_BYTES,
        "description": f"{what}; at most {MAX_ID_BYTES} bytes in UTF-8",
    }


_TIME = {
    "type": "string",
    "format": "date-time",
    "description": "ISO-8601; its UTC time must be in years 1-9999",
}
_OBJECT = {"type": "object", "description": f"any JSON object, nested at most {MAX_DEPTH} levels in all"}


def _event(etype: str | None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "userId": _id("the user's id"),
        "anonymousId": _id("the device or visitor id"),
        "messageId": _id("unique per event and source; duplicates within the dedupe window are dropped"),
        "timestamp": _TIME,
        "originalTimestamp": _TIME,
        "sentAt": _TIME,
        "context": _OBJECT,
        "integrations": _OBJECT,
        "properties": _OBJECT,
        "traits": _OBJECT,
        "event": {"type": "string", "minLength": 1, "pattern": r"\S"},
        "name": {"type": "string"},
        "groupId": _id("the group's id"),
        "previousId": _id("the user's previous id"),
    }
    required: list[str] = []
    if etype is None:
        props["type"] = {"type": "string", "enum": list(EVENT_TYPES)}
        required.append("type")
    elif etype == "track":
        required.append("event")
    elif etype == "group":
        required.append("groupId")
    elif etype == "alias":
        required.append("previousId")
    schema: dict[str, Any] = {
        "type": "object",
        "properties": props,
        "anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}],
    }
    if required:
        schema["required"] = required
    return schema


def _responses(config: SluiceConfig) -> dict[str, Any]:
    g = config.gateway

    def err(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": _ERROR}},
        }
        if headers:
            out["headers"] = headers
        return out

    return {
        "200": {
            "description": "persisted (committed to the queue) before this answer",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["success"],
                        "properties": {"success": {"const": True}},
                    }
                }
            },
        },
        "400": err("invalid JSON or event; the message names the field (and the batch index)"),
        "401": err("unknown or missing write key"),
        "408": err(f"the body did not arrive within {g.body_timeout_s:g} s"),
        "413": err(
            f"an event above {g.max_event_bytes} bytes or a request above {g.max_request_bytes} bytes"
        ),
        "431": err(f"request line and headers above {g.max_header_bytes} bytes"),
        "503": err("queue unreachable, pipeline behind, or too many request bytes in flight", _RETRY_AFTER),
    }


def openapi_document(config: SluiceConfig) -> dict[str, Any]:
    """The gateway's API: what clients may send and every answer they can get."""
    responses = _responses(config)
    paths: dict[str, Any] = {}
    for t in EVENT_TYPES:
        paths[f"/v1/{t}"] = {
            "post": {
                "operationId": t,
                "summary": f"Send one {t} event",
                "security": [{"writeKey": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{t}"}}},
                },
                "responses": responses,
            }
        }
    paths["/v1/batch"] = {
        "post": {
            "operationId": "batch",
            "summary": f"Send events in one request of up to {config.gateway.max_request_bytes} bytes",
            "security": [{"writeKey": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["batch"],
                            "properties": {
                                "batch": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {"$ref": "#/components/schemas/Event"},
                                },
                                "context": _OBJECT,
                                "integrations": _OBJECT,
                                "sentAt": _TIME,
                                "writeKey": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": responses,
        }
    }
    health = {
        "type": "object",
        "required": ["ready", "database", "status"],
        "properties": {
            "ready": {"type": "boolean"},
            "database": {"enum": ["up", "unreachable"]},
            "status": {"enum": ["ok", "degraded", "unavailable"]},
            "problems": {"type": "array", "items": {"type": "string"}},
            "processor": {"type": "object"},
        },
    }
    paths["/health"] = {
        "get": {
            "operationId": "health",
            "summary": "200 ok, or degraded (accepting events, processor behind or failing); 503 unavailable",
            "responses": {
                "200": {"description": "ready", "content": {"application/json": {"schema": health}}},
                "503": {"description": "not ready", "content": {"application/json": {"schema": health}}},
            },
        }
    }
    paths["/metrics"] = {
        "get": {
            "operationId": "metrics",
            "responses": {
                "200": {
                    "description": "Prometheus text",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "responses": {
                "200": {
                    "description": "this document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    schemas: dict[str, Any] = {"Event": _event(None)}
    schemas.update({t: _event(t) for t in EVENT_TYPES})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Sluice gateway",
            "version": "1",
            "description": f"Segment-compatible ingestion; events up to {config.gateway.max_event_bytes} "
            f"bytes, requests up to {config.gateway.max_request_bytes} bytes, "
            f"identifiers up to {MAX_ID_BYTES} bytes, nesting up to {MAX_DEPTH} levels "
            "(pipeline/README.md, Gateway limits).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "writeKey": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "write key as user name, empty password (or writeKey in the body)",
                }
            },
        },
    }
