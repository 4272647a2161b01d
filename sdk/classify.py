"""Turn a vendor's HTTP answer into what the router should do with it, per request and per job.

Defaults follow common vendor practice: 2xx success; 408, 429 and 5xx retry
(429 as a throttle, honouring Retry-After); any other 4xx aborts, because
resending the same payload cannot succeed. A spec adds rules (``responses:``)
for what a vendor documents beyond that: a 200 whose body says it failed, a
400 for a transient condition, per-user back-pressure, and *partial batch
failures*, where the body names which items of a merged request were rejected.

Per-job outcomes: a merged request carries several queue jobs. When a rule has
``per_job`` and the answer names rejected items (by index into a request
array), ``Classification.jobs`` holds one ``JobOutcome`` per job, in job
order, so the router can dead-letter the rejected jobs and mark the rest
delivered (or retry them). Which items belong to which job is worked out from
the per-job request bodies when the caller has them (``jobs=[body, ...]``), or
from the job count alone when that is unambiguous (one job; or as many items
as jobs).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ROOT = "$"


class Outcome(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    THROTTLE = "throttle"
    ABORT = "abort"


class JobOutcome(BaseModel):
    """What happened to one job of a (possibly merged) request."""

    outcome: Outcome
    reason: str


class Classification(BaseModel):
    """The router's instruction for one vendor answer.

    ``outcome`` is the request-level verdict. ``jobs`` is set only when the vendor reported a partial
    batch failure that could be attributed to jobs: then it has exactly one entry per job, in job order,
    and it (not ``outcome``) says what to do with each job.
    """

    outcome: Outcome
    status: int
    reason: str
    retry_after: float | None = None
    jobs: list[JobOutcome] | None = None

    @property
    def is_final(self) -> bool:
        return self.outcome in (Outcome.SUCCESS, Outcome.ABORT)

    def job_outcomes(self, n_jobs: int) -> list[JobOutcome]:
        """One outcome per job: the per-job list when there is one, else the request outcome for all."""
        if self.jobs is not None and len(self.jobs) == n_jobs:
            return list(self.jobs)
        return [JobOutcome(outcome=self.outcome, reason=self.reason) for _ in range(n_jobs)]


class BodyCondition(BaseModel):
    """One test on a JSON response body. ``path`` is dotted; ``*`` matches every key or element and
    ``$`` is the whole body. The condition holds if any value at the path passes every test given."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="dotted path into the JSON body; * every key or element, $ the body")
    equals: Any = Field(default=None, description="the value equals this")
    present: bool | None = None
    nonempty: bool | None = Field(default=None, description="a non-empty list, object or string (or not)")
    regex: str | None = Field(default=None, description="the value, as text, matches this regex")
    one_of: list[Any] | None = None


class ResponseMatch(BaseModel):
    """Conditions of one rule; every condition given must hold."""

    model_config = ConfigDict(extra="forbid")

    status: list[int] | None = None
    status_class: str | None = Field(default=None, pattern=r"^[1-5]xx$")
    body_contains: str | None = None
    body_regex: str | None = None
    body_path: str | None = Field(default=None, description="dotted path into a JSON body (shorthand)")
    equals: Any = None
    present: bool | None = None
    body: list[BodyCondition] = Field(default_factory=list, description="JSON body conditions, all must hold")
    batch: bool | None = Field(
        default=None, description="true: the request carried more than one job; false: exactly one"
    )

    def status_only(self) -> bool:
        """True when the rule looks at nothing but the status (used to show vendor quirks in docs)."""
        return (
            self.body_contains is None
            and self.body_regex is None
            and self.body_path is None
            and not self.body
            and self.batch is None
        )


