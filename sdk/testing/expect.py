"""Vendor-authored expectations: what a success fixture must make the connector send.

A fixture's ``expect`` block is written by a person from the vendor's API documentation, never
copied from the connector, so the contract suite checks the connector against something other
than itself::

    "expect": {
      "status": "accepted",                      # "draft" until a person accepted it (`--accept`)
      "doc": {"url": "https://vendor/docs/page", "section": "Request body > events"},
      "known_mismatch": "why today's output differs (docs/oracle-mismatches.md#id)",   # optional
      "requests": [
        {"method": "POST", "url": "https://api.vendor.com/v2/events",
         "query": {"strict": "1"},                 # parsed pairs; a list value is a repeated key
         "headers": {"Content-Type": "application/json",   # only headers that matter
                     "Authorization": {"basic": ["user", "password"]}},
         "json": {...}                             # or "form": {...}, or "text": "...", or none
        }
      ]
    }

A non-HTTP destination (an endpoint with ``transport:``, e.g. Redis) expects its operations instead::

      "requests": [{"transport": "redis", "raw": {"key": "user:42", "fields": {"plan": "pro"}}}]

compared with the request's ``to_wire()`` (transport by name, ``raw`` semantically, as JSON bodies are).

Comparison: method case-insensitively; scheme, host and path exactly; query and form bodies as
parsed (key, value) pairs; headers named in the expectation (case-insensitive names; ``null``
means "must be absent"); JSON bodies semantically (key order and 1 vs 1.0 do not matter, true vs
1 does). In a form body a non-string expected value is compared with the field's JSON-parsed
text. Where the vendor leaves a value to the sender (an id it only needs to be unique), the
expectation may say ``{"$type": "string"}`` or ``{"$regex": "..."}`` instead of a literal.

A draft (``sluice cassettes build`` writes one for a fixture that has none, from the connector's
output) is refused by the contract suite until ``sluice cassettes build NAME --accept`` accepts it;
an accepted expectation is never rewritten by a build.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sdk.request import VendorRequest

ACCEPTED = "accepted"
DRAFT = "draft"
BODY_KEYS = ("json", "form", "text")
MATCHERS = ("$type", "$regex")
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}
DRAFT_DOC = {"url": "TODO: the vendor documentation page this request follows", "section": "TODO"}


@dataclass
class Expectation:
    status: str
    requests: list[dict[str, Any]]
    doc: dict[str, Any] = field(default_factory=dict)
    known_mismatch: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED


def parse_expectation(raw: Any, where: str) -> Expectation | None:
    """The fixture's ``expect`` block, with what is wrong with it in ``problems``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return Expectation(DRAFT, [], problems=[f'{where}: "expect" must be an object'])
    exp = Expectation(
        status=str(raw.get("status") or ""),
        requests=raw.get("requests") if isinstance(raw.get("requests"), list) else [],
        doc=raw.get("doc") if isinstance(raw.get("doc"), dict) else {},
        known_mismatch=raw.get("known_mismatch") or None,
    )
    if exp.status not in (ACCEPTED, DRAFT):
        exp.problems.append(f'{where}: expect.status must be "accepted" or "draft"')
    if not isinstance(raw.get("requests"), list) or not raw["requests"]:
        exp.problems.append(f"{where}: expect.requests must list the vendor request(s) this event causes")
    for i, r in enumerate(exp.requests):
        w = f"{where}: expect.requests[{i}]"
        if not isinstance(r, dict):
            exp.problems.append(f"{w} must be an object with method, url and a body")
            continue
        if "transport" in r:
            if not isinstance(r.get("transport"), str) or "raw" not in r:
                exp.problems.append(f"{w}: a non-HTTP operation gives transport (its name) and raw")
        elif not isinstance(r.get("method"), str) or not isinstance(r.get("url"), str):
            exp.problems.append(f"{w}: give method and url (or transport and raw)")
        if sum(k in r for k in BODY_KEYS) > 1:
            exp.problems.append(f"{w}: give at most one of json, form, text")
        doc = r.get("doc") if isinstance(r.get("doc"), dict) else exp.doc
        if exp.accepted and not _doc_ok(doc):
            exp.problems.append(
                f"{w}: name the vendor documentation it follows (doc.url and doc.section, on the request "
                "or on expect)"
            )
    return exp


