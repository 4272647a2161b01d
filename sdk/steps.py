"""Declared steps, run right before a request is sent: an OAuth token exchange and lookups.

Why a runner and not code in a mapper: CRMs (Salesforce, HubSpot, Marketo, Pardot) want a token
before any write and often a lookup (find the record by email) before choosing create or update.
Mapping stays pure and offline: the spec declares the steps (``auth.type: oauth_token`` and endpoints
with ``lookup`` / ``found``), a mapped request carries ``${auth.<field>}`` and ``${lookup}``
placeholders and its lookup request (``steps``), and this module fills them in at send time.

Transport-neutral: the caller gives ``exchange(request) -> Answer`` (one HTTP round trip, may raise),
``deliver(request) -> R`` (its own send-and-classify path) and ``fail(classification, step) -> R``, so
``sdk`` never imports the pipeline. Token and lookup answers are classified by the spec's
``responses`` rules like any other answer; the token is cached per runner (one per destination) until
it expires, and a 401 drops it, fetches a new one and sends the request once more.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from sdk.classify import Classification, Outcome, classify_exception, iter_path
from sdk.request import VendorRequest

R = TypeVar("R")
_PLACEHOLDER = re.compile(r"\$\{(auth\.[A-Za-z_]\w*|lookup)\}")
_MARGIN_S = 30.0  # renew a token this long before it expires


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Token:
    values: dict[str, str]  # access_token and the declared fields, by placeholder name
    expires_at: float


class StepError(Exception):
    """A step that did not give what the request needs; carries its classification."""

    def __init__(self, step: str, c: Classification):
        super().__init__(c.reason)
        self.step, self.classification = step, c


def needs_steps(req: VendorRequest) -> bool:
    return bool(req.steps) or "${" in req.url or any("${" in v for v in req.headers.values())


def _first(body: Any, path: str) -> Any:
    return next(iter(iter_path(body, path)), None)


class StepRunner:
    """The steps of one destination (one connector and config): holds its token between requests."""

    def __init__(self, connector: Any, config: dict[str, Any], clock: Callable[[], float] = time.monotonic):
        self.connector = connector
        self.config = config
        self.clock = clock
        self.token: Token | None = None
        self.fetches = 0  # token requests made (tests and metrics read it)
        self._lock = asyncio.Lock()
        self._secrets = connector.spec.secret_values(config)

    def redact(self, text: str) -> str:
        for s in self._secrets:
            text = text.replace(s, "[redacted]")
        return text

    # -- token ------------------------------------------------------------------------------------
    async def _token(self, exchange: Callable[[VendorRequest], Awaitable[Answer]]) -> Token:
        async with self._lock:  # concurrent senders share one token request
            t = self.token
            if t is not None and self.clock() < t.expires_at:
                return t
            ex = self.connector.spec.auth.exchange
            req = self.connector.token_request(self.config)
            self.fetches += 1
            body = await self._call("token", req, exchange)
            token = _first(body, ex.token_path)
            if not isinstance(token, str) or not token:
                raise StepError("token", _abort(f"the token answer has no {ex.token_path!r}"))
            values = {"access_token": token}
            for name, path in ex.fields.items():
                v = _first(body, path)
                if not isinstance(v, str) or not v:
                    # The vendor's answer is incomplete: not the event's fault, so worth a retry.
                    c = Classification(outcome=Outcome.RETRY, status=200, reason=f"no {path!r} in it")
                    raise StepError("token", c)
                values[name] = v.rstrip("/")
            ttl = _first(body, ex.expires_in_path)
            ttl = float(ttl) if isinstance(ttl, int | float) and ttl > 0 else float(ex.ttl_seconds)
            self.token = Token(values, self.clock() + max(1.0, ttl - _MARGIN_S))
            return self.token

    def invalidate(self, token: Token) -> None:
        if self.token is token:
            self.token = None

    # -- one call ---------------------------------------------------------------------------------
    async def _call(
        self, step: str, req: VendorRequest, exchange: Callable[[VendorRequest], Awaitable[Answer]]
    ) -> Any:
        try:
            ans = await exchange(req)
        except Exception as e:  # noqa: BLE001 - network failures are classified, never raised
            raise StepError(step, classify_exception(e)) from e
        if ans.status == 401 and step == "lookup":
            raise _Expired()
        c = self.connector.classify(ans.status, ans.headers, ans.body, request=req)
        if c.outcome is not Outcome.SUCCESS:
            raise StepError(step, c)
        try:
            return json.loads(ans.body or b"null")
        except ValueError:
            raise StepError(step, _abort("the answer is not JSON")) from None

    # -- a request --------------------------------------------------------------------------------
    async def send(
        self,
        req: VendorRequest,
        exchange: Callable[[VendorRequest], Awaitable[Answer]],
        deliver: Callable[[VendorRequest], Awaitable[R]],
        fail: Callable[[Classification, str], R],
        status_of: Callable[[R], int | None],
    ) -> R:
        """Run ``req``'s steps, deliver it, and on a 401 renew the token and deliver it once more."""
        for attempt in (0, 1):
            token: Token | None = None
            try:
                if self.connector.spec.auth.exchange is not None:
                    token = await self._token(exchange)
                ready = await self._resolve(req, token, exchange)
            except _Expired:
                if token is not None and attempt == 0:
                    self.invalidate(token)
                    continue
                return fail(_abort("the vendor refused a fresh token (401)"), "lookup")
            except StepError as e:
                c = e.classification
                reason = self.redact(f"{e.step} step failed: {c.reason}")
                return fail(Classification(outcome=c.outcome, status=c.status, reason=reason,
                                           retry_after=c.retry_after), e.step)  # fmt: skip
            res = await deliver(ready)
            if status_of(res) == 401 and token is not None and attempt == 0:
                self.invalidate(token)
                continue
            return res
        raise AssertionError("unreachable")  # pragma: no cover

    async def _resolve(
        self, req: VendorRequest, token: Token | None, exchange: Callable[[VendorRequest], Awaitable[Answer]]
    ) -> VendorRequest:
        auth = token.values if token else {}
        steps = req.steps or {}
        found = None
        look = steps.get("lookup")
        if look:
            lreq = fill(VendorRequest.from_wire(look["request"]), auth, None)
            body = await self._call("lookup", lreq, exchange)
            v = _first(body, look["take"])
            found = None if v in (None, "", [], {}) else str(v)
        if found is not None and steps.get("found"):
            req = VendorRequest.from_wire(steps["found"])
        out = fill(req, auth, found)
        return out.model_copy(update={"steps": None})


