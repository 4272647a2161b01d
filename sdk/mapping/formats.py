"""Formats (also called filters): named value conversions, the same everywhere in the spec language.

A field applies them in order (``format: [trim, lower, sha256]``); an expression string pipes into them
(``traits.email | trim | lower | sha256``); a template too (``"{{ userId | urlencode }}"``). Arguments
follow the name: ``{truncate: 100}`` in a list, ``truncate(100)`` in a pipe.

Each format is a small function ``(value, argument) -> value``, registered by name with a one-line
description that ``docs/spec-language.md`` lists. Formats marked *per element* apply to each element
of a list (so ``sha256`` hashes every email of a list). A format that cannot convert a value raises
``FormatError``; the engine turns it into an instrumentation error naming the field (or drops the
value where the field says ``lenient: true``). Add a format here when two or more connectors need it.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import math
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sdk.mapping.paths import MISSING

FormatFn = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Format:
    name: str
    fn: FormatFn
    doc: str
    per_element: bool
    example: tuple[Any, Any, Any] | None  # (input, argument, output), executed by the reference tests


FORMATS: dict[str, Format] = {}

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


class FormatError(ValueError):
    pass


def register(
    name: str, doc: str, *, per_element: bool = False, example: tuple[Any, Any, Any] | None = None
) -> Callable[[FormatFn], FormatFn]:
    def deco(fn: FormatFn) -> FormatFn:
        if per_element:
            inner = fn

            def fn(v: Any, arg: Any = None) -> Any:  # noqa: F811 - deliberate wrapping
                if type(v) is list:
                    return [inner(x, arg) for x in v if x is not None]
                return inner(v, arg)

            fn.__name__ = inner.__name__
            fn.__doc__ = inner.__doc__
        FORMATS[name] = Format(name, fn, doc, per_element, example)
        return fn

    return deco


# -- text ---------------------------------------------------------------------------------------------
@register(
    "string",
    "Text: numbers without a trailing .0, booleans as true/false, objects as compact JSON",
    example=(12.0, None, "12"),
)
def to_string(v: Any, _: Any = None) -> Any:
    if type(v) is str:  # the common case first (subclasses of str still pass below)
        return v
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


@register(
    "lower", "Lower case (text only; other values pass)", per_element=True, example=("Ada", None, "ada")
)
def lower(v: Any, _: Any = None) -> Any:
    return v.lower() if isinstance(v, str) else v


@register("upper", "Upper case (text only)", per_element=True, example=("eur", None, "EUR"))
def upper(v: Any, _: Any = None) -> Any:
    return v.upper() if isinstance(v, str) else v


@register("trim", "Strip surrounding white space (text only)", per_element=True, example=("  a ", None, "a"))
def trim(v: Any, _: Any = None) -> Any:
    return v.strip() if isinstance(v, str) else v


@register(
    "squish",
    "Runs of white space made one space, ends trimmed (names built from templates with empty parts)",
    per_element=True,
    example=("Viewed  Home page ", None, "Viewed Home page"),
)
def squish(v: Any, _: Any = None) -> Any:
    return " ".join(v.split()) if isinstance(v, str) else v


@register("capitalize", "First letter upper case, the rest unchanged", example=("purchase", None, "Purchase"))
def capitalize(v: Any, _: Any = None) -> Any:
    return v[:1].upper() + v[1:] if isinstance(v, str) else v


@register("truncate", "At most N characters", example=("abcdef", 3, "abc"))
def truncate(v: Any, n: Any = None) -> Any:
    return v[: int(n)] if isinstance(v, str) and n else v


@register(
    "replace",
    "Replace every occurrence: replace('a', 'b') or {replace: [a, b]}",
    example=("a-b", ["-", "_"], "a_b"),
)
def replace(v: Any, arg: Any = None) -> Any:
    if not isinstance(v, str) or not isinstance(arg, list | tuple) or len(arg) != 2:
        return v
    return v.replace(str(arg[0]), str(arg[1]))


@register(
    "sub",
    "Replace every match of a regular expression: sub(['[^0-9]', '']); normalising identifiers before "
    "hashing (no spaces, no punctuation, no leading zeros)",
    per_element=True,
    example=("0049 (151) 2", ["^0+|\\D", ""], "491512"),
)
def sub(v: Any, arg: Any = None) -> Any:
    if not isinstance(arg, list | tuple) or len(arg) != 2:
        raise FormatError("sub takes a list of two texts: [regular expression, replacement]")
    if not isinstance(v, str):
        return v
    try:
        rx = _key_pattern(str(arg[0]))
    except re.error as e:
        raise FormatError(f"sub: bad regular expression {arg[0]!r}: {e}") from e
    return rx.sub(str(arg[1]).replace("\\", "\\\\"), v)


@register("prefix", "Put text before the value", example=("42", "user_", "user_42"))
def prefix(v: Any, arg: Any = None) -> Any:
    return f"{'' if arg is None else arg}{to_string(v)}"


@register("suffix", "Put text after the value", example=("42", "_x", "42_x"))
def suffix(v: Any, arg: Any = None) -> Any:
    return f"{to_string(v)}{'' if arg is None else arg}"


@register(
    "split",
    "Text to a list, split at the separator (default ',') and trimmed",
    example=("a, b", None, ["a", "b"]),
)
def split(v: Any, sep: Any = None) -> Any:
    if not isinstance(v, str):
        return v
    return [p.strip() for p in v.split(sep or ",") if p.strip()]


@register("join", "A list to text joined by the separator (default ',')", example=(["a", "b"], "|", "a|b"))
def join(v: Any, sep: Any = None) -> Any:
    if not isinstance(v, list):
        return v
    return ("," if sep is None else str(sep)).join(to_string(x) for x in v if x is not None)


@register(
    "snake_case",
    "Words joined by underscores, lower case",
    example=("Order Completed", None, "order_completed"),
)
def snake_case(v: Any, _: Any = None) -> Any:
    if not isinstance(v, str):
        return v
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", v.strip())
    return re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower()


# -- numbers and booleans ---------------------------------------------------------------------------
@register(
    "number",
    "A number; numeric text is parsed ('7.5' -> 7.5); anything else is an error",
    example=("7.50", None, 7.5),
)
def to_number(v: Any, _: Any = None) -> Any:
    if isinstance(v, bool):
        raise FormatError(f"expected a number, got boolean {v}")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise FormatError(f"expected a finite number, got {v!r}")
        return v
    if isinstance(v, str):
        text = v.strip()
        try:
            f = float(text)
        except ValueError as e:
            raise FormatError(f"expected a number, got {v[:40]!r}") from e
        if not math.isfinite(f):
            raise FormatError(f"expected a finite number, got {v[:40]!r}")
        if f.is_integer() and re.fullmatch(r"[-+]?\d+", text):
            return int(text)
        return f
    raise FormatError(f"expected a number, got {type(v).__name__}")


@register("integer", "A whole number (fractions are cut toward zero)", example=("7.9", None, 7))
def to_integer(v: Any, _: Any = None) -> Any:
    return int(to_number(v))


@register("round", "Rounded to N decimals (default 0)", example=(2.345, 2, 2.35))
def round_to(v: Any, n: Any = None) -> Any:
    x = to_number(v)
    r = round(x + (0.0 if isinstance(x, int) else math.copysign(1e-12, x)), int(n or 0))
    return int(r) if not n else r


@register("multiply", "Times N", example=(2.5, 100, 250))
def multiply(v: Any, n: Any = None) -> Any:
    r = to_number(v) * to_number(n if n is not None else 1)
    return int(r) if isinstance(r, float) and r.is_integer() else r


@register(
    "fixed",
    "Text of a number with exactly N decimals (default 2), as prices are written (JavaScript's toFixed)",
    example=(14, 2, "14.00"),
)
def fixed(v: Any, n: Any = None) -> Any:
    digits = 2 if n is None else int(n)
    if not 0 <= digits <= 20:
        raise FormatError(f"fixed takes 0 to 20 decimals, not {n!r}")
    x = to_number(v)
    if isinstance(x, float) and not math.isfinite(x):
        raise FormatError(f"{v!r} is not a finite number")
    return f"{x:.{digits}f}"


@register(
    "boolean", "true/false from booleans, numbers and yes/no/true/false/1/0 text", example=("yes", None, True)
)
def to_boolean(v: Any, _: Any = None) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("true", "1", "yes", "y"):
            return True
        if s in ("false", "0", "no", "n", ""):
            return False
    raise FormatError(f"expected a boolean, got {to_string(v)[:40]!r}")


@register("not", "Logical negation of a truthy value", example=(True, None, False))
def negate(v: Any, _: Any = None) -> Any:
    return not truthy(v)


@register(
    "identifier",
    "An id: non-blank text, or a number as text; booleans and blanks are an error",
    example=(42, None, "42"),
)
def identifier(v: Any, _: Any = None) -> Any:
    if type(v) is str and v and not v[0].isspace() and not v[-1].isspace():
        return v  # the common id: non-blank text (what the checks below accept, without strip())
    if isinstance(v, bool) or v is None:
        raise FormatError(f"expected an identifier, got {v!r}")
    if isinstance(v, int | float):
        return to_string(v)
    if isinstance(v, str) and v.strip():
        return v
    raise FormatError("expected an identifier (non-blank text or a number)")


def truthy(v: Any) -> bool:
    """The spec language's truth: false, 0, '', 'false', null, missing and empty containers are false."""
    if v is None or v is False:
        return False
    if isinstance(v, str):
        return v.strip().lower() not in ("", "false", "0")
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, dict | list):
        return bool(v)
    return v is not MISSING


