"""Compile a spec's field mappings once into plain Python callables.

The per-event cost is then: for each field, try its pre-split source paths,
run its pre-resolved formats, set the pre-split destination path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdk.errors import InstrumentationError
from sdk.mapping import formats
from sdk.mapping.paths import MISSING, get_path, set_path, split_path
from sdk.mapping.templates import Template
from sdk.spec.model import EventMapping, Field_, FieldSet

Namespace = dict[str, Any]  # {"event": ..., "settings": ..., "vars": ..., "ctx": ...}


class CompiledField:
    def __init__(self, dest: str, f: Field_, where: str):
        self.dest = dest
        self.dest_parts = split_path(dest)
        self.where = where
        self.sources: list[tuple[str, tuple[str, ...]]] = []
        for src in f.from_:
            if src.startswith("$settings."):
                self.sources.append(("settings", split_path(src[len("$settings.") :])))
            elif src == "$now":
                self.sources.append(("now", ()))
            elif src == "$message_id":
                self.sources.append(("message_id", ()))
            else:
                self.sources.append(("event", split_path(src)))
        self.value_template = (
            Template(f.value, where) if isinstance(f.value, str) and "{{" in f.value else None
        )
        self.value = f.value
        self.default = f.default
        self.required = f.required
        self.error = f.error
        self.formats = [formats.resolve(s) for s in f.format]
        self.omit = set(f.omit)
        self.omit_mapped = f.omit_mapped
        self.keep_null = f.keep_null
        self.keep_empty = f.keep_empty
        self.if_setting = f.if_setting

    def read(self, ns: Namespace) -> Any:
        if self.value_template is not None:
            return self.value_template.render(ns, raw=True)
        if self.value is not None:
            return self.value
        for kind, parts in self.sources:
            if kind == "event":
                v = get_path(ns["event"], parts)
            elif kind == "settings":
                v = get_path(ns["settings"], parts)
            elif kind == "now":
                v = ns["ctx"].now_iso()
            else:
                v = ns["event"].get("messageId") or ns["ctx"].new_id()
            if v is not MISSING and v is not None:
                return v
        return MISSING

    def apply(self, ns: Namespace, body: dict, consumed: set[str]) -> None:
        if self.if_setting:
            settings = ns["settings"]
            for k, want in self.if_setting.items():
                if settings.get(k) != want:
                    return
        v = self.read(ns)
        if v is MISSING or (v is None and not self.keep_null):
            if self.default is not None:
                v = self.default
            elif self.required:
                paths = " or ".join(".".join(p) for _, p in self.sources) or self.dest
                raise InstrumentationError(self.error or f"{paths} is required for {self.where}; add it")
            elif self.keep_null:
                v = None
            else:
                return
        if isinstance(v, dict) and (self.omit or self.omit_mapped):
            drop = self.omit | (consumed if self.omit_mapped else set())
            v = {k: x for k, x in v.items() if k not in drop}
        for _name, fn, arg in self.formats:
            if v is None:
                break
            try:
                v = fn(v, arg)
            except formats.FormatError as e:
                raise InstrumentationError(f"{self.dest} ({self.where}): {e}; fix the event value") from e
        if not self.keep_empty and v in ({}, [], ""):
            return
        set_path(body, self.dest_parts, v)


class CompiledMapping:
    """One event type's mapping, ready to run."""

    def __init__(self, mapping: EventMapping, common: FieldSet | None, where: str):
        self.endpoint = mapping.endpoint
        fields: dict[str, Field_ | str] = {}
        if common:
            fields.update(common.body)
        fields.update(mapping.body)
        self.fields = [CompiledField(dest, f, f"{where}.{dest}") for dest, f in fields.items()]  # type: ignore[arg-type]
        # Keys consumed from properties/traits by other fields, for `omit_mapped`.
        self.consumed: set[str] = set()
        for cf in self.fields:
            for kind, parts in cf.sources:
                if kind == "event" and len(parts) >= 2:
                    self.consumed.add(parts[-1])
        # Fields that take remaining keys run last, so that explicit ones win.
        self.fields.sort(key=lambda c: c.omit_mapped)

    def run(self, ns: Namespace) -> dict:
        body: dict[str, Any] = {}
        for cf in self.fields:
            cf.apply(ns, body, self.consumed)
        return body


def compile_mappings(
    mappings: dict[str, EventMapping], common: FieldSet | None, name: str
) -> dict[str, CompiledMapping]:
    return {etype: CompiledMapping(m, common, f"{name}.mappings.{etype}") for etype, m in mappings.items()}


Builder = Callable[[Namespace], dict]
