"""What a drift check found: changes with severities, printable for people and as JSON.

Severities: ``breaking`` (a request the connector sends may now fail, or a response it reads changed
under it), ``warning`` (deprecations, additions on what it calls, widened values it reads), ``info``
(changes inside the footprint that cannot hurt it, shown with ``--all``), ``ignored`` (outside the
footprint, listed only with ``--all``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("breaking", "warning", "info", "ignored")
ALARMS = ("breaking", "warning")


@dataclass
class Change:
    severity: str
    kind: str
    operation: str
    where: str
    detail: str
    old: Any = None
    new: Any = None

    def line(self) -> str:
        return f"{self.severity.upper():8} {self.kind:24} {self.operation} {self.where}: {self.detail}"


@dataclass
class DriftReport:
    """The result of one check (spec or live) of one footprint or connector."""

    check: str  # "spec" | "live"
    subject: str  # footprint or connector name
    old: dict[str, Any] = field(default_factory=dict)
    new: dict[str, Any] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    operations: dict[str, str] = field(default_factory=dict)  # operation id -> how it was matched
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        severity: str,
        kind: str,
        operation: str,
        where: str,
        detail: str,
        old: Any = None,
        new: Any = None,
    ) -> None:
        self.changes.append(Change(severity, kind, operation, where, detail, old, new))

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for c in self.changes if c.severity == s) for s in SEVERITIES}

    @property
    def breaking(self) -> bool:
        return any(c.severity == "breaking" for c in self.changes)

    @property
    def drifting(self) -> bool:
        """Worth telling someone about: anything breaking or a warning."""
        return any(c.severity in ALARMS for c in self.changes)

    def alarms(self) -> list[Change]:
        return [c for c in self.changes if c.severity in ALARMS]

    def to_dict(self, include: tuple[str, ...] = ("breaking", "warning", "info")) -> dict[str, Any]:
        return {
            "check": self.check,
            "subject": self.subject,
            "old": self.old,
            "new": self.new,
            "summary": self.counts(),
            "breaking": self.breaking,
            "operations": self.operations,
            "notes": self.notes,
            "changes": [asdict(c) for c in self.changes if c.severity in include],
        }

    def render(self, show_all: bool = False) -> str:
        """Human output: alarms in full, harmless and outside-footprint changes only with ``show_all``."""
        c = self.counts()
        lines = [f"{self.check} drift for {self.subject}"]
        if self.old:
            lines.append(f"  old: {_describe(self.old)}")
        if self.new:
            lines.append(f"  new: {_describe(self.new)}")
        for op, how in self.operations.items():
            lines.append(f"  operation {op}: {how}")
        lines += [f"  note: {n}" for n in self.notes]
        shown = SEVERITIES if show_all else ALARMS
        for sev in shown:
            for ch in self.changes:
                if ch.severity == sev:
                    lines.append("  " + ch.line())
        hidden = [s for s in SEVERITIES if s not in shown and c[s]]
        summary = ", ".join(f"{c[s]} {s}" for s in SEVERITIES)
        lines.append(f"  {summary}" + (f" ({' and '.join(hidden)} shown with --all)" if hidden else ""))
        return "\n".join(lines)

    def markdown(self) -> str:
        """The report as a GitHub issue body."""
        c = self.counts()
        out = [f"### {self.check} drift: `{self.subject}`", ""]
        if self.old:
            out.append(f"- old: {_describe(self.old)}")
        if self.new:
            out.append(f"- new: {_describe(self.new)}")
        out.append(f"- {c['breaking']} breaking, {c['warning']} warning(s), {c['info']} harmless")
        out += ["", "| severity | kind | operation | where | detail |", "|---|---|---|---|---|"]
        for ch in self.alarms():
            detail = ch.detail.replace("|", "\\|").replace("\n", " ")
            out.append(f"| {ch.severity} | {ch.kind} | {ch.operation} | `{ch.where}` | {detail} |")
        return "\n".join(out) + "\n"


def _describe(d: dict[str, Any]) -> str:
    parts = [str(d.get("source") or d.get("base_url") or "?")]
    if d.get("version"):
        parts.append(f"version {d['version']}")
    if d.get("sha256"):
        parts.append(f"sha256 {str(d['sha256'])[:12]}")
    return ", ".join(parts)
