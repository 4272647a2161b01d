"""Credentials out of stored data: seal them into placeholders, unseal at send time, redact for display.

Why: mapped vendor requests carry the destination's API keys (in headers, params, URLs, even inside
JSON bodies), and they are stored in the queue until sent. Sealing replaces every occurrence of every
value of a ``secret: true`` setting with a placeholder naming the setting, so what is stored holds no
credential; unsealing, just before the request goes on the wire, puts the values back from the
destination's current config. Both work on any JSON-shaped value and are exact inverses
(``unseal(seal(x, s), s) == x`` for every ``x``), whatever the length of a secret (a two-character
secret is sealed like any other) and whatever the event contains.

Placeholders are built so that they can neither be forged nor leak:

* a placeholder is ``⟦`` (U+27E6), a kind character, the setting's name, ``⟧`` (U+27E7), where the
  kind and the name are written in Unicode private-use characters (U+E000 + the ASCII code of each
  character of the percent-encoded name). A secret made of anything else (every real-world API key)
  therefore cannot occur inside a placeholder, and since every match is replaced, nowhere in sealed
  text at all;
* a ``⟦`` already present in the data is stored doubled, so nothing an event sends can be mistaken
  for a placeholder (an event cannot have a credential written into its own payload);
* kinds: the raw value, its JSON-escaped form, its URL-encoded form, its base64 form, and a whole
  HTTP Basic credential (``Basic base64(user:password)``) whose decoded text held a secret; the
  latter carries the base64 of the sealed ``user:password``, again in private-use characters.

``redact`` is for people (``sluice dlq show``, logs, stored vendor answers): placeholders and any raw
secret value become ``***``. Events nested thousands deep are handled like flat ones (the walk never
exhausts the recursion limit).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

import orjson

from sdk.errors import ConfigurationError

MARK = "\u27e6"  # ⟦
END = "\u27e7"  # ⟧
REDACTED = "***"
_PRIVATE = 0xE000  # ASCII text is written as U+E000 + code point inside a placeholder
_KINDS = {"s": "\ue100", "j": "\ue101", "u": "\ue102", "b": "\ue103", "B": "\ue104"}
_KIND_OF = {v: k for k, v in _KINDS.items()}
_HIDE = {i: _PRIVATE + i for i in range(128)}
_SHOW = {_PRIVATE + i: i for i in range(128)}
_TOKEN = re.compile(f"{MARK}(?:({MARK})|([\ue100-\ue104])([\ue000-\ue07f]*){END})")
_BASIC = re.compile(r"(?i)(basic[ \t]+)([A-Za-z0-9+/]+={0,2})")
_BASIC_IN_JSON = re.compile(rb'(?i)"basic[ \t]')
_ESCAPED_MARK = re.compile(r"\\u27[eE]6")


class MissingSecret(ConfigurationError):
    """A stored request needs a secret setting the destination config no longer has."""


def secret_values(names: Iterable[str], settings: Mapping[str, Any]) -> dict[str, str]:
    """``{name: value}`` for the secret settings ``names`` in ``settings``; a structured value (list or
    object) contributes each of its non-empty text leaves, named ``name.0.key``."""
    out: dict[str, str] = {}
    for name in names:
        stack: list[tuple[str, Any]] = [(name, settings.get(name))]
        while stack:
            path, value = stack.pop()
            if isinstance(value, dict):
                stack.extend((f"{path}.{k}", v) for k, v in value.items())
            elif isinstance(value, list):
                stack.extend((f"{path}.{i}", v) for i, v in enumerate(value))
            elif isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value):
                out[path] = str(value)
    return out


_DEEP = 200  # nesting beyond which the walk continues without recursion


def _map_strings(obj: Any, fn: Callable[[str], str], depth: int = 0) -> Any:
    """``obj`` with ``fn`` applied to every string in it (object keys included). Containers are copied
    only where something changed (the input is never modified); past ``_DEEP`` levels the walk goes
    on with an explicit stack, so no nesting depth can exhaust the interpreter's recursion limit."""
    cls = obj.__class__
    if cls is str:
        return fn(obj)
    if cls is dict:
        if depth > _DEEP:
            return _map_strings_flat(obj, fn)
        out: list[tuple[Any, Any]] | None = None
        for i, (k, v) in enumerate(obj.items()):
            nk = fn(k) if k.__class__ is str else k
            vc = v.__class__
            nv = fn(v) if vc is str else _map_strings(v, fn, depth + 1) if vc is dict or vc is list else v
            if out is None:
                if nk is k and nv is v:
                    continue
                out = list(itertools.islice(obj.items(), i))
            out.append((nk, nv))
        return obj if out is None else dict(out)
    if cls is list:
        if depth > _DEEP:
            return _map_strings_flat(obj, fn)
        new: list[Any] | None = None
        for i, v in enumerate(obj):
            vc = v.__class__
            nv = fn(v) if vc is str else _map_strings(v, fn, depth + 1) if vc is dict or vc is list else v
            if new is None:
                if nv is v:
                    continue
                new = obj[:i]
            new.append(nv)
        return obj if new is None else new
    if isinstance(obj, (str, dict, list)):  # subclasses: rare, take the general path
        return _map_strings_flat(obj, fn)
    return obj


