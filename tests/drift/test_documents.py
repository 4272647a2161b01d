"""Reading vendor descriptions: $ref across files, combinators, nullability spellings, Swagger 2 and
OpenAPI 3.x, JSON and YAML. Expectations come from the hand-written fixture documents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from sdk.drift.compare import compare_descriptions
from sdk.drift.document import Library, load_description
from sdk.drift.footprint import load_footprint
from sdk.drift.operations import locate, pick_body
from sdk.drift.schema import Flattener, facts, split_pointer, walk
from sdk.errors import SpecError

from .drift_helpers import FIXTURES


def _field(doc_path: Path | str, op: str, pointer: str, content_type: str | None = None):
    doc = load_description(str(doc_path), Library())
    method, path = op.split(" ", 1)
    view = locate(doc, method, path).view
    assert view is not None
    fl = Flattener()
    _, node = pick_body(view.bodies, content_type)
    return walk(fl, fl.flatten(*node), split_pointer(pointer))


def test_refs_across_files_resolve_relative_to_the_referring_file() -> None:
    api = FIXTURES / "multifile" / "api.yaml"
    v = _field(api, "POST /users", "/id")
    assert v.exists and v.required
    f = facts(v.branches)
    assert f.types == {"string"} and f.constraints["pattern"] == ("^u-[0-9]+$",)
    # two files away, and recursive there: resolves without looping
    assert facts(_field(api, "POST /users", "/address/parent/parent/city").branches).types == {"string"}


def test_openapi_31_type_arrays_and_30_nullable_read_the_same() -> None:
    nick = facts(_field(FIXTURES / "multifile" / "api.yaml", "POST /users", "/nickname").branches)
    assert nick.types == {"string", "null"}
    base = yaml.safe_load((FIXTURES / "acme-2024-01.yaml").read_text())
    base["components"]["schemas"]["Event"]["properties"]["name"]["nullable"] = True
    lib = Library()
    name = lib.add(base, "mem://acme")
    view = locate(name, "post", "/events").view
    fl = Flattener()
    got = facts(walk(fl, fl.flatten(*view.bodies["application/json"]), ["name"]).branches)
    assert got.types == nick.types


def test_server_variables_expand() -> None:
    doc = load_description(str(FIXTURES / "multifile" / "api.yaml"))
    assert locate(doc, "post", "/users").view.servers == ["https://eu.split.test", "https://us.split.test"]


def test_change_in_a_referenced_file_is_found(tmp_path: Path) -> None:
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    shutil.copytree(FIXTURES / "multifile", old_dir)
    shutil.copytree(FIXTURES / "multifile", new_dir)
    user = json.loads((new_dir / "schemas" / "user.json").read_text())
    user["Id"]["pattern"] = "^usr_[a-z0-9]+$"
    (new_dir / "schemas" / "user.json").write_text(json.dumps(user))
    fp = tmp_path / "fp.yaml"
    fp.write_text(
        yaml.safe_dump(
            {
                "name": "split",
                "operations": [
                    {
                        "id": "create_user",
                        "operation": "POST /users",
                        "body": {"/id": "string", "/nickname": "string"},
                    }
                ],
            }
        )
    )
    lib = Library()
    report = compare_descriptions(
        load_footprint(fp),
        load_description(str(old_dir / "api.yaml"), lib),
        load_description(str(new_dir / "api.yaml"), lib),
    )
    assert [(c.severity, c.kind, c.where) for c in report.alarms()] == [
        ("breaking", "constraint_narrowed", "body /id")
    ]


def test_allof_merges_and_oneof_anyof_are_alternatives() -> None:
    lib = Library()
    doc = lib.add({"openapi": "3.0.0", "info": {"version": "1"}, "components": {}, "paths": {}}, "mem://x")
    fl = Flattener()
    schema = {
        "allOf": [
            {"type": "object", "required": ["a"], "properties": {"a": {"type": "string", "maxLength": 9}}},
            {"properties": {"a": {"maxLength": 5}, "b": {"type": "integer"}}},
        ],
        "oneOf": [{"required": ["b"]}, {"properties": {"c": {"type": "boolean"}}, "required": ["c"]}],
    }
    branches = fl.flatten(schema, doc)
    assert len(branches) == 2
    assert sorted(sorted(b.required) for b in branches) == [["a", "b"], ["a", "c"]]
    a = facts(walk(fl, branches, ["a"]).branches)
    assert a.constraints["maxLength"] == 5  # allOf: both bounds hold, so the tighter one
    assert walk(fl, branches, ["c"]).exists  # declared in one alternative is enough
    assert not walk(fl, branches, ["a"]).status == "refused"


def test_swagger2_form_body_and_params() -> None:
    doc = load_description(str(FIXTURES / "legacy-swagger.json"))
    view = locate(doc, "post", "/messages.post").view
    assert view.servers == ["https://chat.legacy.test/api"]
    assert list(view.bodies) == ["application/x-www-form-urlencoded"]
    assert view.security == [["header:x-token"]]
    assert ("header", "trace") in view.params
    profile = locate(doc, "post", "/profiles.set").view
    assert list(profile.bodies) == ["application/json"]
    fl = Flattener()
    name = facts(walk(fl, fl.flatten(*profile.bodies["application/json"]), ["name"]).branches)
    assert name.types == {"string", "null"}  # x-nullable


def test_swagger2_form_drift(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "legacy-swagger.json").read_text())
    params = data["paths"]["/messages.post"]["post"]["parameters"]
    params[0]["required"] = True  # channel: required, and the connector does not send it
    params[2]["type"] = "string"  # silent: boolean -> string
    params[3]["type"] = "string"  # thread: number -> string
    params[4]["required"] = True  # header trace required
    data["paths"]["/profiles.set"]["post"]["deprecated"] = True  # outside the footprint
    new = tmp_path / "new.json"
    new.write_text(json.dumps(data))
    lib = Library()
    report = compare_descriptions(
        load_footprint(FIXTURES / "legacy-footprint.yaml"),
        load_description(str(FIXTURES / "legacy-swagger.json"), lib),
        load_description(str(new), lib),
    )
    assert sorted((c.severity, c.kind, c.where) for c in report.alarms()) == [
        ("breaking", "parameter_required", "header trace"),
        ("breaking", "required_added", "form /"),
        ("breaking", "type_changed", "form /silent"),
        ("breaking", "type_changed", "form /thread"),
    ]


def test_yaml_integer_keys_value_tag_and_json_agree(tmp_path: Path) -> None:
    text = (FIXTURES / "acme-2024-01.yaml").read_text().replace('"202":', "202:")
    text = text.replace("enum: [track, page]", "enum: [track, page, =]")  # the bare `=` some vendors publish
    y = tmp_path / "a.yaml"
    y.write_text(text)
    j = tmp_path / "a.json"
    j.write_text(json.dumps(load_description(str(y)).data, default=str))
    for path in (y, j):
        view = locate(load_description(str(path)), "post", "/events").view
        assert "202" in view.responses
    lib = Library()
    report = compare_descriptions(
        load_footprint(FIXTURES / "acme-footprint.yaml"),
        load_description(str(y), lib),
        load_description(str(j), lib),
    )
    assert report.changes == []


def test_not_a_description_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"hello": 1}')
    with pytest.raises(SpecError, match="not an OpenAPI/Swagger document"):
        load_description(str(p))
    with pytest.raises(SpecError, match="cannot read"):
        load_description(str(tmp_path / "missing.yaml"))
