"""Spec lint on credential-sounding settings: flagged unless marked, either way, on purpose."""

import shutil
from pathlib import Path

import yaml

from sdk.testing.lint import lint_integration

ROOT = Path(__file__).resolve().parents[2]


def _copy_webhook(tmp_path: Path) -> Path:
    dst = tmp_path / "integrations" / "webhook"
    shutil.copytree(ROOT / "integrations" / "webhook", dst)
    return dst


def _set_prop(folder: Path, key: str, prop: dict) -> None:
    spec_path = folder / "spec.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["settings"].setdefault("properties", {})[key] = prop
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_unmarked_credential_like_setting_is_flagged(tmp_path):
    folder = _copy_webhook(tmp_path)
    _set_prop(folder, "accessToken", {"type": "string"})
    problems = lint_integration(folder)
    assert any("accessToken" in p and "secret: true" in p for p in problems), problems


def test_explicit_secret_false_is_accepted(tmp_path):
    folder = _copy_webhook(tmp_path)
    _set_prop(folder, "deviceTokenEventName", {"type": "string", "secret": False})
    assert not [p for p in lint_integration(folder) if "deviceTokenEventName" in p]