def _map_strings_flat(obj: Any, fn: Callable[[str], str]) -> Any:
    """:func:`_map_strings` without recursion (post-order over an explicit stack)."""
    if isinstance(obj, str):
        return fn(obj)
    if not isinstance(obj, (dict, list)):
        return obj
    done: dict[int, Any] = {}

    def new(v: Any) -> Any:
        if isinstance(v, str):
            return fn(v)
        return done.get(id(v), v) if isinstance(v, (dict, list)) else v

    stack: list[tuple[Any, bool]] = [(obj, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if not expanded:
            stack.append((node, True))
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, False) for c in children if isinstance(c, (dict, list)))
            continue
        if isinstance(node, dict):
            items = [(fn(k) if isinstance(k, str) else k, new(v)) for k, v in node.items()]
            same = all(nk is k and nv is v for (nk, nv), (k, v) in zip(items, node.items(), strict=True))
            done[id(node)] = node if same else dict(items)
        else:
            values = [new(v) for v in node]
            same = all(nv is v for nv, v in zip(values, node, strict=True))
            done[id(node)] = node if same else values
    return done[id(obj)]


def _placeholder(kind: str, ascii_text: str) -> str:
    return MARK + _KINDS[kind] + ascii_text.translate(_HIDE) + END


class Secrets:
    """The secret values of one destination config, compiled once for sealing, unsealing and redacting."""

    def __init__(self, values: Mapping[str, str]):
        self.values = {k: v for k, v in values.items() if isinstance(v, str) and v}
        forms: dict[str, str] = {}  # text -> its placeholder
        self._plain: dict[str, str] = {}  # placeholder -> the text it stands for
        for name in sorted(self.values, key=lambda n: (-len(self.values[n]), n)):
            value = self.values[name]
            qname = quote(name, safe="")
            for kind, text in (
                ("s", value),
                ("j", json.dumps(value, ensure_ascii=False)[1:-1]),
                ("u", quote(value, safe="")),
                ("b", base64.b64encode(value.encode()).decode()),
            ):
                token = _placeholder(kind, qname)
                forms.setdefault(text, token)
                self._plain.setdefault(token, text)
        # Longest first, so a secret that contains another is replaced whole; then a lone MARK (escaped).
        alternatives = [re.escape(t) for t in sorted(forms, key=len, reverse=True)] + [re.escape(MARK)]
        self._forms = forms
        self._find = re.compile("|".join(alternatives))
        # Substring tests are far cheaper than the regex: it only runs on text that holds something.
        self._probes = (*sorted(forms, key=len, reverse=True), MARK)
        # The same tests on a subtree's JSON text (see _map_pruned) hold only for secrets that JSON
        # writes as they are; a secret with a quote, backslash or control character is searched for
        # string by string.
        self._text_probes = tuple(p.encode() for p in self._probes)
        self._prunable = all(json.dumps(v, ensure_ascii=False)[1:-1] == v for v in self.values.values())
        self._shortest = min((len(f) for f in forms), default=1 << 30)

    def __bool__(self) -> bool:
        return bool(self.values)

    @classmethod
    def of(cls, names: Iterable[str], settings: Mapping[str, Any]) -> Secrets:
        return cls(secret_values(names, settings))

    @classmethod
    def for_destination(cls, connector: Any, settings: Mapping[str, Any]) -> Secrets:
        """Every secret of a destination's config: top-level ``secret: true`` settings (structured ones
        leaf by leaf) and secret properties nested in objects and list rows, each named by its path."""
        values = secret_values(connector.spec.secret_settings(), settings)
        values.update(connector.spec.secret_paths(dict(settings)))
        return cls(values)

    # -- text --------------------------------------------------------------------------------------
    def _seal_replace(self, m: re.Match[str]) -> str:
        text = m.group()
        return self._forms.get(text) or MARK + MARK  # (a lone MARK in the data is doubled)

    def seal_text(self, text: str) -> str:
        if len(text) < self._shortest:  # too short to hold any secret (most keys and values)
            return text.replace(MARK, MARK + MARK) if MARK in text else text
        if text[:1] in ("b", "B") and self.values:
            basic = _BASIC.fullmatch(text)
            if basic is not None:
                sealed = self._seal_basic(basic)
                if sealed is not None:
                    return sealed
        for probe in self._probes:
            if probe in text:
                return self._find.sub(self._seal_replace, text)
        return text

    def _seal_basic(self, m: re.Match[str]) -> str | None:
        try:
            raw = base64.b64decode(m.group(2), validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        if base64.b64encode(raw).decode() != m.group(2):
            return None  # not in canonical form: unsealing could not give back the same text
        inner = self._find.sub(self._seal_replace, decoded)
        if inner == decoded:
            return None
        return m.group(1) + _placeholder("B", base64.b64encode(inner.encode()).decode())

    def _unseal_replace(self, m: re.Match[str]) -> str:
        if m.group(1):
            return MARK
        if m.group(2) == _KINDS["B"]:
            inner = base64.b64decode(m.group(3).translate(_SHOW)).decode("utf-8")
            return base64.b64encode(self.unseal_text(inner).encode()).decode()
        text = self._plain.get(m.group())
        if text is None:
            raise MissingSecret(
                f"a stored request needs the secret setting {unquote(m.group(3).translate(_SHOW))!r}, "
                "which the destination config no longer has; restore it, or replay the dead letters "
                "once the config is fixed"
            )
        return text

    def unseal_text(self, text: str) -> str:
        if MARK not in text:
            return text
        return _TOKEN.sub(self._unseal_replace, text)

    # -- values ------------------------------------------------------------------------------------
    def _dirty(self, text: bytes) -> bool:
        for probe in self._text_probes:  # a plain loop: several times faster than any(<genexpr>) here
            if probe in text:
                return True
        return _BASIC_IN_JSON.search(text) is not None

    def seal(self, obj: Any) -> Any:
        """``obj`` with every secret replaced by its placeholder (and every ``⟦`` escaped)."""
        if self._prunable:
            try:
                return self._seal_pruned(obj, 0)
            except (TypeError, orjson.JSONEncodeError):
                pass  # not plain JSON (non-text keys, huge integers): the walk handles anything
        return _map_strings(obj, self.seal_text)

    def _seal_pruned(self, obj: Any, depth: int) -> Any:
        """Seal, skipping each container near the top whose JSON text holds nothing to seal (a C-speed
        test): in a mapped request that leaves the few fields a credential sits in to visit."""
        cls = obj.__class__
        if cls is str:
            return self.seal_text(obj)
        if cls is not dict and cls is not list:
            return obj
        if not self._dirty(orjson.dumps(obj)):
            return obj
        if depth >= 3:
            return _map_strings(obj, self.seal_text)
        if cls is list:
            values = [self._seal_pruned(v, depth + 1) for v in obj]
            return obj if all(n is v for n, v in zip(values, obj, strict=True)) else values
        items = []
        same = True
        for k, v in obj.items():
            nk = self.seal_text(k) if k.__class__ is str else k
            nv = self._seal_pruned(v, depth + 1)
            same = same and nk is k and nv is v
            items.append((nk, nv))
        return obj if same else dict(items)

    def unseal(self, obj: Any) -> Any:
        """The exact inverse of :meth:`seal`; raises ``MissingSecret`` for a setting no longer configured."""
        return _map_strings(obj, self.unseal_text)

    def unseal_json(self, text: str) -> str:
        """``unseal`` for JSON text (as Postgres writes jsonb), done on the text: each placeholder
        becomes its value, JSON-escaped. Placeholders only ever sit inside JSON strings and Postgres
        writes their characters as they are; text holding an escaped marker (``\\u27e6``) is unsealed
        the long way, as values."""
        if MARK not in text and "\\u27" not in text:
            return text
        if _ESCAPED_MARK.search(text):
            return json.dumps(self.unseal(json.loads(text)), ensure_ascii=False)
        return _TOKEN.sub(self._unseal_json_replace, text)

    def _unseal_json_replace(self, m: re.Match[str]) -> str:
        return json.dumps(self._unseal_replace(m), ensure_ascii=False)[1:-1]

    def redact_text(self, text: str) -> str:
        return render_text(self.seal_text(render_text(text)))

    def redact(self, obj: Any) -> Any:
        """For display only (lossy): placeholders and raw secret values become ``***``."""
        return _map_strings(obj, self.redact_text)


def render_text(text: str) -> str:
    """Placeholders shown as ``***`` and escaped ``⟦`` as itself: sealed text made readable."""
    if MARK not in text:
        return text
    return _TOKEN.sub(lambda m: MARK if m.group(1) else REDACTED, text)


def _compiled(secrets: Secrets | Mapping[str, str] | None) -> Secrets:
    return secrets if isinstance(secrets, Secrets) else Secrets(secrets or {})


def seal(obj: Any, secrets: Secrets | Mapping[str, str]) -> Any:
    """Replace every occurrence of every secret value in ``obj`` with an unambiguous placeholder."""
    return _compiled(secrets).seal(obj)


def unseal(obj: Any, secrets: Secrets | Mapping[str, str]) -> Any:
    """Restore what :func:`seal` replaced, from the destination's current secret values."""
    return _compiled(secrets).unseal(obj)


def redact(obj: Any, secrets: Secrets | Mapping[str, str] | None = None) -> Any:
    """For display: placeholders, and raw values of ``secrets`` if given, become ``***``."""
    return _compiled(secrets).redact(obj)