class PerJob(BaseModel):
    """Where a vendor's answer names the rejected items of a batch, and what that means per job.

    ``failed`` lists response paths whose values are item indices, or objects holding one under
    ``index`` (Braze ``errors[].index``, Customer.io ``errors[].batch_index``, Mixpanel
    ``failed_records[].index``); nested lists are flattened (Amplitude
    ``events_with_invalid_fields.<field>: [3, 4]``). Indices refer to the request array at ``items``
    (a dotted body path; omitted: a JSON-array body), or to the array an element names under
    ``array`` (Braze ``input_array``). ``by_value`` is for vendors that name rejected items by a value
    instead (Iterable's bulk answers list ``invalidEmails``, ``failedUpdates.notFoundUserIds``, ...):
    each request item at ``items`` whose field holds a listed value is a failed item.
    """

    model_config = ConfigDict(extra="forbid")

    failed: list[str] = Field(
        default_factory=list, description="response paths whose values name the failed items by index"
    )
    by_value: dict[str, str] = Field(
        default_factory=dict,
        description="response path -> item field: the answer lists rejected items by a value of theirs "
        "(Iterable's invalidEmails: emails); every request item whose field holds a listed value failed",
    )
    index: str | None = None
    array: str | None = None
    message: list[str] = Field(default_factory=list, description="keys of an element that explain it")
    items: str | None = None
    failed_outcome: Outcome = Outcome.ABORT
    others: Outcome | None = Field(default=None, description="jobs not named; default: the rule's outcome")
    wrapped: bool = Field(
        default=False,
        description="each job's own body is one element of the request array (an envelope added when the "
        "router sends it, like Customer.io's {batch: [...]}), rather than holding its own array",
    )


class ResponseRule(BaseModel):
    """``when`` the response matches, the router treats it as ``outcome`` with ``reason``."""

    model_config = ConfigDict(extra="forbid")

    when: ResponseMatch
    outcome: Outcome
    reason: str | None = None
    reason_path: list[str] = Field(
        default_factory=list, description="body paths whose first value is appended to the reason"
    )
    per_job: PerJob | None = None


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Retry-After in seconds, from either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


# --------------------------------------------------------------------------------------------------
# JSON paths
# --------------------------------------------------------------------------------------------------
def iter_path(body: Any, path: str) -> Iterator[Any]:
    """Every value at ``path`` (``a.b``, ``a.*.c``, ``a.0``, ``$``) in a parsed JSON body."""
    if path in ("", ROOT):
        yield body
        return
    nodes = [body]
    for part in path.split("."):
        nxt: list[Any] = []
        for node in nodes:
            if part == "*":
                if isinstance(node, dict):
                    nxt.extend(node.values())
                elif isinstance(node, list):
                    nxt.extend(node)
            elif isinstance(node, dict) and part in node:
                nxt.append(node[part])
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                nxt.append(node[int(part)])
        nodes = nxt
    yield from nodes


def _lookup(body: Any, path: str) -> tuple[bool, Any]:
    for v in iter_path(body, path):
        return True, v
    return False, None


def _nonempty(v: Any) -> bool:
    return isinstance(v, (list, dict, str)) and len(v) > 0


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _condition(c: BodyCondition, parsed: Any) -> bool:
    values = list(iter_path(parsed, c.path))
    if c.present is not None and bool(values) != c.present:
        return False
    tests = c.equals is not None or c.nonempty is not None or c.regex is not None or c.one_of is not None
    if not tests:
        return c.present is not None or bool(values)
    if c.nonempty is False and not values:
        return True
    for v in values:
        if c.equals is not None and not _json_equal(v, c.equals):
            continue
        if c.nonempty is not None and _nonempty(v) != c.nonempty:
            continue
        if c.one_of is not None and not any(_json_equal(v, x) for x in c.one_of):
            continue
        if c.regex is not None:
            text = v if isinstance(v, str) else json.dumps(v)
            if not re.search(c.regex, text):
                continue
        return True
    return False


def _matches(m: ResponseMatch, status: int, text: str, parsed: Any, n_jobs: int | None) -> bool:
    if m.status is not None and status not in m.status:
        return False
    if m.status_class is not None and str(status)[0] != m.status_class[0]:
        return False
    if m.batch is not None and (n_jobs is None or (n_jobs > 1) != m.batch):
        return False
    if m.body_contains is not None and m.body_contains not in text:
        return False
    if m.body_regex is not None and not re.search(m.body_regex, text):
        return False
    if m.body_path is not None:
        found, value = _lookup(parsed, m.body_path)
        if m.present is not None and found != m.present:
            return False
        if m.equals is not None and (not found or not _json_equal(value, m.equals)):
            return False
        if m.present is None and m.equals is None and not found:
            return False
    return all(_condition(c, parsed) for c in m.body)


