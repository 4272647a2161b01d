"""Turn a vendor's HTTP answer into what the router should do with it.

Defaults follow common vendor practice: 2xx success; 408, 429 and 5xx retry
(429 as a throttle, honouring Retry-After); any other 4xx aborts, because
resending the same payload cannot succeed. A spec adds body rules for vendors
that answer 200 with an error inside, or 400 for a transient condition.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Outcome(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"
    THROTTLE = "throttle"
    ABORT = "abort"


class Classification(BaseModel):
    outcome: Outcome
    status: int
    reason: str
    retry_after: float | None = None

    @property
    def is_final(self) -> bool:
        return self.outcome in (Outcome.SUCCESS, Outcome.ABORT)


class ResponseMatch(BaseModel):
    """Conditions of one rule; every condition given must hold."""

    model_config = ConfigDict(extra="forbid")

    status: list[int] | None = None
    status_class: str | None = Field(default=None, pattern=r"^[1-5]xx$")
    body_contains: str | None = None
    body_regex: str | None = None
    body_path: str | None = Field(default=None, description="dotted path into a JSON body")
    equals: Any = None
    present: bool | None = None


class ResponseRule(BaseModel):
    """``when`` the response matches, the router treats it as ``outcome`` with ``reason``."""

    model_config = ConfigDict(extra="forbid")

    when: ResponseMatch
    outcome: Outcome
    reason: str | None = None


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


def _lookup(body: Any, path: str) -> tuple[bool, Any]:
    cur = body
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return False, None
    return True, cur


def _matches(m: ResponseMatch, status: int, text: str, parsed: Any) -> bool:
    if m.status is not None and status not in m.status:
        return False
    if m.status_class is not None and str(status)[0] != m.status_class[0]:
        return False
    if m.body_contains is not None and m.body_contains not in text:
        return False
    if m.body_regex is not None and not re.search(m.body_regex, text):
        return False
    if m.body_path is not None:
        found, value = _lookup(parsed, m.body_path)
        if m.present is not None and found != m.present:
            return False
        if m.equals is not None and (not found or value != m.equals):
            return False
        if m.present is None and m.equals is None and not found:
            return False
    return True


def default_outcome(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status == 429:
        return Outcome.THROTTLE
    if status == 408 or status >= 500:
        return Outcome.RETRY
    return Outcome.ABORT


def classify_response(
    status: int,
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    rules: list[ResponseRule] | None = None,
) -> Classification:
    """Classify one vendor response; spec rules first, then the defaults."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    parsed: Any = None
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    retry_after = parse_retry_after(headers.get("retry-after"))
    snippet = text[:300]
    for rule in rules or []:
        if _matches(rule.when, status, text, parsed):
            reason = rule.reason or f"vendor answered {status}: {snippet}"
            return Classification(outcome=rule.outcome, status=status, reason=reason, retry_after=retry_after)
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
