"""Find integrations on disk and load them, by name or alias, case-insensitively.

``load_connector(name)`` is for development and ``sluice transform``;
``load_certified(name)`` is what the pipeline calls: it refuses a connector
whose certification is missing, stale, or for different content.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from sdk.connector import Connector
from sdk.errors import UnknownDestinationError


def integrations_dir() -> Path:
    """``$SLUICE_INTEGRATIONS_DIR``, else ``integrations/`` beside the ``sdk`` package."""
    env = os.environ.get("SLUICE_INTEGRATIONS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "integrations"


def integration_folders(root: Path | None = None) -> list[Path]:
    root = root or integrations_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "spec.yaml").exists())


@cache
def _alias_index(root: str) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for folder in integration_folders(Path(root)):
        try:
            spec = _load(str(folder)).spec
            names = spec.all_names
        except Exception:  # noqa: BLE001 - a broken spec is still findable by its folder name
            names = [folder.name]
        for n in names:
            index.setdefault(n.strip().lower(), folder)
    return index


@cache
def _load(folder: str) -> Connector:
    return Connector.from_folder(Path(folder))


def find_folder(name: str, root: Path | None = None) -> Path:
    root = root or integrations_dir()
    folder = _alias_index(str(root)).get(str(name).strip().lower())
    if folder is None:
        direct = root / str(name)
        if (direct / "spec.yaml").exists():
            return direct
        known = sorted({p.name for p in integration_folders(root)})
        raise UnknownDestinationError(
            f"no integration named {name!r}; known: {', '.join(known) or '(none)'}; "
            f"check the spelling or run `sluice new {name}`"
        )
    return folder


def load_connector(name: str, root: Path | None = None) -> Connector:
    """Load a connector for development use, certified or not."""
    return _load(str(find_folder(name, root)))


def load_certified(name: str, root: Path | None = None, *, allow_uncertified: bool = False) -> Connector:
    """Load a connector for production; raises ``CertificationError`` unless it is certified as-is."""
    from sdk.certification import verify

    connector = load_connector(name, root)
    if not allow_uncertified:
        verify(connector)
    return connector


def clear_caches() -> None:
    _alias_index.cache_clear()
    _load.cache_clear()
