"""``sluice drift spec``: resolve a footprint and two descriptions, compare, and add the payload check.

The old description defaults to the footprint's pinned copy (a connector's ``openapi.document``, a
footprint file's ``description.document``); the new one to where the pin says the vendor publishes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sdk.drift.compare import compare_descriptions
from sdk.drift.document import Document, Library, is_url, load_description
from sdk.drift.footprint import Footprint
from sdk.drift.report import DriftReport
from sdk.errors import SpecError


def source_location(source: str) -> str:
    """A pin's ``source`` as a location: a URL, ``owner/repo path`` on GitHub, or a local path."""
    source = source.strip()
    parts = source.split()
    if is_url(source) or len(parts) != 2 or parts[0].count("/") != 1:
        return source
    repo, path = parts
    return f"https://raw.githubusercontent.com/{repo}/HEAD/{path}"


@dataclass
class SpecCheck:
    footprint: Footprint
    old: Document
    new: Document
    report: DriftReport


def pinned_old(fp: Footprint) -> str:
    path = fp.document_path()
    if path is None:
        raise SpecError(
            f"{fp.name} pins no local copy of the vendor description; pass --old FILE_OR_URL "
            f"(or set description.document in its footprint / openapi.document in its spec)"
        )
    return str(path)


def pinned_new(fp: Footprint) -> str:
    source = fp.description.source if fp.description else None
    if not source:
        raise SpecError(
            f"{fp.name} does not say where the vendor publishes its description; pass --new FILE_OR_URL"
        )
    return source_location(source)


def check_spec(
    fp: Footprint,
    old: str | None = None,
    new: str | None = None,
    include_ignored: bool = False,
    connector_folder: Path | None = None,
) -> SpecCheck:
    """Compare ``old`` and ``new`` (defaults: the pin's copy and source) inside ``fp``."""
    lib = Library()
    old_doc = load_description(old or pinned_old(fp), lib)
    new_doc = load_description(new or pinned_new(fp), lib)
    report = compare_descriptions(fp, old_doc, new_doc, include_ignored)
    if connector_folder is not None and (connector_folder / "fixtures").is_dir():
        from sdk.drift.payloads import revalidate_payloads

        checked = revalidate_payloads(connector_folder, old_doc.data, new_doc.data, report)
        if checked:
            report.notes.append(f"{checked} fixture payload(s) re-validated against the new description")
    return SpecCheck(fp, old_doc, new_doc, report)
