"""Sending for one destination: a job's requests, or a batch of jobs, to an outcome per job.

Everything that can go wrong with ONE request ends as that request's (so that job's) outcome and
never escapes: a stored request that no longer parses or needs a secret the config lost, a header
HTTP cannot carry, an address the SSRF guard refuses, a vendor that answers too slowly (each request
has a total deadline, ``timeout_s``), a connection reset, or a plain bug. The worker's round is never
abandoned because of one request, so jobs already delivered in it are recorded and never sent twice.

Requests are stored sealed (``sdk.secrets``); they are unsealed here, from the destination's current
config, right before they are sent. A 429 pauses what the vendor throttled, the request's origin
(scheme, host, port), not the whole destination: jobs for a throttled origin are *deferred*
(recorded as failed until the throttle ends, without counting an attempt) while other origins flow.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from traceback import format_exc
from typing import Any

import httpx
import orjson

from pipeline import metrics
from pipeline.config import Destination
from pipeline.router import http1
from pipeline.router.guard import AddressGuard, Refused
from pipeline.router.http1 import Http1Client
from pipeline.router.limits import Throttles, TokenBucket
from sdk.classify import JobOutcome, Outcome, classify_exception
from sdk.connector import Connector
from sdk.context import TransformContext
from sdk.delivery import UnsendableRequest, rebase
from sdk.errors import SluiceError
from sdk.request import VendorRequest
from sdk.secrets import Secrets
from sdk.steps import Answer, StepRunner, needs_steps
from sdk.transports import Transport, transport_class

log = logging.getLogger("sluice.router")

_SNIPPET = 1000
# (owner job of each merged request, request to send, each merged request's own body in merge order)
Batch = tuple[list[int], VendorRequest, list[Any]]
# Raised before anything is sent, and the same every time: the request is aborted with the reason.
_BUILD_ERRORS = (
    httpx.InvalidURL,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
    ValueError,
    TypeError,
    RecursionError,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Job:
    """A delivery job as read: ``requests`` (sealed) and ``event`` are JSON text, parsed when the job
    is sent, so a payload Python cannot parse (nested too deep, say) fails that job, not the read."""

    id: int
    user: str
    requests: str | None
    event: str | None
    attempts: int
    first_attempt_at: dt.datetime | None


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # what orjson refuses (integers beyond 64 bits, ...); may still raise


@dataclass
class Result:
    """What happened to one job this time. ``deferred``: not attempted (its origin is throttled)."""

    outcome: Outcome
    status: int | None = None
    reason: str = ""
    retry_after: float | None = None
    request: dict[str, Any] | None = None
    response: str | None = None
    attempted_at: dt.datetime = field(default_factory=_now)
    deferred: bool = False
    # For a merged request whose answer named the parts that failed: one outcome per merged part.
    parts: list[JobOutcome] | None = None


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: building one loads the CA bundle (tens of ms each)."""
    return httpx.create_ssl_context()


class Pacing:
    """What the shard workers of one destination share within one process: the HTTP clients (so
    ``concurrency`` bounds the process's requests in flight, however many shards it holds), the 429
    throttles, and the token bucket. The bucket runs at ``rate × held / shards``, so the processes
    sharing a destination stay within its rate limit together."""

    def __init__(self, dest: Destination, connector: Connector, guard: AddressGuard):
        self.dest = dest
        self.guard = guard
        rps = (dest.rate_limit.requests_per_second if dest.rate_limit else None) or (
            connector.spec.rate_limit.requests_per_second
        )
        burst = (dest.rate_limit.burst if dest.rate_limit else None) or connector.spec.rate_limit.burst
        self.rate = rps
        self.bucket = TokenBucket(rps, burst) if rps else None
        self.throttles = Throttles()
        # Declared steps (token exchange, lookups): one runner per destination, so one cached token.
        self.steps = StepRunner(connector, dest.config) if connector.has_steps else None
        self.clients: asyncio.Queue[Http1Client] = asyncio.Queue()
        self._all: list[Http1Client] = []
        self._users = 0
        self.transports: dict[str, Transport] = {}

    def transport(self, name: str) -> Transport:
        """The destination's client for a non-HTTP transport (sdk/transports), made on first use."""
        t = self.transports.get(name)
        if t is None:
            t = self.transports[name] = transport_class(name)(self.dest.config)
        return t

    def set_share(self, held: int, shards: int) -> None:
        if self.bucket is not None and self.rate:
            self.bucket.rate = self.rate * max(1, held) / max(1, shards)

    def open(self) -> None:
        if self._users == 0:
            # One single-connection client per concurrency slot (see pipeline/router/http1.py).
            self._all = [Http1Client(self.guard, _tls()) for _ in range(self.dest.concurrency)]
            self.clients = asyncio.Queue()
            for c in self._all:
                self.clients.put_nowait(c)
        self._users += 1

    async def close(self) -> None:
        self._users -= 1
        if self._users == 0:
            for c in self._all:
                await c.aclose()
            self._all = []
            transports, self.transports = self.transports, {}
            for t in transports.values():
                await t.aclose()