# -- time -------------------------------------------------------------------------------------------
def parse_time(v: Any) -> dt.datetime:
    """ISO-8601 text or epoch numbers (seconds or milliseconds, guessed by size); always timezone-aware.

    Total: years outside 1..9999 after conversion to UTC, NaN and absurd numbers are a FormatError.
    """
    if type(v) is str and len(v) < 64:  # the common case: ISO text, parsed once per distinct value
        t = _parse_text(v)
        if type(t) is str:
            raise FormatError(t)
        return t
    if isinstance(v, dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    if isinstance(v, bool):
        raise FormatError(f"expected a timestamp, got {v!r}")
    if isinstance(v, int | float):
        if not math.isfinite(v):
            raise FormatError(f"timestamp {v!r} is not a finite number")
        secs = v / 1000 if abs(v) > 1e11 else v
        try:
            return dt.datetime.fromtimestamp(secs, dt.UTC)
        except (OverflowError, OSError, ValueError) as e:
            raise FormatError(f"timestamp {v!r} is out of range") from e
    if isinstance(v, str):
        t = _parse_text(v) if len(v) < 64 else _parse_text.__wrapped__(v)
        if isinstance(t, str):
            raise FormatError(t)
        return t
    raise FormatError(f"expected a timestamp, got {type(v).__name__}")


@functools.lru_cache(maxsize=8192)
def _parse_text(v: str) -> dt.datetime | str:
    """A timestamp text's time, or the error message (cached: events of one batch share timestamps)."""
    s = v.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", s):
        try:
            return parse_time(float(s))
        except FormatError as e:
            return str(e)
    t = _parse_iso(s)
    if t is None:
        return f"expected an ISO-8601 timestamp, got {v[:40]!r}"
    try:
        t.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return f"timestamp {v[:40]!r} is out of range"
    return t


@functools.lru_cache(maxsize=4096)
def _parse_iso(s: str) -> dt.datetime | None:
    text = s.replace("Z", "+00:00").replace("z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            t = dt.datetime.strptime(s, "%a, %d %b %Y %H:%M:%S %Z")
        except ValueError:
            return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


@register(
    "iso8601",
    "ISO-8601 in UTC with milliseconds: 2024-05-01T12:00:00.000Z",
    example=(1714564800, None, "2024-05-01T12:00:00.000Z"),
)
def to_iso(v: Any, _: Any = None) -> Any:
    t = parse_time(v).astimezone(dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@register("epoch_s", "Unix time in whole seconds", example=("2024-05-01T12:00:00Z", None, 1714564800))
def to_epoch_s(v: Any, _: Any = None) -> Any:
    return int(parse_time(v).timestamp())


@register("epoch_ms", "Unix time in milliseconds", example=("2024-05-01T12:00:00.250Z", None, 1714564800250))
def to_epoch_ms(v: Any, _: Any = None) -> Any:
    return int(round(parse_time(v).timestamp() * 1000))


@register("epoch_us", "Unix time in microseconds", example=("2024-05-01T12:00:00Z", None, 1714564800000000))
def to_epoch_us(v: Any, _: Any = None) -> Any:
    return int(round(parse_time(v).timestamp() * 1_000_000))


@register(
    "date",
    "strftime pattern over the time (default %Y-%m-%d), in the time's own offset",
    example=("2024-05-01T12:00:00Z", "%Y%m%d", "20240501"),
)
def to_date(v: Any, fmt: Any = None) -> Any:
    return parse_time(v).strftime(fmt or "%Y-%m-%d")


@register(
    "utc_date",
    "strftime pattern over the time converted to UTC (default %Y-%m-%dT%H:%M:%SZ)",
    example=("2024-05-01T14:00:00+02:00", None, "2024-05-01T12:00:00Z"),
)
def to_utc_date(v: Any, fmt: Any = None) -> Any:
    return parse_time(v).astimezone(dt.UTC).strftime(fmt or "%Y-%m-%dT%H:%M:%SZ")


@register(
    "tz_offset",
    "UTC offset of an IANA time zone name as +HH:MM (at the current rules)",
    example=("Asia/Kolkata", None, "+05:30"),
)
def tz_offset(v: Any, _: Any = None) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(v, str) or not v.strip():
        raise FormatError("expected a time zone name such as Europe/Berlin")
    try:
        zone = ZoneInfo(v.strip())
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise FormatError(f"unknown time zone {v[:40]!r}") from e
    off = dt.datetime(2024, 1, 15, tzinfo=zone).utcoffset() or dt.timedelta(0)
    mins = int(off.total_seconds() // 60)
    sign = "+" if mins >= 0 else "-"
    return f"{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


# -- hashing and encodings ----------------------------------------------------------------------------
@register(
    "sha256",
    "SHA-256 hex of the text, leaving values that already are SHA-256 hex alone; sha256('always') hashes "
    "them too (for vendors whose setting says every value sent is raw)",
    per_element=True,
    example=("a@b.c", None, hashlib.sha256(b"a@b.c").hexdigest()),
)
def sha256(v: Any, mode: Any = None) -> Any:
    s = to_string(v)
    if mode is None and len(s) == 64 and _HEX64.match(s.lower()):
        return s.lower()
    if mode not in (None, "always"):
        raise FormatError(f"sha256 takes no argument or 'always', got {mode!r}")
    return hashlib.sha256(s.encode()).hexdigest()


@register(
    "md5",
    "MD5 hex of the text, leaving values that already are MD5 hex alone",
    per_element=True,
    example=("a", None, hashlib.md5(b"a").hexdigest()),
)
def md5(v: Any, _: Any = None) -> Any:
    s = to_string(v)
    if len(s) == 32 and _HEX32.match(s.lower()):
        return s.lower()
    return hashlib.md5(s.encode()).hexdigest()  # noqa: S324 - vendors specify MD5 for matching, not security


@register(
    "e164",
    "Phone number in E.164 (+4915112345678); argument: default region for national numbers",
    per_element=True,
    example=("(0151) 123 45678", "DE", "+4915112345678"),
)
def e164(v: Any, region: Any = None) -> Any:
    import phonenumbers

    text = to_string(v).strip()
    try:
        num = phonenumbers.parse(text, (region or "US") if not text.startswith("+") else None)
    except phonenumbers.NumberParseException as e:
        raise FormatError(f"not a phone number: {text[:40]!r}") from e
    if not phonenumbers.is_possible_number(num):
        raise FormatError(f"not a possible phone number: {text[:40]!r}")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


@register(
    "digits",
    "Only the digits of the text (phone numbers for hashing)",
    per_element=True,
    example=("+1 (555) 010-99", None, "155501099"),
)
def digits(v: Any, _: Any = None) -> Any:
    return re.sub(r"\D", "", to_string(v))


@register("json", "Compact JSON text of the value", example=({"a": 1}, None, '{"a":1}'))
def json_stringify(v: Any, _: Any = None) -> Any:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


@register("parse_json", "The value of JSON text (non-text values pass)", example=('{"a":1}', None, {"a": 1}))
def parse_json(v: Any, _: Any = None) -> Any:
    if not isinstance(v, str):
        return v
    try:
        return json.loads(v)
    except ValueError as e:
        raise FormatError("expected JSON text") from e


@register(
    "urlencode", "Percent-encoded for a URL path segment or query value", example=("a b/c", None, "a%20b%2Fc")
)
def urlencode(v: Any, _: Any = None) -> Any:
    s = v if type(v) is str else to_string(v)
    if s.isascii():  # the common id (or e-mail address): as quote(s, safe="") encodes it, without its
        # per-character Python loop; most ids need no escape at all, found by one C-level scan.
        if s.isalnum() or _URL_UNSAFE.search(s) is None:
            return s
        return _URL_UNSAFE.sub(_quoted, s)
    return urllib.parse.quote(s, safe="")


# The ASCII characters quote(..., safe="") escapes (all but letters, digits and _.-~), with their escapes.
_URL_UNSAFE = re.compile(r"[^A-Za-z0-9_.~-]")
_ASCII_QUOTED = {chr(c): f"%{c:02X}" for c in range(128) if _URL_UNSAFE.match(chr(c))}


def _quoted(m: re.Match[str]) -> str:
    return _ASCII_QUOTED[m.group()]


@register("base64", "Base64 of the text", example=("ab", None, "YWI="))
def to_base64(v: Any, _: Any = None) -> Any:
    return base64.b64encode(to_string(v).encode()).decode()


@register(
    "basic_user",
    "HTTP Basic credentials for a user with an empty password: base64 of 'value:'",
    example=("tok", None, "dG9rOg=="),
)
def basic_user(v: Any, _: Any = None) -> Any:
    return base64.b64encode(f"{to_string(v)}:".encode()).decode()


@register("strip_slash", "Without trailing slashes", example=("https://x.io/", None, "https://x.io"))
def strip_slash(v: Any, _: Any = None) -> Any:
    return v.rstrip("/") if isinstance(v, str) else v


# -- URLs and user agents -------------------------------------------------------------------------------
_URL_PARTS = ("scheme", "host", "host_port", "path", "query", "fragment", "origin", "domain")


@register(
    "url",
    "A part of a URL: scheme, host, host_port (the host and a port the URL gives, as a browser's "
    "location.host), domain (host without www.), path, query, fragment, origin; 'query:NAME' gives one "
    "query parameter",
    example=("https://www.x.io/a?q=1", "domain", "x.io"),
)
def url_part(v: Any, part: Any = None) -> Any:
    if not isinstance(v, str):
        raise FormatError("expected a URL")
    p = urllib.parse.urlsplit(v.strip())
    part = part or "host"
    if isinstance(part, str) and part.startswith("query:"):
        values = urllib.parse.parse_qs(p.query).get(part[6:])
        return values[0] if values else None
    if part not in _URL_PARTS:
        raise FormatError(f"unknown URL part {part!r}; use one of {', '.join(_URL_PARTS)} or query:NAME")
    if part == "origin":
        return f"{p.scheme}://{p.netloc}" if p.scheme and p.netloc else None
    if part == "host_port":
        try:
            port = p.port
        except ValueError:
            port = None
        if port is not None and (p.scheme.lower(), port) in (("http", 80), ("https", 443)):
            port = None  # a browser's location.host leaves out the scheme's default port
        return None if not p.hostname else f"{p.hostname}:{port}" if port else p.hostname
    if part == "host":
        return p.hostname
    if part == "domain":
        host = p.hostname or ""
        return host[4:] if host.startswith("www.") else host or None
    return getattr(p, part) or None


@register(
    "url_path",
    "Text made safe to append to a URL as a path (and query): it can never change the "
    "host; a missing leading '/' is added",
    example=("v1/x@evil.io?a=1", None, "/v1/x%40evil.io?a=1"),
)
def url_path(v: Any, _: Any = None) -> Any:
    text = to_string(v).strip()
    if not text:
        return ""
    path, sep, rest = text.partition("?")
    path = "/" + path.lstrip("/\\") if not text.startswith("?") else ""
    safe = urllib.parse.quote(urllib.parse.unquote(path), safe="/-._~!$&'()*+,;=:")
    query = urllib.parse.quote(rest, safe="=&-._~!$'()*+,;:/?%") if sep else ""
    return f"{safe}{sep}{query}"


_UA_PARTS = (
    "browser",
    "browser_version",
    "browser_major",
    "os",
    "os_version",
    "device",
    "device_brand",
    "device_model",
)


@functools.lru_cache(maxsize=2048)
def _ua(text: str) -> dict[str, Any]:
    from ua_parser import parse

    r = parse(text)
    ua, os_, dev = r.user_agent, r.os, r.device

    def version(x: Any) -> str | None:
        # Every component the parser found: Chrome's 77.0.3865.90 keeps its build number.
        if x is None or x.major is None:
            return None
        # The version as the user agent states it (Chrome/79.0.3945.117 -> 79.0.3945.117), stopping at
        # the first part it does not give.
        out = []
        for p in (x.major, x.minor, x.patch, getattr(x, "patch_minor", None)):
            if p is None:
                break
            out.append(p)
        return ".".join(out)

    return {
        "browser": ua.family if ua else None,
        "browser_version": version(ua),
        "browser_major": ua.major if ua else None,
        "os": os_.family if os_ else None,
        "os_version": version(os_),
        "device": dev.family if dev else None,
        "device_brand": dev.brand if dev else None,
        "device_model": dev.model if dev else None,
    }


@register(
    "user_agent",
    "One part of a parsed user agent (ua-parser): browser, browser_version (all the parts the agent "
    "states: 79.0.3945.117), browser_major, os, os_version, device, device_brand, device_model",
    example=(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "browser",
        "Firefox",
    ),
)
def user_agent(v: Any, part: Any = None) -> Any:
    if not isinstance(v, str) or not v.strip():
        return None
    part = part or "browser"
    if part not in _UA_PARTS:
        raise FormatError(f"unknown user agent part {part!r}; use one of {', '.join(_UA_PARTS)}")
    return _ua(v[:1024])[part]


# -- objects and lists ----------------------------------------------------------------------------------
def _flatten(
    prefix: str,
    v: Any,
    sep: str,
    out: dict,
    depth: int,
    indexed: bool = False,
    brackets: bool = False,
    lists: bool = True,
) -> None:
    """``indexed``: list elements as ``key[i]``, and only lists holding objects or lists are expanded;
    ``brackets``: every list element as ``key[i]``; ``lists`` false: lists are values, not expanded."""
    if depth > 64:
        raise FormatError("object nested more than 64 levels deep cannot be flattened")
    if isinstance(v, dict) and v:
        for k, x in v.items():
            key = f"{prefix}{sep}{k}" if prefix else str(k)
            _flatten(key, x, sep, out, depth + 1, indexed, brackets, lists)
    elif lists and isinstance(v, list) and v and (not indexed or any(isinstance(x, dict | list) for x in v)):
        for i, x in enumerate(v):
            key = f"{prefix}[{i}]" if indexed or brackets else f"{prefix}{sep}{i}" if prefix else str(i)
            _flatten(key, x, sep, out, depth + 1, indexed, brackets)
    else:
        out[prefix] = v


@register(
    "flatten",
    "Nested keys joined by the separator (default '.'): {a: {b: 1}} -> {a.b: 1}; flatten('.', 'brackets') "
    "writes list positions JavaScript-style, {a: [1]} -> {a[0]: 1}; flatten('.', 'json') keeps each list "
    "whole as compact JSON text and leaves out nulls and empty objects, {a: [1], b: {}} -> {a: '[1]'} "
    "(fields of a key-value store's hash, which hold text only)",
    example=({"a": {"b": 1}}, "_", {"a_b": 1}),
)
def flatten(v: Any, arg: Any = None) -> Any:
    if not isinstance(v, dict):
        return v
    sep, style = arg, None
    if isinstance(arg, list | tuple) and arg:
        sep, style = arg[0], (arg[1] if len(arg) > 1 else None)
    if style not in (None, "brackets", "json"):
        raise FormatError(f"flatten's list style is 'brackets', 'json' or left out, not {style!r}")
    out: dict[str, Any] = {}
    sep = "." if sep is None else str(sep)
    _flatten("", v, sep, out, 0, brackets=style == "brackets", lists=style != "json")
    if style == "json":
        return {
            k: json_stringify(x) if isinstance(x, list) else x
            for k, x in out.items()
            if x is not None and x != {}
        }
    return out


@register(
    "flatten_indexed",
    "Nested keys joined by the separator (default '.'), the way JavaScript paths read: a list holding "
    "objects is indexed as key[0], key[1]; a list of plain values stays a list (Klaviyo's flattened "
    "properties)",
    example=(
        {"a": {"b": 1}, "items": [{"id": 7}], "tags": ["x"]},
        None,
        {"a.b": 1, "items[0].id": 7, "tags": ["x"]},
    ),
)
def flatten_indexed(v: Any, sep: Any = None) -> Any:
    if not isinstance(v, dict):
        return v
    out: dict[str, Any] = {}
    _flatten("", v, "." if sep is None else str(sep), out, 0, indexed=True)
    return out


@register(
    "scalars",
    "An object without its object and list values (e.g. for query parameters)",
    example=({"a": 1, "b": {}, "c": []}, None, {"a": 1}),
)
def scalars(v: Any, _: Any = None) -> Any:
    if isinstance(v, dict):
        return {k: x for k, x in v.items() if not isinstance(x, dict | list)}
    return v


@register("list", "A list: lists pass, other values become a one-element list", example=("a", None, ["a"]))
def to_list(v: Any, _: Any = None) -> Any:
    return v if isinstance(v, list) else [v]


@register("first", "The first element of a list (other values pass)", example=([3, 4], None, 3))
def first(v: Any, _: Any = None) -> Any:
    if isinstance(v, list):
        return v[0] if v else None
    return v


@register(
    "chunks",
    "A list cut into lists of at most N elements, in order (one request each where a vendor caps an array)",
    example=([1, 2, 3], 2, [[1, 2], [3]]),
)
def chunks(v: Any, n: Any = None) -> Any:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise FormatError(f"chunks needs a whole number of elements of 1 or more, got {n!r}")
    if not isinstance(v, list):
        return v
    return [v[i : i + n] for i in range(0, len(v), n)]


@register("last", "The last element of a list (other values pass)", example=([3, 4], None, 4))
def last(v: Any, _: Any = None) -> Any:
    if isinstance(v, list):
        return v[-1] if v else None
    return v


@register(
    "tail",
    "At most the last N characters of text (or elements of a list): ids whose unique part is at the end",
    example=("1714550400123-abc", 3, "abc"),
)
def tail(v: Any, n: Any = None) -> Any:
    if not isinstance(v, str | list) or n is None:
        return v
    k = int(n)
    return v[-k:] if k > 0 else v[:0]


@register(
    "pairs",
    "An object as a list of {key, value} objects (for `each`); pairs('explode') gives one pair per "
    "element of a list value",
    example=({"team": ["a", "b"]}, "explode", [{"key": "team", "value": "a"}, {"key": "team", "value": "b"}]),
)
def pairs(v: Any, mode: Any = None) -> Any:
    if not isinstance(v, dict):
        return []
    if mode not in (None, "explode"):
        raise FormatError(f"pairs takes no argument or 'explode', got {mode!r}")
    out = []
    for k, x in v.items():
        if mode == "explode" and isinstance(x, list):
            out.extend({"key": k, "value": el} for el in x)
        else:
            out.append({"key": k, "value": x})
    return out


@register("length", "Number of elements (list, object) or characters (text)", example=([1, 2], None, 2))
def length(v: Any, _: Any = None) -> Any:
    return len(v) if isinstance(v, list | dict | str) else 0


@register("keys", "The keys of an object, as a list", example=({"a": 1}, None, ["a"]))
def keys(v: Any, _: Any = None) -> Any:
    return list(v) if isinstance(v, dict) else []


@register(
    "compact",
    "Without null and empty-text entries (objects and lists)",
    example=({"a": None, "b": 1, "c": ""}, None, {"b": 1}),
)
def compact(v: Any, _: Any = None) -> Any:
    if isinstance(v, dict):
        return {k: x for k, x in v.items() if x is not None and x != ""}
    if isinstance(v, list):
        return [x for x in v if x is not None and x != ""]
    return v


_EMPTY = (None, "")


@register(
    "prune",
    "Without null, empty-text, empty-object and empty-list entries (objects and lists, one level; "
    "after flatten, every level)",
    example=({"a": None, "b": 1, "c": "", "d": {}, "e": []}, None, {"b": 1}),
)
def prune(v: Any, _: Any = None) -> Any:
    if isinstance(v, dict):
        return {k: x for k, x in v.items() if not _empty(x)}
    if isinstance(v, list):
        return [x for x in v if not _empty(x)]
    return v


def _empty(x: Any) -> bool:
    t = type(x)
    if t is dict or t is list:
        return not x
    return x is None or (t is str and x == "")


@functools.lru_cache(maxsize=256)
def _key_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@register(
    "drop_keys",
    "An object without the keys matching a regular expression (searched), e.g. a vendor's reserved "
    "prefixes: drop_keys('^(ga_|google_)')",
    example=({"ga_id": 1, "plan": "pro"}, "^ga_", {"plan": "pro"}),
)
def drop_keys(v: Any, pattern: Any = None) -> Any:
    if not isinstance(v, dict) or not pattern:
        return v
    try:
        rx = _key_pattern(str(pattern))
    except re.error as e:
        raise FormatError(f"drop_keys: bad regular expression {pattern!r}: {e}") from e
    search = rx.search
    return {k: x for k, x in v.items() if not search(str(k))}


@register("object", "The value if it is an object, else an empty object", example=("x", None, {}))
def as_object(v: Any, _: Any = None) -> Any:
    return v if isinstance(v, dict) else {}


@register(
    "map",
    "Translate through a table ({map: {Male: M}}); unknown values pass",
    example=("Female", {"Female": "F"}, "F"),
)
def map_values(v: Any, table: Any = None) -> Any:
    if isinstance(table, dict) and isinstance(v, str | int | float | bool):
        key = to_string(v)
        return table.get(key, table.get(key.lower(), v))
    return v


def split_spec(spec: Any) -> tuple[str, Any]:
    """``"lower"``, ``{"truncate": 100}`` or a parsed ``("truncate", 100)`` -> (name, argument)."""
    if isinstance(spec, tuple) and len(spec) == 2:
        return spec[0], spec[1]
    if isinstance(spec, str):
        return spec, None
    if isinstance(spec, dict) and len(spec) == 1:
        return next(iter(spec.items()))
    raise ValueError(f"a format is a name or a one-key mapping, got {spec!r}")


def resolve(spec: str | dict[str, Any]) -> tuple[str, FormatFn, Any]:
    """``"lower"`` or ``{"truncate": 100}`` -> (name, function, argument)."""
    name, arg = split_spec(spec)
    if name not in FORMATS:
        close = _closest(name, FORMATS)
        hint = f"; did you mean {close!r}?" if close else ""
        raise ValueError(f"unknown format {name!r}{hint} (known: {', '.join(sorted(FORMATS))})")
    return name, FORMATS[name].fn, arg


def _closest(name: str, known: Any) -> str | None:
    import difflib

    m = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
    return m[0] if m else None
