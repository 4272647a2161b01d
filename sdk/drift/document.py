"""Vendor API descriptions as loaded documents, with ``$ref`` resolution across files.

A description may be one file or several (``$ref: common.yaml#/components/schemas/X``), local or behind
a URL, JSON or YAML. ``Library`` loads each location once; a ``Document`` resolves a ``$ref`` relative to
its own location, so a schema reached through another file keeps resolving *that* file's local refs.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sdk.errors import SpecError

try:  # libyaml parses the multi-megabyte vendor files about ten times faster
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _BaseLoader = yaml.SafeLoader


class _YamlLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe YAML that accepts the bare ``=`` scalar (the YAML 'value' tag) some vendor files contain."""


_YamlLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))

FETCH_TIMEOUT_S = 60.0


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def read_location(location: str) -> bytes:
    """The bytes at a path or http(s) URL; errors say where and how to fix it."""
    if is_url(location):
        import httpx

        try:
            r = httpx.get(location, timeout=FETCH_TIMEOUT_S, follow_redirects=True)
        except httpx.HTTPError as e:
            raise SpecError(f"cannot fetch {location}: {type(e).__name__}: {e}") from e
        if r.status_code != 200:
            raise SpecError(f"cannot fetch {location}: HTTP {r.status_code}; check the URL")
        return r.content
    try:
        return Path(location).read_bytes()
    except OSError as e:
        raise SpecError(f"cannot read {location}: {e.strerror or e}") from e


def parse_bytes(raw: bytes, location: str) -> Any:
    """JSON when it looks like JSON, else YAML (a superset, but much slower to parse)."""
    head = raw.lstrip()[:1]
    try:
        if head in (b"{", b"["):
            return json.loads(raw)
        return yaml.load(raw, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except (ValueError, yaml.YAMLError) as e:
        raise SpecError(f"{location} is neither valid JSON nor YAML: {e}") from e


def _unescape(part: str) -> str:
    return urllib.parse.unquote(part).replace("~1", "/").replace("~0", "~")


def pointer_get(root: Any, pointer: str, where: str) -> Any:
    """The node at JSON pointer ``pointer`` ("" or "/a/b") inside ``root``."""
    cur = root
    if pointer in ("", "/"):
        return cur
    for raw in pointer.lstrip("/").split("/"):
        part = _unescape(raw)
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, dict) and part.isdigit() and int(part) in cur:
            cur = cur[int(part)]  # YAML turns keys like `200:` into integers
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise SpecError(f"unresolvable $ref {where!r}: no {part!r} at that point of the document")
    return cur


@dataclass(eq=False)
class Document:
    """One parsed file of a description; ``library`` holds the files its refs reach."""

    data: Any
    location: str
    sha256: str
    library: Library = field(repr=False)

    # -- what kind of description -----------------------------------------------------------------
    @property
    def is_swagger(self) -> bool:
        return isinstance(self.data, dict) and "swagger" in self.data

    @property
    def is_31(self) -> bool:
        return isinstance(self.data, dict) and str(self.data.get("openapi", "")).startswith("3.1")

    @property
    def spec_format(self) -> str:
        if self.is_swagger:
            return f"swagger {self.data['swagger']}"
        return f"openapi {self.data.get('openapi', '?')}"

    @property
    def version(self) -> str:
        info = self.data.get("info") if isinstance(self.data, dict) else None
        return str((info or {}).get("version", "") or "")

    @property
    def title(self) -> str:
        info = self.data.get("info") if isinstance(self.data, dict) else None
        return str((info or {}).get("title", "") or "")

    # -- references -------------------------------------------------------------------------------
    def resolve(self, ref: str) -> tuple[Any, Document]:
        """The target of ``ref`` and the document it lives in (local ``#/..`` or ``file#/..``)."""
        target, _, pointer = ref.partition("#")
        doc = self if not target else self.library.load(self.join(target))
        return pointer_get(doc.data, pointer, ref), doc

    def join(self, relative: str) -> str:
        if is_url(relative) or Path(relative).is_absolute():
            return relative
        if is_url(self.location):
            return urllib.parse.urljoin(self.location, relative)
        return str((Path(self.location).parent / relative).resolve())

    def deref(self, node: Any, depth: int = 0) -> tuple[Any, Document]:
        """Follow ``$ref`` chains of a non-schema object (parameter, response, request body)."""
        doc = self
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 32:
            node, doc = doc.resolve(node["$ref"])
            depth += 1
        return node, doc

    def describe(self) -> dict[str, str]:
        return {
            "source": self.location,
            "version": self.version,
            "sha256": self.sha256,
            "format": self.spec_format,
        }


class Library:
    """Every file of one or more descriptions, each loaded once."""

    def __init__(self) -> None:
        self._docs: dict[str, Document] = {}

    def load(self, location: str) -> Document:
        key = location if is_url(location) else str(Path(location).resolve())
        doc = self._docs.get(key)
        if doc is None:
            raw = read_location(location)
            doc = Document(parse_bytes(raw, location), key, hashlib.sha256(raw).hexdigest(), self)
            self._docs[key] = doc
        return doc

    def add(self, data: Any, location: str) -> Document:
        """Register an in-memory document (tests, extracts) under ``location``."""
        raw = json.dumps(data, sort_keys=True, default=str).encode()
        doc = Document(data, location, hashlib.sha256(raw).hexdigest(), self)
        self._docs[location] = doc
        return doc


def load_description(location: str, library: Library | None = None) -> Document:
    """A vendor description's root file; refuses files that are not OpenAPI or Swagger."""
    doc = (library or Library()).load(location)
    if not isinstance(doc.data, dict) or not ("openapi" in doc.data or "swagger" in doc.data):
        raise SpecError(
            f"{location}: not an OpenAPI/Swagger document (no top-level `openapi` or `swagger` key)"
        )
    return doc
