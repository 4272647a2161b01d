"""Footprints: derived from a connector's spec, mappings, fixtures and cassettes, or written by hand.

Expected values are read off the human-written spec.yaml files they come from (quoted in comments)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.drift.build import connector_footprint, find_footprint, footprints_dir
from sdk.drift.footprint import Footprint, load_footprint

from .fakevendor import make_tree

REPO = Path(__file__).resolve().parents[2]


def _field(fp: Footprint, op: str, pointer: str):  # type: ignore[no-untyped-def]
    matches = [f for f in fp.operation(op).body if f.pointer == pointer]
    assert matches, f"{pointer} not in {fp.name}.{op}: {[f.pointer for f in fp.operation(op).body]}"
    return matches[0]


def test_mixpanel_footprint_from_spec_and_cassettes() -> None:
    fp = find_footprint("mixpanel")
    imp = fp.operation("import")
    # endpoints.import: url "https://{{ vars.host }}/import", openapi_operation "POST /import",
    # vars.host: {eu: api-eu.mixpanel.com, in: api-in.mixpanel.com}, default api.mixpanel.com
    assert (imp.method, imp.path) == ("POST", "/import")
    assert set(imp.servers) == {
        "https://api.mixpanel.com",
        "https://api-eu.mixpanel.com",
        "https://api-in.mixpanel.com",
    }
    assert imp.auth is not None and imp.auth.type == "basic"  # headers: {Authorization: "Basic {{ ... }}"}
    assert imp.content_type == "application/json"  # body_format: json_array
    assert [p.pointer for p in imp.params if p.location == "query"] == ["strict"]
    # A field no fixture exercises, known from the mapping alone (properties.$bluetooth_enabled).
    bt = _field(fp, "import", "/*/properties/$bluetooth_enabled")
    assert all(s.startswith("spec:") for s in bt.sources)
    # Fields only some settings produce ($first_name: {from: ..., when: settings.useNewMapping}, and the
    # legacy name under {not: settings.useNewMapping}); other event types use engage without them.
    only_identify = "event types: identify"
    assert _field(fp, "engage", "/*/$set/$first_name").when == [only_identify, "setting useNewMapping=true"]
    assert _field(fp, "engage", "/*/$set/$firstName").when == [only_identify, "setting useNewMapping=false"]
    # contract.required.import includes properties.$insert_id; the cassettes show it is a string
    insert = _field(fp, "import", "/*/properties/$insert_id")
    assert insert.types == ["string"] and any("contract" in s for s in insert.sources)
    # responses: {status_class: 2xx, body: [{path: status, equals: 0}]}, reason_path [error], and a rule on
    # the whole body ($, not a field); /import's 400 rule names failed_records
    engage = {r.status: r for r in fp.operation("engage").responses}
    assert engage["2xx"].reads == ["/status", "/error"] and engage["413"].classifies
    assert "/failed_records" in engage["400"].reads
    assert fp.description is not None and fp.description.document == "openapi/ingestion.json"


def test_amplitude_fields_nest_where_the_mapper_puts_them() -> None:
    fp = find_footprint("amplitude")
    events = fp.operation("events")
    assert set(events.servers) == {"https://api2.amplitude.com", "https://api.eu.amplitude.com"}
    # mappings.*.insert_id exists for track, page, screen and identify, not group
    insert = _field(fp, "events", "/events/*/insert_id")
    assert insert.when == ["event types: identify, page, screen, track"]
    # common.body.time: format [epoch_ms] -> an integer, under the events list the mapper builds
    assert _field(fp, "events", "/events/*/time").types == ["integer"]
    assert _field(fp, "events", "/api_key").types == ["string"]  # contract.required.events
    assert fp.operation("usermap").content_type == "application/x-www-form-urlencoded"  # body_format: form


def test_envelopes_auth_and_batch_lists() -> None:
    cio = find_footprint("customerio")
    # endpoints.object.batch.wrap: batch -> every body travels in {"batch": [...]}
    obj = cio.operation("object")
    pointers = [f.pointer for f in obj.body]
    assert pointers and all(p.startswith("/batch/*/") for p in pointers)
    assert cio.auth.type == "basic"
    braze = find_footprint("braze")
    assert braze.auth.type == "bearer"
    track = braze.operation("track")
    assert "https://rest.fra-01.braze.eu" in track.servers  # vars.host.map.eu-01
    for lst in ("/attributes", "/events", "/purchases"):  # batch.lists of the track endpoint
        assert _field(braze, "track", lst).types == ["array"]


def test_hand_written_additions_merge_into_a_connector(tmp_path: Path) -> None:
    folder = make_tree(tmp_path) / "fakevendor"
    (folder / "footprint.yaml").write_text(
        "name: fakevendor\n"
        "operations:\n"
        "  - id: events\n"
        "    params: {'header:Fake-Version': {type: string, values: ['2026-01']}}\n"
        "    body: {/user: {type: string, when: 'the event has a userId'}}\n"
        "    responses: {'200': [/id]}\n"
    )
    fp = connector_footprint(folder)
    events = fp.operation("events")
    assert [p.pointer for p in events.params if p.location == "header"] == ["Fake-Version"]
    assert (
        _field(fp, "events", "/user").when == []
    )  # the spec sends it whenever userId is set: unconditional wins
    assert {r.status: r.reads for r in events.responses}["200"] == ["/status", "/id"]


def test_every_hand_written_footprint_loads() -> None:
    files = sorted(footprints_dir().glob("*.yaml"))
    assert len(files) >= 13
    for path in files:
        fp = load_footprint(path)
        assert fp.name == path.stem and fp.operations, path
        assert all(op.path and op.servers and op.body for op in fp.operations), path


def test_bad_footprint_file_names_the_key(tmp_path: Path) -> None:
    from sdk.errors import SpecError

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\noperations:\n  - id: a\n    body: {data/x: strng}\n")
    with pytest.raises(SpecError, match="operations.0.body.0"):
        load_footprint(bad)


def test_cli_footprint_json_and_human() -> None:
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-m", "sdk.cli", "footprint", "mixpanel", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert Footprint.model_validate(data).operation("groups").path == "/groups#group-set"
    human = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdk.cli",
            "footprint",
            "--footprint",
            str(REPO / "drift" / "footprints" / "slack-1.3.0.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        human.returncode == 0
        and "POST /chat.postMessage" in human.stdout
        and "when setting postAsUser" in human.stdout
    )