def default_outcome(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status == 429:
        return Outcome.THROTTLE
    if status == 408 or status >= 500:
        return Outcome.RETRY
    return Outcome.ABORT


# --------------------------------------------------------------------------------------------------
# Per-job attribution
# --------------------------------------------------------------------------------------------------
JobsArg = int | list[Any] | None


def _n_jobs(jobs: JobsArg) -> int | None:
    if isinstance(jobs, bool):
        return None
    if isinstance(jobs, int):
        return jobs if jobs > 0 else None
    if isinstance(jobs, list):
        return len(jobs) or None
    return None


def _array(body: Any, path: str | None) -> list[Any] | None:
    if path is None:
        return body if isinstance(body, list) else None
    found, v = _lookup(body, path)
    return v if found and isinstance(v, list) else None


def _owners(request_body: Any, jobs: JobsArg, path: str | None, wrapped: bool = False) -> list[int] | None:
    """Job index of each element of the request array at ``path``, or None when it cannot be told.

    With the jobs' own request bodies (``jobs`` a list, in merge order) each job owns as many consecutive
    elements as its body has at ``path`` (one, for a ``wrapped`` body); with only a job count, the split
    is known when there is one job or exactly one element per job.
    """
    n = _n_jobs(jobs)
    if n is None:
        return None
    if isinstance(jobs, list):
        owners: list[int] = []
        for j, job in enumerate(jobs):
            if wrapped:
                owners.append(j)
                continue
            part = _array(_request_json(job), path)
            owners.extend([j] * (len(part) if part is not None else 0))
        merged = _array(request_body, path)
        return owners if merged is None or len(merged) == len(owners) else None
    merged = _array(request_body, path)
    if merged is None:
        return None
    if n == 1:
        return [0] * len(merged)
    if len(merged) == n:
        return list(range(n))
    return None


def _failed_by_value(pj: PerJob, parsed: Any, request_body: Any) -> list[tuple[str | None, int, str]]:
    """(array, index, message) of every request item whose field holds a value the answer lists."""
    items = _array(request_body, pj.items) if pj.by_value else None
    if not items:
        return []
    out: list[tuple[str | None, int, str]] = []
    for path, item_field in pj.by_value.items():
        listed: set[str] = set()
        for v in iter_path(parsed, path):
            for x in v if isinstance(v, list) else [v]:
                if isinstance(x, str | int) and not isinstance(x, bool):
                    listed.add(str(x))
        if not listed:
            continue
        for i, item in enumerate(items):
            v = item.get(item_field) if isinstance(item, dict) else None
            if v is not None and not isinstance(v, dict | list) and str(v) in listed:
                out.append((pj.items, i, f"{path}: {v}"))
    return out


def _failed_items(pj: PerJob, parsed: Any) -> list[tuple[str | None, int, str]]:
    """(array, index, message) of every rejected item the answer names."""
    out: list[tuple[str | None, int, str]] = []

    def take(v: Any, where: str) -> None:
        if isinstance(v, bool):
            return
        if isinstance(v, int):
            out.append((pj.items, v, where))
        elif isinstance(v, list):
            for x in v:
                take(x, where)
        elif isinstance(v, dict) and pj.index is not None:
            idx = v.get(pj.index)
            if isinstance(idx, int) and not isinstance(idx, bool):
                arr = v.get(pj.array) if pj.array else pj.items
                msg = "; ".join(str(v[k]) for k in pj.message if v.get(k) not in (None, ""))
                out.append((arr if isinstance(arr, str) or arr is None else None, idx, msg or where))

    for path in pj.failed:
        for value in iter_path(parsed, path):
            take(value, path.replace(".*", ""))
    return out


def _per_job(
    pj: PerJob, rule_outcome: Outcome, reason: str, parsed: Any, request_body: Any, jobs: JobsArg
) -> list[JobOutcome] | None:
    n = _n_jobs(jobs)
    if n is None or request_body is None:
        return None
    others = pj.others or rule_outcome
    result = [JobOutcome(outcome=others, reason=reason) for _ in range(n)]
    owner_cache: dict[str | None, list[int] | None] = {}
    for array, idx, msg in _failed_items(pj, parsed) + _failed_by_value(pj, parsed, request_body):
        if array not in owner_cache:
            owner_cache[array] = _owners(request_body, jobs, array, pj.wrapped)
        owners = owner_cache[array]
        if owners is None:
            return None  # the answer names items we cannot attribute: no per-job split
        if 0 <= idx < len(owners):
            where = f"{array}[{idx}]" if array else f"item {idx}"
            result[owners[idx]] = JobOutcome(
                outcome=pj.failed_outcome, reason=f"vendor rejected {where}: {msg}"[:300]
            )
    return result


# --------------------------------------------------------------------------------------------------
def _parse_body(body: bytes | str | Any) -> tuple[str, Any]:
    if isinstance(body, bytes):
        text = body.decode("utf-8", "replace")
    elif isinstance(body, str) or body is None:
        text = body or ""
    else:  # an already-parsed JSON value
        return json.dumps(body, separators=(",", ":")), body
    try:
        return text, (json.loads(text) if text.strip() else None)
    except ValueError:
        return text, None


def _request_json(request: Any) -> Any:
    """The JSON (or form) body of a request given as a VendorRequest, a wire dict, or a bare body."""
    if request is None:
        return None
    for attr in ("json_body", "form"):
        v = getattr(request, attr, None)
        if v is not None:
            return v
    if isinstance(request, dict) and any(k in request for k in ("json", "form", "method", "url")):
        return request.get("json", request.get("form", request.get("body")))
    return request


def classify_response(
    status: int,
    headers: dict[str, str] | None = None,
    body: bytes | str | Any = None,
    rules: list[ResponseRule] | None = None,
    *,
    request: Any = None,
    jobs: JobsArg = None,
) -> Classification:
    """Classify one vendor response; spec rules first (in order), then the defaults.

    ``request`` (the merged request as sent: a ``VendorRequest``, its wire dict or its body) and
    ``jobs`` (the number of jobs merged into it, or their own request bodies in merge order) let
    ``per_job`` rules attribute a partial failure to jobs; without them the answer is request-level.
    """
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    text, parsed = _parse_body(body)
    retry_after = parse_retry_after(headers.get("retry-after"))
    snippet = text[:300]
    n_jobs = _n_jobs(jobs)
    for rule in rules or []:
        if not _matches(rule.when, status, text, parsed, n_jobs):
            continue
        reason = rule.reason or f"vendor answered {status}: {snippet}"
        for path in rule.reason_path:
            found, v = _lookup(parsed, path)
            if found and v not in (None, "", [], {}):
                reason = f"{reason}: {v if isinstance(v, str) else json.dumps(v)}"[:400]
                break
        per_job = None
        outcome = rule.outcome
        if rule.per_job is not None:
            per_job = _per_job(rule.per_job, outcome, reason, parsed, _request_json(request), jobs)
            if per_job and len({j.outcome for j in per_job}) == 1:
                outcome = per_job[0].outcome  # every job alike: that is the request's outcome too
                if outcome is not rule.outcome:
                    reason = per_job[0].reason
        return Classification(
            outcome=outcome, status=status, reason=reason, retry_after=retry_after, jobs=per_job
        )
    outcome = default_outcome(status)
    if outcome is Outcome.SUCCESS:
        reason = f"vendor accepted with {status}"
    elif outcome is Outcome.THROTTLE:
        reason = f"vendor throttled with {status}; back off and retry"
    elif outcome is Outcome.RETRY:
        reason = f"vendor answered {status} (transient): {snippet}"
    else:
        reason = f"vendor rejected with {status}; retrying cannot help: {snippet}"
    return Classification(outcome=outcome, status=status, reason=reason, retry_after=retry_after)


def classify_exception(exc: BaseException) -> Classification:
    """Network-level failures (timeouts, resets, DNS) are always worth a retry."""
    name = type(exc).__name__
    return Classification(outcome=Outcome.RETRY, status=599, reason=f"network error {name}: {exc}"[:300])