class Sender:
    def __init__(
        self,
        dest: Destination,
        connector: Connector,
        pacing: Pacing,
        secrets: Secrets,
        observe: Callable[[VendorRequest, Any], None] | None = None,
    ):
        # ``observe`` sees every vendor answer (runtime drift telemetry); it must never raise.
        self.observe = observe
        self.dest = dest
        self.name = dest.name
        self.connector = connector
        self.pacing = pacing
        self.secrets = secrets

    # -- one job's requests -----------------------------------------------------------------------
    def requests_of(self, job: Job) -> list[VendorRequest]:
        """The job's stored requests unsealed, or, for replays, the event mapped now."""
        if job.requests is not None:
            return [VendorRequest.from_wire(r) for r in _loads(self.secrets.unseal_json(job.requests))]
        event = _loads(job.event) if job.event else {}
        if not isinstance(event, dict):
            raise ValueError("the stored event is not a JSON object")
        ctx = TransformContext.at(None, seed=str(event.get("messageId") or job.id))
        return self.connector.transform(event, self.dest.config, ctx)

    def prepare(self, job: Job) -> list[VendorRequest] | Result:
        try:
            return self.requests_of(job)
        except SluiceError as e:
            return Result(Outcome.ABORT, None, f"{e.type}: {e.message}")
        except Exception as e:  # noqa: BLE001 - a stored request that no longer parses is not retryable
            return Result(Outcome.ABORT, None, f"invalid stored request: {type(e).__name__}: {str(e)[:300]}")

    async def send_job(self, job: Job) -> Result:
        """Send the job's requests in order; the first one not delivered is the job's outcome."""
        reqs = self.prepare(job)
        if isinstance(reqs, Result):
            return reqs
        res = Result(Outcome.SUCCESS, 200, "nothing to send")
        for req in reqs:
            res = await self.send_one(req)
            if res.outcome is not Outcome.SUCCESS:
                return res
        return res

    # -- one request ------------------------------------------------------------------------------
    async def send_one(self, req: VendorRequest, parts: list[Any] | None = None) -> Result:
        """Send one request; whatever happens becomes a ``Result``, nothing is raised. ``parts`` (the
        bodies merged into ``req``) lets the connector's rules attribute a partial failure to them."""
        try:
            if self.pacing.steps is not None and needs_steps(req):
                return await self._send_stepped(self.pacing.steps, req, parts)
            return await self._send_one(req, parts)
        except Exception as e:  # noqa: BLE001 - a bug here must cost one request, not the round
            self.log_unexpected("while sending a request")
            return Result(Outcome.RETRY, None, f"unexpected error while sending: {type(e).__name__}: {e}")

    async def _send_stepped(self, steps: StepRunner, req: VendorRequest, parts: list[Any] | None) -> Result:
        """Token and lookup first (``sdk/steps.py``); results keep the request with its placeholders, so
        no token ever reaches a stored dead letter."""
        wire = req.to_wire()

        async def deliver(ready: VendorRequest) -> Result:
            res = await self._send_one(ready, parts)
            if res.request is not None:
                res.request = wire
            return res

        def fail(c: Any, step: str) -> Result:
            return Result(c.outcome, c.status or None, c.reason, c.retry_after, wire, None)

        return await steps.send(req, self._exchange, deliver, fail, lambda r: r.status)

    async def _exchange(self, req: VendorRequest) -> Answer:
        """One step request (token, lookup): guarded, paced by the pool, answered or raised."""
        if self.dest.base_url:
            req = req.model_copy(update={"url": rebase(req.url, self.dest.base_url)})
        self.pacing.guard.check_url(req.url)
        client = await self.pacing.clients.get()
        try:
            answer = await http1.send(client, req, deadline=self.dest.timeout_s)
        finally:
            self.pacing.clients.put_nowait(client)
        metrics.REQUESTS_SENT.labels(self.name, str(answer.status)).inc()
        return Answer(answer.status, dict(answer.headers), answer.body)

    def log_unexpected(self, what: str) -> None:
        """Log the exception being handled with its traceback, every secret value in it redacted."""
        trace = self.secrets.redact_text(format_exc())
        log.error("router[%s]: unexpected error %s\n%s", self.name, what, trace)

    async def _send_one(self, req: VendorRequest, parts: list[Any] | None = None) -> Result:
        if req.transport != "http":
            return await self._send_transport(req, parts)
        if self.dest.base_url:
            req = req.model_copy(update={"url": rebase(req.url, self.dest.base_url)})
        wire = req.to_wire()
        try:
            self.pacing.guard.check_url(req.url)
        except Refused as e:
            return Result(Outcome.ABORT, None, str(e), request=wire)
        throttle = self.pacing.throttles.of(req.url)
        if throttle.active:
            wait = throttle.remaining
            return Result(
                Outcome.THROTTLE,
                None,
                f"not sent: the vendor throttled {req.url.split('?')[0]!r}'s host; next try in {wait:.0f} s",
                retry_after=wait + random.uniform(0, min(5.0, 0.1 * wait)),  # spread the restart
                deferred=True,
            )
        if self.pacing.bucket:
            await self.pacing.bucket.take()
        attempted = _now()
        client = await self.pacing.clients.get()
        try:
            for quick_retry in (True, False):
                try:
                    answer = await http1.send(client, req, deadline=self.dest.timeout_s)
                    break
                except (UnsendableRequest, Refused) as e:
                    return Result(Outcome.ABORT, None, str(e), request=wire, attempted_at=attempted)
                except (httpx.ConnectError, httpx.RemoteProtocolError) as e:
                    # A refused connection or a keep-alive connection closed under us is usually
                    # momentary (a full listen queue, a server recycling connections): one quick
                    # retry spares the user's whole queue a full backoff period.
                    metrics.REQUESTS_SENT.labels(self.name, "error").inc()
                    if quick_retry:
                        await asyncio.sleep(0.05 + random.random() * 0.1)
                        continue
                    c = classify_exception(e)
                    return Result(c.outcome, c.status, c.reason, request=wire, attempted_at=attempted)
                except _BUILD_ERRORS as e:
                    metrics.REQUESTS_SENT.labels(self.name, "error").inc()
                    return Result(
                        Outcome.ABORT,
                        None,
                        f"the request cannot be sent: {type(e).__name__}: {e}",
                        request=wire,
                        attempted_at=attempted,
                    )
                except (httpx.HTTPError, OSError) as e:
                    metrics.REQUESTS_SENT.labels(self.name, "error").inc()
                    c = classify_exception(e)
                    return Result(c.outcome, c.status, c.reason, request=wire, attempted_at=attempted)
        finally:
            self.pacing.clients.put_nowait(client)
        return self._classified(req, answer, parts, wire, attempted, throttle)

    async def _send_transport(self, req: VendorRequest, parts: list[Any] | None) -> Result:
        """A non-HTTP request (``req.transport``): its transport writes ``req.raw``; its answer is
        classified like an HTTP answer, a connection failure like a network error (retried)."""
        wire = req.to_wire()
        try:
            transport = self.pacing.transport(req.transport)
            transport.check(req.raw)
            for host, port in transport.addresses():
                await self.pacing.guard.addresses(host, port)
        except (UnsendableRequest, Refused, KeyError, ValueError) as e:
            reason = self.secrets.redact_text(f"the request cannot be sent: {e}")
            return Result(Outcome.ABORT, None, reason, request=wire)
        except OSError as e:
            c = classify_exception(e)
            return Result(c.outcome, c.status, self.secrets.redact_text(c.reason), request=wire)
        if self.pacing.bucket:
            await self.pacing.bucket.take()
        attempted = _now()
        slot = await self.pacing.clients.get()  # the destination's concurrency bound, as for HTTP
        try:
            answer = await transport.send(req.raw, deadline=self.dest.timeout_s)
        except OSError as e:
            metrics.REQUESTS_SENT.labels(self.name, "error").inc()
            c = classify_exception(e)
            reason = self.secrets.redact_text(c.reason)
            return Result(c.outcome, c.status, reason, request=wire, attempted_at=attempted)
        finally:
            self.pacing.clients.put_nowait(slot)
        return self._classified(req, answer, parts, wire, attempted, None)

    def _classified(
        self, req: VendorRequest, answer: Any, parts: list[Any] | None, wire: dict[str, Any],
        attempted: dt.datetime, throttle: Any,
    ) -> Result:  # fmt: skip
        metrics.REQUESTS_SENT.labels(self.name, str(answer.status)).inc()
        if self.observe is not None:
            self.observe(req, answer)
        c = self.connector.classify(
            answer.status,
            answer.headers,
            answer.body,
            request=req,
            jobs=parts if parts and len(parts) > 1 else None,
        )
        if c.outcome is Outcome.THROTTLE and throttle is not None:
            throttle.hit(c.retry_after)
        elif c.outcome is Outcome.SUCCESS and c.jobs is None:
            if throttle is not None:
                throttle.ok()
            return Result(c.outcome, c.status, c.reason, c.retry_after, None, None, attempted)
        body = answer.body[:_SNIPPET].decode("utf-8", "replace")
        return Result(c.outcome, c.status, c.reason, c.retry_after, wire, body, attempted, parts=c.jobs)

    # -- batches ----------------------------------------------------------------------------------
    def _merge(self, items: list[tuple[int, VendorRequest]]) -> tuple[list[Batch], dict[int, Result]]:
        """Batches of ``(owner job id, request)`` items, as (owner of each merged request, request to
        send). If the connector's batching fails, the jobs are halved until the ones that make it
        fail are found; those get the error as their outcome and the others are batched as usual."""
        try:
            groups = self.connector.batch([r for _, r in items], self.dest.config) if items else []
            return [
                ([items[i][0] for i in idx], req, [items[i][1].json_body for i in idx]) for idx, req in groups
            ], {}
        except Exception as e:  # noqa: BLE001 - see the docstring
            jobs = list(dict.fromkeys(owner for owner, _ in items))
            if len(jobs) == 1:
                reason = f"cannot batch this event's requests: {type(e).__name__}: {e}"
                return [], {jobs[0]: Result(Outcome.ABORT, None, reason)}
            first = set(jobs[: len(jobs) // 2])
            g1, f1 = self._merge([it for it in items if it[0] in first])
            g2, f2 = self._merge([it for it in items if it[0] not in first])
            return g1 + g2, {**f1, **f2}

    def _batches(self, jobs: list[Job]) -> tuple[list[Batch], dict[int, Result], dict[int, int]]:
        """(batches to send, the outcomes already known, how many requests each job has)."""
        results: dict[int, Result] = {}
        parts: dict[int, int] = {}
        items: list[tuple[int, VendorRequest]] = []
        for j in jobs:
            reqs = self.prepare(j)
            if isinstance(reqs, Result):
                results[j.id] = reqs
                continue
            if not reqs:
                results[j.id] = Result(Outcome.SUCCESS, 200, "nothing to send")
            parts[j.id] = len(reqs)
            items.extend((j.id, r) for r in reqs)
        groups, failed = self._merge(items)
        results.update(failed)
        return groups, results, parts

    async def send_batch(
        self, jobs: list[Job], ordering: bool, stop: Callable[[], bool] = lambda: False
    ) -> dict[int, Result]:
        """Merge the jobs' requests per the connector's batching and send them. A batch's outcome
        applies to its jobs; a job has a result only once every part of it is confirmed or one part
        failed. With ``ordering``, batches go out one after another and a user's first failure
        leaves their later jobs unsent (no result: they stay pending)."""
        # Parsing, unsealing, merging and encoding a batch of thousands of jobs is tens of milliseconds
        # of pure computation: on a thread, so the event loop (other destinations' requests, the
        # processor) keeps turning meanwhile; the work is on the jobs' own data only.
        groups, results, parts = await asyncio.to_thread(self._batches, jobs)
        user_of = {j.id: j.user for j in jobs}
        confirmed: dict[int, int] = {}
        stopped_users: set[str] = set()

        def fail(job_ids: list[int], res: Result) -> None:
            if res.outcome is Outcome.ABORT:
                for i in job_ids:
                    results[i] = res
                return
            # Retry/throttle: the first job of each user carries the failure, the rest stay pending.
            for i in job_ids:
                u = user_of[i]
                if not ordering or u not in stopped_users:
                    results[i] = res
                    stopped_users.add(u)

        async def send_group(owners: list[int], req: VendorRequest, bodies: list[Any]) -> None:
            job_ids = list(dict.fromkeys(owners))
            if ordering and any(user_of[i] in stopped_users for i in job_ids):
                return  # an earlier batch of one of these users failed: leave them pending
            if any(i in results and results[i].outcome is not Outcome.SUCCESS for i in job_ids):
                return
            res = await self.send_one(req, bodies)
            if res.parts is not None and len(res.parts) == len(owners):
                # The vendor named the parts it rejected: each job gets its own parts' verdict (the
                # worst of them), so one bad event is dead-lettered and its batch-mates are delivered.
                worst: dict[int, JobOutcome] = {}
                for owner, part in zip(owners, res.parts, strict=True):
                    if part.outcome is Outcome.SUCCESS:
                        confirmed[owner] = confirmed.get(owner, 0) + 1
                    elif owner not in worst or _rank(part.outcome) > _rank(worst[owner].outcome):
                        worst[owner] = part
                for outcome in (Outcome.ABORT, Outcome.THROTTLE, Outcome.RETRY):
                    named = [i for i in job_ids if i in worst and worst[i].outcome is outcome]
                    if named:
                        part = worst[named[0]]
                        fail(named, _replace(res, outcome, f"{res.reason}: {part.reason}".strip(": ")))
                for i in job_ids:
                    if i not in worst and confirmed.get(i, 0) >= parts[i]:
                        results[i] = Result(
                            Outcome.SUCCESS, res.status, "delivered", attempted_at=res.attempted_at
                        )
                return
            if res.outcome is Outcome.SUCCESS:
                for i in owners:
                    confirmed[i] = confirmed.get(i, 0) + 1
                for i in job_ids:
                    if confirmed[i] >= parts[i]:
                        results[i] = res
                return
            fail(job_ids, res)

        if ordering:
            for owners, req, bodies in groups:
                if stop():
                    break
                await send_group(owners, req, bodies)
        else:
            await asyncio.gather(*(send_group(o, r, b) for o, r, b in groups))
        # Jobs whose every part was not confirmed are left pending (not in results).
        return {
            i: r
            for i, r in results.items()
            if r.outcome is not Outcome.SUCCESS or confirmed.get(i, 0) >= parts.get(i, 0)
        }


def _rank(outcome: Outcome) -> int:
    """How bad a part's outcome is for its job: a dead letter beats a retry beats a throttle."""
    return {Outcome.SUCCESS: 0, Outcome.THROTTLE: 1, Outcome.RETRY: 2, Outcome.ABORT: 3}.get(outcome, 2)


def _replace(res: Result, outcome: Outcome, reason: str) -> Result:
    return Result(
        outcome,
        res.status,
        reason,
        res.retry_after,
        res.request,
        res.response,
        res.attempted_at,
        res.deferred,
    )
