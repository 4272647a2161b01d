"""Spec drift on real vendor history: the verdict on each drift example, and every alarm it does not describe.

The examples (``drift_examples.json`` in a vendor-specs folder: published OpenAPI/Swagger files of
Klaviyo, Intercom, Slack, SendGrid, Pinterest, OneSignal, Twilio and Stripe at several dates, and 17
documented changes between them) are case data outside the project; the footprints the changes are
judged against are project files (``drift/footprints/``), written as a connector built for the *old*
version would use each operation.

An alarm (breaking or warning) counts as *described* when the example names it: a pointer of its
machine-computed changes (or an ancestor/descendant of one), an operation-level change of the same
kind, or a change its summary states (``SUMMARY_NAMES`` below quotes the summary). Every other alarm is
listed as a false alarm.

    .venv/bin/python bench/drift_examples.py [--specs /work/shared/vendor_specs] [--json]
        [--mirror stripe/openapi=/work/.mirror/stripe+openapi/repo]

Four examples are documented by commit only. With ``--mirror REPO=GIT_DIR`` (a local clone of the
example's repository) the files are taken from those commits with ``git show`` into a temporary folder;
HubSpot's are never fetched (its licence forbids external use, which is why the folder omits them).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdk.drift.compare import compare_descriptions  # noqa: E402
from sdk.drift.document import Library, load_description  # noqa: E402
from sdk.drift.footprint import load_footprint  # noqa: E402
from sdk.drift.report import Change  # noqa: E402

FOOTPRINTS = ROOT / "drift" / "footprints"
# Which footprint(s) stand for "a connector built for the old side" of each example.
EXAMPLE_FOOTPRINTS = {
    "klaviyo-create-event-jsonapi-restructure": ["klaviyo-2023-06-15"],
    "klaviyo-create-event-meta-moved": ["klaviyo-2023-12-15"],
    "klaviyo-create-event-path-and-content-type": ["klaviyo-2024-07-15"],
    "klaviyo-profile-import-anonymous-id-removed": ["klaviyo-2025-07-15"],
    "intercom-create-contact-owner-id-type": ["intercom-2.15"],
    "slack-chat-postmessage-types-required": ["slack-1.3.0"],
    "sendgrid-mail-send-beta-path-renamed": ["sendgrid-v3-beta"],
    "sendgrid-contacts-upsert-identifiers": ["sendgrid-contacts-2024-05"],
    "pinterest-conversions-enum-to-prose": ["pinterest-5.8.0"],
    "pinterest-conversions-userdata-ref-siblings": ["pinterest-5.14.0"],
    "onesignal-players-removed-number-to-integer": ["onesignal-1.4.0"],
    "twilio-create-message-tags-added-then-removed": ["twilio-1.49.0"],
    "stripe-customers-business-vat-id-removed": ["stripe-2018-07-27"],
    "stripe-customers-tax-info-removed": ["stripe-2019-10-17"],
    "stripe-customers-tax-id-type-enum-narrowed-regression": ["stripe-2020-03-02"],
}
# Commit-only examples: which of the listed commits are compared (old index, new index).
COMMIT_STEPS = {
    "stripe-customers-tax-info-removed": [(0, 1)],
    "stripe-customers-tax-id-type-enum-narrowed-regression": [(0, 1), (1, 2)],
}
# Changes an example's summary states that its computed changes do not list: (where, quote).
SUMMARY_NAMES = {
    "slack-chat-postmessage-types-required": [("header token", "(header `token` also required)")],
    "klaviyo-create-event-meta-moved": [("/value_currency", "`value_currency` added")],
    "stripe-customers-tax-info-removed": [
        ("/tax_info", "`tax_info` ... removed from create/update customer")
    ],
    "stripe-customers-tax-id-type-enum-narrowed-regression": [
        ("/tax_id_data/*/type", "enum tax_id_data[].type narrowed (...) and restored 15 minutes later")
    ],
}
OPERATION_KINDS = {
    "operation_removed",
    "path_changed",
    "path_respelled",
    "content_type_changed",
    "body_removed",
}


def _pointer(computed: str) -> str:
    """``$.data[].user_data<anyOf2>.st`` → ``/data/*/user_data/st``."""
    p = re.sub(r"<[^>]*>", "", computed.lstrip("$"))
    p = p.replace("[]", ".*").replace("{*}", "*")
    return "".join("/" + s for s in p.split(".") if s)


def _alarm_pointers(c: Change) -> list[str]:
    """The pointers an alarm is about (a node's new keys count as pointers below the node)."""
    base = c.where.split(" ", 1)[1] if " " in c.where else ""
    base = re.sub(r"^\d\w* ", "", base)  # "response 200 /x" -> "/x"
    keys = c.new if isinstance(c.new, list) and c.kind in ("required_added", "property_added") else []
    if keys and c.where.split(" ", 1)[0] in ("body", "form"):
        return [base.rstrip("/") + "/" + k for k in keys]
    return [base]


def _related(a: str, b: str) -> bool:
    a, b = a.rstrip("/"), b.rstrip("/")
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def described(example: dict[str, Any], c: Change) -> bool:
    computed = example.get("computed_changes") or []
    kinds = {x["kind"] for x in computed}
    if c.kind in OPERATION_KINDS:
        return bool(kinds & {"operation_removed", "path_changed", "content_type_changed"})
    pointers = [_pointer(x["pointer"]) for x in computed if x.get("pointer")]
    for ap in _alarm_pointers(c):
        if ap and any(_related(ap, p) for p in pointers):
            return True
    for where, _quote in SUMMARY_NAMES.get(example["id"], []):
        if where in c.where or any(where in ap for ap in _alarm_pointers(c)):
            return True
    return False


def expects_breaking(value: Any) -> bool:
    """``True`` or a spec-level "yes"; spurious, tooling-dependent and API-unchanged cases are not."""
    if isinstance(value, bool):
        return value
    return str(value).startswith("spec-level yes")


def _steps(
    ex: dict[str, Any], specs: Path, mirrors: dict[str, Path], tmp: Path
) -> list[tuple[Path, Path]] | str:
    """(old file, new file) pairs to compare, or why the example cannot run."""
    if "old" in ex:
        return [(specs / ex["old"]["file"], specs / ex["new"]["file"])]
    if ex["id"] not in COMMIT_STEPS:
        return "documented by commit only; files not in the folder (not fetched: licence)"
    git_dir = mirrors.get(ex.get("repo", ""))
    if git_dir is None:
        return f"documented by commit only; pass --mirror {ex.get('repo')}=GIT_DIR to run it"
    files = []
    for c in ex["commits"]:
        out = tmp / f"{c['commit']}{Path(ex['path']).suffix}"
        if not out.exists():
            blob = subprocess.run(
                ["git", "-C", str(git_dir), "show", f"{c['commit']}:{ex['path']}"],
                capture_output=True,
                check=True,
            ).stdout
            out.write_bytes(blob)
        files.append(out)
    return [(files[a], files[b]) for a, b in COMMIT_STEPS[ex["id"]]]


def run(specs: Path, mirrors: dict[str, Path] | None = None) -> list[dict[str, Any]]:
    examples = json.loads((specs / "drift_examples.json").read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmpdir:
        for ex in examples:
            rows.append(_run_one(ex, specs, mirrors or {}, Path(tmpdir)))
    return rows


def _run_one(ex: dict[str, Any], specs: Path, mirrors: dict[str, Path], tmp: Path) -> dict[str, Any]:
    row: dict[str, Any] = {"id": ex["id"], "example_breaking": ex.get("breaking")}
    steps = _steps(ex, specs, mirrors, tmp)
    if isinstance(steps, str):
        row.update(verdict="not run", note=steps)
        return row
    started = time.perf_counter()
    alarms: list[Change] = []
    ignored = info = 0
    for old_file, new_file in steps:
        lib = Library()
        old, new = load_description(str(old_file), lib), load_description(str(new_file), lib)
        for name in EXAMPLE_FOOTPRINTS[ex["id"]]:
            fp = load_footprint(FOOTPRINTS / f"{name}.yaml")
            report = compare_descriptions(fp, old, new, include_ignored=True)
            alarms += report.alarms()
            counts = report.counts()
            ignored += counts["ignored"]
            info += counts["info"]
    good = [c for c in alarms if described(ex, c)]
    bad = [c for c in alarms if not described(ex, c)]
    breaking_found = any(c.severity == "breaking" for c in good)
    if expects_breaking(ex.get("breaking")):
        verdict = "found" if breaking_found else ("found (warning only)" if good else "missed")
    else:
        verdict = "breaking alarm" if any(c.severity == "breaking" for c in alarms) else "no breaking alarm"
    row.update(
        verdict=verdict,
        severity="breaking" if breaking_found else ("warning" if good else "-"),
        described=[c.line() for c in good],
        false_alarms=[c.line() for c in bad],
        info=info,
        ignored=ignored,
        seconds=round(time.perf_counter() - started, 2),
    )
    return row


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| example | example says breaking | verdict | severity | alarms described | false alarms | info "
        "| ignored |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["verdict"] == "not run":
            out.append(f"| {r['id']} | {r['example_breaking']} | not run ({r['note']}) | | | | | |")
            continue
        out.append(
            f"| {r['id']} | {r['example_breaking']} | {r['verdict']} | {r['severity']} | "
            f"{len(r['described'])} | {len(r['false_alarms'])} | {r['info']} | {r['ignored']} |"
        )
    out.append("")
    for r in rows:
        if r.get("described"):
            out.append(f"{r['id']}: alarms the example describes")
            out += [f"    {line}" for line in r["described"]]
    out.append("")
    out.append("False alarms (alarms the example does not describe):")
    any_false = False
    for r in rows:
        for line in r.get("false_alarms") or []:
            any_false = True
            out.append(f"  {r['id']}: {line}")
    if not any_false:
        out.append("  none")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--specs",
        type=Path,
        default=Path("/work/shared/vendor_specs"),
        help="folder holding drift_examples.json and the vendor files",
    )
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="OWNER/REPO=GIT_DIR",
        help="local clone to take commit-only examples from (repeatable)",
    )
    args = ap.parse_args()
    mirrors = {k: Path(v) for k, _, v in (m.partition("=") for m in args.mirror)}
    started = time.perf_counter()
    rows = run(args.specs, mirrors)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(table(rows))
        print(
            f"\n{sum(1 for r in rows if r['verdict'] != 'not run')} examples compared in "
            f"{time.perf_counter() - started:.1f} s"
        )


if __name__ == "__main__":
    main()