class _Expired(Exception):
    """A lookup answered 401: the token expired under us."""


def _abort(reason: str) -> Classification:
    return Classification(outcome=Outcome.ABORT, status=0, reason=reason)


def probe(req: VendorRequest) -> VendorRequest:
    """``req`` with its placeholders filled by stand-ins (an https instance URL, a token, an id), for
    checks of a config that must not reach the vendor (e.g. the pipeline's start-up URL checks)."""
    names = {m.group(1) for t in (req.url, *req.headers.values()) for m in _PLACEHOLDER.finditer(t)}
    auth = {n.split(".", 1)[1]: "https://instance.invalid" for n in names if n.startswith("auth.")}
    auth["access_token"] = "probe-token"
    return fill(req, auth, "probe-id")


def fill(req: VendorRequest, auth: dict[str, str], lookup: str | None) -> VendorRequest:
    """``req`` with its ``${auth.x}`` and ``${lookup}`` placeholders replaced (URL, headers, params)."""

    def sub(text: str, in_path: bool) -> str:
        def one(m: re.Match[str]) -> str:
            key = m.group(1)
            if key == "lookup":
                if lookup is None:
                    raise StepError("lookup", _abort("the request needs a lookup value but none was found"))
                return quote(lookup, safe="") if in_path else lookup
            name = key.split(".", 1)[1]
            if name not in auth:
                raise StepError("token", _abort(f"the request needs ${{{key}}}, which no step provides"))
            return auth[name]

        return _PLACEHOLDER.sub(one, text) if "${" in text else text

    return req.model_copy(
        update={
            "url": sub(req.url, True),
            "headers": {k: sub(v, False) for k, v in req.headers.items()},
            "params": {k: sub(v, False) if isinstance(v, str) else v for k, v in req.params.items()},
        }
    )


def resolve_offline(
    connector: Any, config: dict[str, Any], req: VendorRequest, answers: dict[str, Any] | None
) -> list[tuple[VendorRequest, dict[str, Any] | None]]:
    """What ``req`` becomes on the wire, given documented answers for its steps instead of a network
    (``{"token": {"status", "body"}, "lookup": {...}}``, as fixtures and ``sluice transform --steps``
    give them): ``[(token request, its answer), (lookup request, its answer), (the write, None)]``.
    Without answers, only the write, its placeholders filled with stand-ins (``probe``). A step whose
    answer is a failure ends the list there (the write is not sent)."""
    if not answers:
        return [(probe(req), None)] if needs_steps(req) else [(req, None)]
    out: list[tuple[VendorRequest, dict[str, Any] | None]] = []

    async def exchange(r: VendorRequest) -> Answer:
        ep = connector.spec.endpoints.get(r.endpoint or "")
        step = "lookup" if ep is not None and ep.lookup is not None else "token"
        a = answers.get(step) or {"status": 200, "body": {}}
        out.append((r, a))
        body = a.get("body")
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return Answer(int(a.get("status", 200)), dict(a.get("headers") or {}), raw)

    async def deliver(r: VendorRequest) -> VendorRequest:
        out.append((r, None))
        return r

    runner = StepRunner(connector, config)
    asyncio.run(runner.send(req, exchange, deliver, lambda c, step: req, lambda r: None))
    return out