def _doc_ok(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    url, section = doc.get("url"), doc.get("section")
    # a vendor page, or (for a destination whose contract is ours, like the webhook) the repo's README
    return (
        isinstance(url, str)
        and (url.startswith(("https://", "http://")) or url.startswith("integrations/"))
        and "TODO" not in url
        and isinstance(section, str)
        and bool(section.strip())
        and "TODO" not in section
    )


# --------------------------------------------------------------------------------------------------
# What the connector sent, in comparable form
# --------------------------------------------------------------------------------------------------
def _form_value(v: str) -> Any:
    try:
        return json.loads(v) if v[:1] in "[{" else v
    except ValueError:
        return v


def actual_request(req: VendorRequest) -> dict[str, Any]:
    """``req`` as it goes on the wire, in the expectation's shape (query and form as parsed pairs)."""
    from sdk.testing.cases import TRANSPORT_HEADERS, wire_request

    if req.transport != "http":
        return {"transport": req.transport, "raw": req.raw}
    w = wire_request(req)
    parts = urlsplit(w["uri"])
    out: dict[str, Any] = {
        "method": w["method"],
        "url": f"{parts.scheme}://{parts.netloc}{parts.path}",
    }
    query = _pairs_dict(parse_qsl(parts.query, keep_blank_values=True))
    if query:
        out["query"] = query
    out["headers"] = {k: v for k, v in w["headers"].items() if k.lower() not in TRANSPORT_HEADERS}
    kind = req.body_kind
    if kind == "json":
        out["json"] = json.loads(w["body"])
    elif kind == "form":
        pairs = parse_qsl(w["body"], keep_blank_values=True)
        out["form"] = {
            k: (_form_value(v) if isinstance(v, str) else v) for k, v in _pairs_dict(pairs).items()
        }
    elif kind == "text":
        out["text"] = w["body"]
    return out


def _pairs_dict(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            out[k] = (out[k] if isinstance(out[k], list) else [out[k]]) + [v]
        else:
            out[k] = v
    return out


def delivered(connector: Any, requests: list[VendorRequest], config: dict[str, Any]) -> list[VendorRequest]:
    """Each request as the router would put it on the wire on its own: the endpoint's batch envelope
    applied (Customer.io's ``{"batch": [...]}``), but not merged with the case's other requests, so an
    expectation does not depend on which jobs the router happens to claim together."""
    out: list[VendorRequest] = []
    for r in requests:
        out += [b for _, b in connector.batch([r], config)]
    return out


def draft_from(requests: list[VendorRequest]) -> dict[str, Any]:
    """A draft ``expect`` block from the connector's output, for a person to check against the docs."""
    drafted = []
    for r in requests:
        a = actual_request(r)
        if "transport" in a:
            drafted.append(a)
            continue
        a["form"] = {k: v for k, v in a["form"].items()} if "form" in a else None
        drafted.append({k: v for k, v in a.items() if v is not None})
    return {"status": DRAFT, "doc": dict(DRAFT_DOC), "requests": drafted}


# --------------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------------
def _matcher(expected: Any) -> tuple[str, Any] | None:
    if isinstance(expected, dict) and len(expected) == 1:
        ((k, v),) = expected.items()
        if k in MATCHERS:
            return k, v
    return None


def json_diff(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Where ``actual`` differs from ``expected`` (semantic JSON comparison), one line per difference."""
    m = _matcher(expected)
    if m is not None:
        kind, arg = m
        if kind == "$type":
            ok = isinstance(actual, _TYPES.get(arg, ())) and not (
                arg in ("integer", "number") and isinstance(actual, bool)
            )
            return [] if ok else [f"{path}: expected a {arg}, got {json.dumps(actual)[:120]}"]
        ok = isinstance(actual, str) and re.fullmatch(arg, actual) is not None
        return [] if ok else [f"{path}: expected text matching {arg!r}, got {json.dumps(actual)[:120]}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {json.dumps(actual)[:120]}"]
        out = []
        for k in expected:
            if k not in actual:
                out.append(f"{path}.{k}: missing (expected {json.dumps(expected[k])[:120]})")
            else:
                out += json_diff(expected[k], actual[k], f"{path}.{k}")
        out += [
            f"{path}.{k}: not expected (got {json.dumps(actual[k])[:120]})"
            for k in actual
            if k not in expected
        ]
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: expected an array, got {json.dumps(actual)[:120]}"]
        out = []
        if len(expected) != len(actual):
            out.append(f"{path}: expected {len(expected)} element(s), got {len(actual)}")
        for i, (e, a) in enumerate(zip(expected, actual, strict=False)):
            out += json_diff(e, a, f"{path}[{i}]")
        return out
    same = (
        (type(expected) is type(actual) if isinstance(expected, bool) or isinstance(actual, bool) else True)
        and expected == actual
        and (isinstance(expected, (int, float)) == isinstance(actual, (int, float)))
    )
    return [] if same else [f"{path}: expected {json.dumps(expected)[:120]}, got {json.dumps(actual)[:120]}"]


def _header_value(v: Any) -> Any:
    if isinstance(v, dict) and "basic" in v and isinstance(v["basic"], list) and len(v["basic"]) == 2:
        user, pw = (str(x) for x in v["basic"])
        return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
    return v


def _pairs(expected: Any) -> dict[str, Any]:
    return expected if isinstance(expected, dict) else {}


def request_diff(expected: dict[str, Any], req: VendorRequest) -> list[str]:
    """Every difference between one expected request and what the connector produced."""
    act = actual_request(req)
    out: list[str] = []
    if "transport" in expected or "transport" in act:
        want, got = expected.get("transport", "http"), act.get("transport", "http")
        if want != got:
            return [f"transport: expected {want}, got {got}"]
        return [f"raw {d}" for d in json_diff(expected.get("raw"), act["raw"])]
    if str(expected.get("method", "")).upper() != act["method"].upper():
        out.append(f"method: expected {expected.get('method')}, got {act['method']}")
    e_url = urlsplit(str(expected.get("url", "")))
    e_query = dict(_pairs_dict(parse_qsl(e_url.query, keep_blank_values=True)))
    e_query.update({k: v for k, v in _pairs(expected.get("query")).items()})
    base = f"{e_url.scheme}://{e_url.netloc}{e_url.path}"
    if base != act["url"]:
        out.append(f"url: expected {base}, got {act['url']}")
    out += [f"query {d[1:]}" for d in json_diff(e_query, act.get("query", {}))]
    got_headers = {k.lower(): v for k, v in act["headers"].items()}
    for name, want in _pairs(expected.get("headers")).items():
        have = got_headers.get(name.lower())
        want = _header_value(want)
        if want is None and have is not None:
            out.append(f"header {name}: must be absent, got {have!r}")
        elif want is not None and have != want:
            out.append(f"header {name}: expected {want!r}, got {have!r}")
    kinds = [k for k in BODY_KEYS if k in expected]
    e_kind = kinds[0] if kinds else None
    a_kind = next((k for k in BODY_KEYS if k in act), None)
    if e_kind != a_kind:
        out.append(f"body: expected {e_kind or 'no body'}, got {a_kind or 'no body'}")
    elif e_kind == "json":
        out += [f"json {d}" for d in json_diff(expected["json"], act["json"])]
    elif e_kind == "form":
        out += [f"form {d[1:]}" for d in json_diff(_pairs(expected["form"]), act["form"])]
    elif e_kind == "text" and expected["text"] != act["text"]:
        out.append(f"text: expected {expected['text']!r:.200}, got {act['text']!r:.200}")
    return out


def expectation_diff(exp: Expectation, requests: list[VendorRequest]) -> list[str]:
    """Differences between the expected requests and the produced ones (in order)."""
    out: list[str] = []
    if len(exp.requests) != len(requests):
        out.append(f"expected {len(exp.requests)} request(s), the connector produced {len(requests)}")
    for i, (e, r) in enumerate(zip(exp.requests, requests, strict=False)):
        out += [f"request {i}: {d}" for d in request_diff(e, r)]
    return out


# --------------------------------------------------------------------------------------------------
# Writing expectations into fixture files (drafts, acceptance)
# --------------------------------------------------------------------------------------------------
def read_fixture(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def write_fixture(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def set_draft(path: Path, requests: list[VendorRequest]) -> bool:
    """Write a draft expectation into a fixture that has none (or refresh a draft); never touches an
    accepted one. Returns whether the file changed."""
    data = read_fixture(path)
    current = data.get("expect")
    if isinstance(current, dict) and current.get("status") == ACCEPTED:
        return False
    draft = draft_from(requests)
    if isinstance(current, dict):
        # keep what the person already wrote about the source while it is a draft
        if isinstance(current.get("doc"), dict):
            draft["doc"] = current["doc"]
        if current.get("requests") == draft["requests"] and current.get("status") == DRAFT:
            return False
    data["expect"] = draft
    write_fixture(path, data)
    return True


def accept(path: Path, requests: list[VendorRequest]) -> tuple[bool, list[str]]:
    """Accept a fixture's draft: returns (accepted?, the differences between draft and current output).

    The draft may have been corrected by hand from the docs; what is accepted is the draft as written,
    and the differences shown are the places where the connector disagrees with it.
    """
    data = read_fixture(path)
    raw = data.get("expect")
    exp = parse_expectation(raw, path.name)
    if exp is None or exp.accepted:
        return False, []
    diff = expectation_diff(exp, requests)
    raw["status"] = ACCEPTED
    ok = parse_expectation(raw, path.name)
    if ok is not None and ok.problems:
        raw["status"] = DRAFT
        return False, ok.problems
    data["expect"] = raw
    write_fixture(path, data)
    return True, diff
