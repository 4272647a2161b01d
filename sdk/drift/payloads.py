"""A connector's fixture payloads re-validated against a newer vendor description.

The footprint comparison reasons about schemas; this check runs the connector's real requests (one per
fixture) through the vendor's own request schema, old and new, and reports each payload that was valid
and no longer is. Only endpoints naming an ``openapi_operation`` are checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdk.drift.report import DriftReport
from sdk.errors import SluiceError


def revalidate_payloads(
    folder: Path, old_doc: dict[str, Any], new_doc: dict[str, Any], report: DriftReport
) -> int:
    """One breaking ``payload_invalid`` per payload the new description refuses; returns the count checked."""
    from sdk.connector import Connector
    from sdk.drift.fixtures import fixture_requests, success_fixtures
    from sdk.drift.footprint_from_spec import openapi_operations
    from sdk.openapi.validate import validator_for

    connector = Connector.from_folder(folder)
    ops = openapi_operations(connector.spec)
    validators: dict[tuple[str, str], Any] = {}

    def validator(which: str, doc: dict[str, Any], op: str) -> Any:
        key = (which, op)
        if key not in validators:
            try:
                validators[key] = validator_for(doc, op)
            except (SluiceError, KeyError):
                validators[key] = None
        return validators[key]

    checked = 0
    for case, fixture in success_fixtures(folder):
        try:
            requests = fixture_requests(connector, fixture)
        except SluiceError:
            continue
        for req in requests:
            endpoint = connector.endpoint_of(req) or ""
            op = ops.get(endpoint)
            old_v, new_v = (
                (validator("old", old_doc, op), validator("new", new_doc, op)) if op else (None, None)
            )
            if old_v is None or new_v is None:
                continue
            checked += 1
            if old_v.errors(req):
                continue  # already invalid against the pinned description: not drift
            errors = new_v.errors(req)
            if errors:
                report.add(
                    "breaking",
                    "payload_invalid",
                    endpoint,
                    f"fixture {case}",
                    "the request this fixture produces no longer validates: " + "; ".join(errors[:3]),
                )
    return checked
