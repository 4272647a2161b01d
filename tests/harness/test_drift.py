"""API drift detection: schema diffs, and re-validation of a connector's payloads against a newer document."""

import copy
import json
import subprocess
import sys
from pathlib import Path

from sdk.openapi.drift import check_connector, diff_operation

ROOT = Path(__file__).resolve().parents[2]


def _doc(schema: dict, openapi: str = "3.0.3") -> dict:
    return {
        "openapi": openapi,
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/things": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": schema}}},
                    "responses": {"200": {}},
                }
            }
        },
    }


OLD = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "owner_id": {"type": "integer"},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "legacy": {"type": "string"},
    },
}


def _kinds(changes):
    return {(c.kind, c.path, c.breaking) for c in changes}


def test_diff_reports_each_kind_of_change():
    new = copy.deepcopy(OLD)
    new["required"].append("owner_id")
    new["properties"]["owner_id"]["type"] = "string"
    new["properties"]["kind"]["enum"] = ["a", "c"]
    del new["properties"]["legacy"]
    new["properties"]["email"] = {"type": "string"}
    got = _kinds(diff_operation(_doc(OLD), _doc(new), "POST /things"))
    assert ("required_added", "$.owner_id", True) in got
    assert ("type_changed", "$.owner_id", True) in got
    assert ("enum_removed", "$.kind", True) in got
    assert ("enum_added", "$.kind", False) in got
    assert ("property_removed", "$.legacy", False) in got  # still accepted as an extra
    assert ("property_added", "$.email", False) in got


def test_removed_property_breaks_when_extras_are_refused():
    new = copy.deepcopy(OLD)
    del new["properties"]["legacy"]
    new["additionalProperties"] = False
    assert ("property_removed", "$.legacy", True) in _kinds(
        diff_operation(_doc(OLD), _doc(new), "POST /things")
    )


def test_removed_operation_is_breaking():
    new_doc = _doc(OLD)
    new_doc["paths"] = {"/other": new_doc["paths"]["/things"]}
    [change] = diff_operation(_doc(OLD), new_doc, "POST /things")
    assert (change.kind, change.breaking) == ("operation_removed", True)


def test_identical_documents_have_no_changes():
    assert diff_operation(_doc(OLD), _doc(copy.deepcopy(OLD)), "POST /things") == []


def test_connector_payloads_are_revalidated_against_the_new_document(tmp_path):
    """Mixpanel's extract with one more required field on /import: the connector's payloads now fail."""
    folder = ROOT / "integrations" / "mixpanel"
    extract = json.loads((folder / "openapi" / "ingestion.json").read_text())
    same = tmp_path / "same.json"
    same.write_text(json.dumps(extract))
    report = check_connector(folder, same)
    assert report.checked_payloads > 0
    assert not report.affected, report.invalid_payloads

    drifted = copy.deepcopy(extract)
    body = drifted["paths"]["/import"]["post"]["requestBody"]["content"]
    schema = next(iter(body.values()))["schema"]
    # Follow a $ref to the component if the extract keeps one.
    while "$ref" in schema:
        ptr = schema["$ref"].lstrip("#/").split("/")
        schema = drifted
        for p in ptr:
            schema = schema[p]
    items = schema.get("items", schema)
    while "$ref" in items:
        ptr = items["$ref"].lstrip("#/").split("/")
        items = drifted
        for p in ptr:
            items = items[p]
    items.setdefault("required", []).append("vendor_new_mandatory_field")
    items.setdefault("properties", {})["vendor_new_mandatory_field"] = {"type": "string"}
    new_file = tmp_path / "new.json"
    new_file.write_text(json.dumps(drifted))
    report = check_connector(folder, new_file)
    assert report.affected
    assert any(p["operation"] == "POST /import" for p in report.invalid_payloads)
    assert any(c.kind == "required_added" for c in report.changes["POST /import"])


def test_drift_cli_exit_code(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_doc(OLD)))
    changed = copy.deepcopy(OLD)
    changed["required"].append("owner_id")
    new.write_text(json.dumps(_doc(changed)))
    cmd = [
        sys.executable,
        "-m",
        "sdk.cli",
        "openapi",
        "diff",
        str(old),
        str(new),
        "--operation",
        "POST /things",
    ]
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 1
    cmd[6] = str(old)  # old against itself: nothing breaking
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
