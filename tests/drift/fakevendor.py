"""A throw-away integration ("fakevendor") with fixtures and cassettes, for live and runtime drift tests.

Its vendor is a loopback ``support.sink.Sink`` told what to answer; the fixture's documented answer is
``{"id": "evt_1", "status": "accepted"}`` with 200, so that is what certification saw.
"""

from __future__ import annotations

import json
from pathlib import Path

from sdk.connector import Connector
from sdk.registry import clear_caches
from sdk.testing.cases import build_cassettes

ANSWER = {"id": "evt_1", "status": "accepted"}
API_KEY = "fv-test-key-0042"

SPEC = """\
spec_version: 1
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
      name: {from: event, required: true}
      user: {from: userId}
responses:
  - when: {status: [200], body_path: status, equals: rejected}
    outcome: abort
    reason: "the vendor rejected the event"
"""


def make_tree(root: Path, base_url: str = "https://api.fakevendor.test") -> Path:
    """``root/integrations/fakevendor`` (+ ``root/cassettes/fakevendor``); returns the integrations dir."""
    integrations = root / "integrations"
    folder = integrations / "fakevendor"
    (folder / "fixtures").mkdir(parents=True)
    (folder / "spec.yaml").write_text(SPEC)
    (folder / "README.md").write_text("# Fake Vendor\n\nA test destination.\n")
    fixture = {
        "description": "a track call becomes one event",
        "config": {"apiKey": API_KEY, "baseUrl": base_url},
        "event": {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "m1"},
        "now": "2026-01-01T00:00:00Z",
        "response": {"status": 200, "headers": {"Content-Type": "application/json"}, "body": ANSWER},
    }
    (folder / "fixtures" / "track_basic.json").write_text(json.dumps(fixture, indent=2))
    clear_caches()
    errors: list[str] = []
    build_cassettes(Connector.from_folder(folder), folder, root=integrations, errors=errors)
    assert not errors, errors
    return integrations
