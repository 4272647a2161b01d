"""API drift: what changed in a vendor's request contract, and does it break our connector?

Vendors change their published schemas under us (a field becomes required, a
type narrows, an operation disappears). Two questions matter:

* ``diff_operation`` — what changed between two documents for one operation,
  as machine-readable changes (``required_added``, ``type_changed``, ...), each
  marked breaking when a payload that was valid before may be invalid now;
* ``check_connector`` — re-validate every request the connector produces for its
  fixtures against the *new* document, because a diff can say "breaking" about a
  field we never send, and only the payloads tell whether we are affected.

CI runs ``sluice openapi drift <name> <new-vendor-file>`` whenever a newer vendor
file is fetched; a connector whose payloads stop validating fails the check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdk.errors import SluiceError, SpecError
from sdk.openapi.extract import load_document
from sdk.openapi.validate import validator_for

_COMBINATORS = ("allOf", "anyOf", "oneOf")


@dataclass(frozen=True)
class SchemaChange:
    kind: str
    path: str
    detail: str
    breaking: bool


def _types(schema: dict[str, Any]) -> set[str]:
    t = schema.get("type")
    out = set(t) if isinstance(t, list) else ({t} if isinstance(t, str) else set())
    if schema.get("nullable"):
        out.add("null")
    return out


def diff_schema(old: Any, new: Any, path: str = "$") -> list[SchemaChange]:
    """Changes from ``old`` to ``new`` (both with ``$ref`` already inlined)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    changes: list[SchemaChange] = []
    ot, nt = _types(old), _types(new)
    if ot and nt and ot != nt:
        lost = ot - nt
        changes.append(
            SchemaChange("type_changed", path, f"{sorted(ot)} -> {sorted(nt)}", breaking=bool(lost))
        )
    oe, ne = old.get("enum"), new.get("enum")
    if isinstance(oe, list) and isinstance(ne, list):
        removed = [v for v in oe if v not in ne]
        added = [v for v in ne if v not in oe]
        if removed:
            changes.append(SchemaChange("enum_removed", path, f"no longer allowed: {removed}", breaking=True))
        if added:
            changes.append(SchemaChange("enum_added", path, f"now allowed: {added}", breaking=False))
    elif isinstance(oe, list) and ne is None:
        changes.append(SchemaChange("enum_dropped", path, "any value now allowed", breaking=False))
    elif oe is None and isinstance(ne, list):
        changes.append(SchemaChange("enum_added", path, f"restricted to {ne}", breaking=True))
    oreq, nreq = set(old.get("required") or []), set(new.get("required") or [])
    for k in sorted(nreq - oreq):
        changes.append(SchemaChange("required_added", f"{path}.{k}", "now required", breaking=True))
    for k in sorted(oreq - nreq):
        changes.append(SchemaChange("required_removed", f"{path}.{k}", "no longer required", breaking=False))
    oprops, nprops = old.get("properties") or {}, new.get("properties") or {}
    closed = new.get("additionalProperties") is False
    for k in sorted(set(oprops) - set(nprops)):
        changes.append(
            SchemaChange(
                "property_removed",
                f"{path}.{k}",
                "removed"
                + (" and extra properties are refused" if closed else " (still accepted as an extra)"),
                breaking=closed,
            )
        )
    for k in sorted(set(nprops) - set(oprops)):
        changes.append(SchemaChange("property_added", f"{path}.{k}", "added", breaking=False))
    for k in sorted(set(oprops) & set(nprops)):
        changes += diff_schema(oprops[k], nprops[k], f"{path}.{k}")
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        changes += diff_schema(old["items"], new["items"], f"{path}[]")
    for comb in _COMBINATORS:
        ol, nl = old.get(comb), new.get(comb)
        if isinstance(ol, list) and isinstance(nl, list):
            for i, (a, b) in enumerate(zip(ol, nl, strict=False)):
                changes += diff_schema(a, b, f"{path}.{comb}[{i}]")
    return changes


def diff_operation(old_doc: dict[str, Any], new_doc: dict[str, Any], operation: str) -> list[SchemaChange]:
    """Request-contract changes of ``operation`` ('POST /import') between two documents."""
    try:
        old = validator_for(old_doc, operation)
    except (SluiceError, KeyError) as e:
        raise SpecError(f"{operation} is not in the old document: {e}") from e
    try:
        new = validator_for(new_doc, operation)
    except (SluiceError, KeyError):
        return [
            SchemaChange("operation_removed", operation, "the operation is gone from the new document", True)
        ]
    changes: list[SchemaChange] = []
    for mt in sorted(set(old.schemas) - set(new.schemas)):
        changes.append(
            SchemaChange("content_type_removed", operation, f"{mt} no longer accepted", breaking=True)
        )
    for mt in sorted(set(new.schemas) - set(old.schemas)):
        changes.append(SchemaChange("content_type_added", operation, f"{mt} now accepted", breaking=False))
    for mt in sorted(set(old.schemas) & set(new.schemas)):
        changes += diff_schema(old.schemas[mt], new.schemas[mt])
    return changes


@dataclass
class DriftReport:
    integration: str
    vendor_file: str
    changes: dict[str, list[SchemaChange]] = field(default_factory=dict)
    invalid_payloads: list[dict[str, Any]] = field(default_factory=list)
    checked_payloads: int = 0

    @property
    def affected(self) -> bool:
        """True when the connector's own requests break (or an operation it uses is gone)."""
        gone = any(c.kind == "operation_removed" for cs in self.changes.values() for c in cs)
        return gone or bool(self.invalid_payloads)

    def to_dict(self) -> dict[str, Any]:
        return {
            "integration": self.integration,
            "vendor_file": self.vendor_file,
            "affected": self.affected,
            "checked_payloads": self.checked_payloads,
            "invalid_payloads": self.invalid_payloads,
            "changes": {op: [asdict(c) for c in cs] for op, cs in self.changes.items()},
        }


def check_connector(folder: Path, vendor_file: Path) -> DriftReport:
    """Diff the connector's stored extract against ``vendor_file`` and re-validate its fixture requests."""
    from sdk.connector import Connector
    from sdk.testing.cases import load_cases
    from sdk.testing.checks import endpoint_for

    connector = Connector.from_folder(folder)
    spec = connector.spec
    if spec.openapi is None:
        raise SpecError(f"{spec.name} references no vendor OpenAPI document; nothing to check for drift")
    old_doc = load_document(folder / spec.openapi.document)
    new_doc = load_document(vendor_file)
    report = DriftReport(spec.name, str(vendor_file))
    ops = {n: ep.openapi_operation for n, ep in spec.endpoints.items() if ep.openapi_operation}
    for op in sorted(set(ops.values())):
        report.changes[op] = diff_operation(old_doc, new_doc, op)
    validators: dict[str, Any] = {}
    for case in load_cases(folder):
        if case.expect_error or case.problems:
            continue
        try:
            requests = case.run(connector)
        except SluiceError:
            continue
        for req in requests:
            op = ops.get(endpoint_for(connector, req) or "")
            if not op or any(c.kind == "operation_removed" for c in report.changes.get(op, [])):
                continue
            if op not in validators:
                validators[op] = validator_for(new_doc, op)
            report.checked_payloads += 1
            errors = validators[op].errors(req)
            if errors:
                report.invalid_payloads.append({"case": case.name, "operation": op, "errors": errors[:5]})
    return report
