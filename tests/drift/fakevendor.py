"""A throw-away integration ("fakevendor") with fixtures and cassettes, for live and runtime drift tests.

Its vendor is a loopback ``support.sink.Sink`` told what to answer; the fixture's documented answer is
``{"id": "evt_1", "status": "accepted"}`` with 200, so that is what certification saw.
"""

from __future__ import annotations

import json
from pathlib import Path

from sdk.connector import Connector
from sdk.openapi.extract import extract_operations
from sdk.registry import clear_caches
from sdk.testing.cases import build_cassettes

ANSWER = {"id": "evt_1", "status": "accepted"}
# The vendor's own description of its one operation (hand-written), pinned by the spec when asked.
DESCRIPTION = {
    "openapi": "3.0.3",
    "info": {"title": "Fake Vendor API", "version": "1"},
    "servers": [{"url": "https://api.fakevendor.test"}],
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "security": [{"bearer": []}],
    "paths": {
        "/v1/events": {
            "post": {
                "operationId": "createEvent",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}, "user": {"type": "string"}},
                            }
                        }
                    }
                },
                "responses": {"200": {"description": "accepted"}},
            }
        }
    },
}
PIN = """\
openapi:
  document: openapi/fakevendor.json
  source: "https://fakevendor.test/openapi.json"
  version: "1"
"""
API_KEY = "fv-test-key-0042"

SPEC = """\
spec_version: 2
name: fakevendor
display_name: Fake Vendor
description: Test destination for live and runtime drift.
require_https: false
vendor: {api_version: "v1", docs: ["https://fakevendor.test/docs"]}
settings:
  type: object
  required: [apiKey, baseUrl]
  properties:
    apiKey: {type: string, secret: true}
    baseUrl: {type: string}
event_types: [track]
endpoints:
  events:
    method: POST
    url: "{{ settings.baseUrl }}/v1/events"
auth: {type: bearer, token: "{{ settings.apiKey }}"}
mappings:
  track:
    endpoint: events
    body:
      name: {from: event, required: true, format: [string]}
      user: {from: userId, format: [string]}
responses:
  - when: {status: [200], body_path: status, equals: rejected}
    outcome: abort
    reason: "the vendor rejected the event"
"""


def make_tree(root: Path, base_url: str = "https://api.fakevendor.test", pinned: bool = False) -> Path:
    """``root/integrations/fakevendor`` (+ ``root/cassettes/fakevendor``); returns the integrations dir.

    ``pinned``: the spec pins the vendor description (``openapi:``) and names the operation it calls.
    """
    integrations = root / "integrations"
    folder = integrations / "fakevendor"
    (folder / "fixtures").mkdir(parents=True)
    spec = SPEC
    if pinned:
        (folder / "openapi").mkdir()
        # As `sluice openapi extract` writes it (with its x-sluice-source provenance).
        reduced = extract_operations(
            DESCRIPTION, ["POST /v1/events"], source_bytes=json.dumps(DESCRIPTION).encode()
        )
        (folder / "openapi" / "fakevendor.json").write_text(json.dumps(reduced, indent=2))
        spec = spec.replace(
            '    url: "{{ settings.baseUrl }}/v1/events"\n',
            '    url: "{{ settings.baseUrl }}/v1/events"\n    openapi_operation: "POST /v1/events"\n',
        )
        spec += PIN
    (folder / "spec.yaml").write_text(spec)
    (folder / "README.md").write_text("# Fake Vendor\n\nA test destination.\n")
    fixture = {
        "description": "a track call becomes one event",
        "config": {"apiKey": API_KEY, "baseUrl": base_url},
        "event": {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m1"},
        "now": "2026-01-01T00:00:00Z",
        "response": {
            "status": 200,
            "headers": {"Content-Type": "application/json"},
            "body": ANSWER,
            "classification": {
                "outcome": "success",
                "reason": "the vendor accepted the event",
                "doc": "https://fakevendor.test/docs",
            },
        },
    }
    # The vendor's documented request for this event (an accepted expectation, as a person writes it).
    fixture["expect"] = {
        "status": "accepted",
        "doc": {"url": "https://fakevendor.test/docs", "section": "POST /v1/events"},
        "requests": [
            {
                "method": "POST",
                "url": f"{base_url}/v1/events",
                "headers": {"Content-Type": "application/json"},
                "json": {"name": "Signed Up", "user": "u1"},
            }
        ],
    }
    (folder / "fixtures" / "track_basic.json").write_text(json.dumps(fixture, indent=2))
    clear_caches()
    errors: list[str] = []
    build_cassettes(Connector.from_folder(folder), folder, root=integrations, errors=errors)
    assert not errors, errors
    return integrations
