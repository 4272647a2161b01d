"""Footprints by name: a connector's (spec + cassettes + optional hand-written additions) or a file's.

Lookup order for ``NAME``: an integration (``integrations/NAME``, aliases allowed), whose footprint is
derived from its spec and cassettes, plus ``integrations/NAME/footprint.yaml`` when present; otherwise a
hand-written ``drift/footprints/NAME.yaml`` for a vendor API that has no connector yet.
"""

from __future__ import annotations

from pathlib import Path

from sdk.drift.cassettes import cassettes_folder, read_cassettes
from sdk.drift.footprint import FieldUse, Footprint, load_footprint, merge_fields, merge_footprints
from sdk.drift.footprint_from_spec import endpoint_envelope, footprint_from_spec
from sdk.drift.footprint_observed import observed_operations, remount
from sdk.errors import SpecError, UnknownDestinationError

HAND_WRITTEN = "footprint.yaml"


def footprints_dir() -> Path:
    """``drift/footprints`` beside the ``integrations`` folder."""
    from sdk.registry import integrations_dir

    return integrations_dir().resolve().parent / "drift" / "footprints"


def connector_footprint(folder: Path) -> Footprint:
    """Everything the connector in ``folder`` depends on, from its spec, cassettes and footprint.yaml."""
    from sdk.connector import Connector
    from sdk.request import VendorRequest

    connector = Connector.from_folder(folder)
    fp = footprint_from_spec(connector.spec)
    fp.base_dir = str(folder.resolve())

    def endpoint_of(method: str, url: str) -> str | None:
        return connector.endpoint_of(VendorRequest(method=method, url=url))

    observed = observed_operations(read_cassettes(cassettes_folder(folder)), endpoint_of)
    for op in fp.operations:
        seen = observed.pop(op.id, None)
        if seen is None:
            continue
        envelope = endpoint_envelope(connector.spec, op.id)
        if envelope:
            for f in seen.body:
                f.pointer = envelope + f.pointer
            seen.body.insert(
                0, FieldUse(pointer=envelope.rsplit("/", 1)[0], types=["array"], sources=seen.sources[:1])
            )
        op.body = merge_fields(remount(op.body, seen.body), seen.body, conditions_from_a=True)
        for p in seen.params:
            if not any(
                q.pointer.lower() == p.pointer.lower() and q.location == p.location for q in op.params
            ):
                op.params.append(p)
        for r in seen.responses:
            if not any(x.status == r.status for x in op.responses):
                op.responses.append(r)
        op.sources += seen.sources
    fp.operations += list(observed.values())  # recorded calls to URLs no endpoint declares
    extra = folder / HAND_WRITTEN
    if extra.exists():
        fp = merge_footprints(fp, load_footprint(extra))
    return fp


def find_footprint(name: str) -> Footprint:
    """The footprint called ``name`` (see the module docstring for the lookup order)."""
    from sdk.registry import find_folder

    try:
        return connector_footprint(find_folder(name))
    except UnknownDestinationError:
        pass
    path = footprints_dir() / f"{name}.yaml"
    if path.exists():
        return load_footprint(path)
    known = sorted(p.stem for p in footprints_dir().glob("*.yaml")) if footprints_dir().is_dir() else []
    raise SpecError(
        f"no integration or footprint named {name!r}; hand-written footprints: "
        f"{', '.join(known) or '(none)'}; write drift/footprints/{name}.yaml or pass --footprint FILE"
    )
