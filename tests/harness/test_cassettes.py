"""Cassettes: built from fixtures with provenance, secrets redacted on write, matched redacted on replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from sdk.connector import Connector
from sdk.spec.model import DestinationSpec
from sdk.testing.cases import (
    CASSETTE_SOURCE,
    PLACEHOLDER,
    Case,
    Redactor,
    build_cassette,
    build_cassettes,
    load_cases,
    read_cassette,
    secret_values,
)
from sdk.testing.replay import replay_case

SECRET_KEY = "sk-live-looking-but-fake-1234"
SECRET_TOKEN = "project-token-fake-5678"


def _connector() -> Connector:
    spec = DestinationSpec.model_validate(
        {
            "spec_version": 2,
            "name": "leaky",
            "display_name": "Leaky",
            "vendor": {"api_version": "2", "docs": ["https://example.com"]},
            "settings": {
                "type": "object",
                "properties": {
                    "apiKey": {"type": "string", "secret": True},
                    "token": {"type": "string", "secret": True},
                    "region": {"type": "string"},
                },
            },
            "event_types": ["track"],
            "endpoints": {
                "default": {
                    "url": "https://api.leaky.test/{{ settings.region }}/track",
                    "params": {"api_key": "{{ settings.apiKey }}", "v": "2"},
                }
            },
            "auth": {"type": "basic", "username": "{{ settings.apiKey }}", "password": ""},
            "mappings": {
                "track": {
                    "endpoint": "default",
                    "body": {
                        "event": {"from": ["event"], "required": True},
                        "token": "settings.token",
                        "note": {"from": ["properties.note"]},
                    },
                }
            },
        }
    )
    return Connector(spec)


def _case(note: str = "hello") -> Case:
    return Case(
        integration="leaky",
        name="track_basic",
        path=Path("track_basic.json"),
        description="d",
        config={"apiKey": SECRET_KEY, "token": SECRET_TOKEN, "region": "eu"},
        event={"type": "track", "event": "Signed Up", "messageId": "m1", "properties": {"note": note}},
        now="2024-05-01T12:00:00Z",
        response={
            "status": 200,
            "headers": {"Content-Type": "application/json"},
            "body": {"ok": True, "echo": SECRET_TOKEN},
        },
    )


def test_build_redacts_every_secret_and_records_provenance() -> None:
    conn = _connector()
    case = _case()
    secrets = secret_values(conn, [case.config])
    assert secrets == sorted([SECRET_KEY, SECRET_TOKEN], key=len, reverse=True)
    data = build_cassette(conn, case, "success", secrets)
    text = yaml.safe_dump(data)
    assert SECRET_KEY not in text and SECRET_TOKEN not in text
    req = data["interactions"][0]["request"]
    assert req["headers"]["Authorization"] == [PLACEHOLDER]  # basic auth (base64 of the key) is dropped whole
    assert "api_key=%3CREDACTED%3E" in req["uri"] or "api_key=<REDACTED>" in req["uri"]
    assert json.loads(req["body"])["token"] == PLACEHOLDER
    assert PLACEHOLDER in data["interactions"][0]["response"]["body"]["string"]
    prov = data["metadata"]["provenance"]
    assert prov["source"] == CASSETTE_SOURCE and prov["vendor_api_version"] == "2"
    assert prov["expected_classification"] == "success" and prov["sdk_version"]


def test_replay_matches_redacted_requests_and_detects_changes(tmp_path: Path) -> None:
    conn = _connector()
    case = _case()
    secrets = secret_values(conn, [case.config])
    path = tmp_path / "track_basic.yaml"
    path.write_text(yaml.safe_dump(build_cassette(conn, case, "success", secrets), sort_keys=False))
    requests, results = replay_case(conn, case, path, secrets)
    assert len(requests) == 1 and results[0].status == 200
    assert json.loads(results[0].body)["ok"] is True
    # a different mapping output must not replay: the message points at `sluice cassettes build`
    with pytest.raises(AssertionError, match="sluice cassettes build leaky") as info:
        replay_case(conn, _case(note="changed"), path, secrets)
    assert "changed" in str(info.value) and SECRET_KEY not in str(info.value)


def test_redactor_handles_urls_headers_and_text() -> None:
    r = Redactor(["abc123secret"])
    assert r.url("https://u:p@h.test/p/abc123secret?key=1&x=abc123secret&y=2") == (
        "https://<REDACTED>@h.test/p/<REDACTED>?key=<REDACTED>&x=<REDACTED>&y=2"
    )
    assert r.header("X-Api-Key", "whatever") == PLACEHOLDER
    assert r.header("Content-Type", "application/json") == "application/json"
    assert r.text('{"t":"abc123secret"}') == '{"t":"<REDACTED>"}'


def test_build_cassettes_for_folder_skips_error_cases_and_removes_stale(tree: Path) -> None:
    folder = tree / "demo"
    conn = Connector.from_folder(folder)
    stale = tree.parent / "cassettes" / "demo" / "gone.yaml"
    stale.write_text("interactions: []\nversion: 1\n")
    written = build_cassettes(conn, folder)
    assert [p.name for p in written] == ["track_basic.yaml"]
    assert not stale.exists()
    data = read_cassette(written[0])
    assert data["interactions"][0]["request"]["headers"]["Authorization"] == [PLACEHOLDER]
    assert "test-api-key-demo" not in written[0].read_text()
    # rebuilding without changes leaves the file byte-identical (recorded_at kept)
    before = written[0].read_text()
    build_cassettes(conn, folder)
    assert written[0].read_text() == before
    assert {c.name for c in load_cases(folder)} == {"track_basic", "track_without_name"}
