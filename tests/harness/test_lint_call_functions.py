"""Regression: lint compiled a spec without its mapper.py, so any spec using `call: fn` failed
`sluice validate` with "names no function of mapper.py"."""

import shutil
from pathlib import Path

import yaml

from sdk.testing.lint import lint_integration

ROOT = Path(__file__).resolve().parents[2]


def _webhook_with_call(tmp_path: Path, mapper_text: str) -> Path:
    folder = tmp_path / "integrations" / "webhook"
    shutil.copytree(ROOT / "integrations" / "webhook", folder)
    spec_path = folder / "spec.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["mappings"]["track"] = {"endpoint": "post", "body": {"n": {"call": "shout", "with": "event"}}}
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    (folder / "mapper.py").write_text(mapper_text)
    return folder


def test_spec_using_call_compiles_with_its_mapper(tmp_path):
    mapper = '"""Upper case."""\n\n\ndef shout(value, event, settings, ctx):\n    return str(value).upper()\n'
    folder = _webhook_with_call(tmp_path, mapper)
    assert not [p for p in lint_integration(folder) if "does not compile" in p]


def test_call_naming_no_mapper_function_is_still_reported(tmp_path):
    folder = _webhook_with_call(tmp_path, '"""Nothing the spec names."""\n')
    assert any("does not compile" in p and "shout" in p for p in lint_integration(folder))
