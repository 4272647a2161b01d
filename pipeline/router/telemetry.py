"""Runtime drift signals: vendor answers a connector was never certified against.

The router hands every vendor answer to ``observe``. What the connector's cassettes recorded is the
baseline; anything else is a *signal*, counted per destination:

* ``deprecation`` / ``sunset`` / ``warning``: the vendor sends that header (with a value not recorded);
* ``status``: a status the cassettes never recorded for that endpoint;
* ``shape``: a JSON body whose shape (fields and types, values ignored) the cassettes never recorded for
  that endpoint and status, with the fields added/removed against the closest recorded shape.

Signals are Prometheus counters (``sluice_vendor_signals_total``) at once, and rows in ``vendor_signals``
(first seen, last seen, count, one example with secrets redacted) written in one statement per flush,
off the delivery path. ``sluice drift runtime`` lists them. A connector without cassettes has no
baseline: only the headers are watched for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import re
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter

from pipeline.queue.db import q
from sdk.drift.cassettes import cassettes_folder, read_cassettes
from sdk.drift.shapes import body_shape, shape_diff, shape_key
from sdk.request import VendorRequest

log = logging.getLogger("sluice.telemetry")

SIGNAL_HEADERS = ("deprecation", "sunset", "warning")
SIGNALS = Counter(
    "sluice_vendor_signals_total",
    "Vendor answers the destination's connector was not certified against",
    ["destination", "kind"],
)
MAX_PENDING = 1000  # distinct signals buffered between flushes; beyond that only counters move
_EXAMPLE_CHARS = 2000
_SENSITIVE = re.compile(r"(?i)(authori[sz]ation|api[-_]?key|secret|token|password|signature|credential)")


def flush_interval_s() -> float:
    return float(os.environ.get("SLUICE_TELEMETRY_FLUSH_S", "5"))


@dataclass
class Baseline:
    """What the cassettes recorded, per endpoint: statuses, body shapes per status, signal headers."""

    known: bool
    statuses: dict[str, set[int]] = field(default_factory=dict)
    shapes: dict[tuple[str, int], dict[str, dict[str, set[str]] | None]] = field(default_factory=dict)
    headers: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, connector: Any) -> Baseline:
        folder = getattr(connector, "folder", None)
        exchanges = read_cassettes(cassettes_folder(folder)) if folder is not None else []
        b = cls(known=bool(exchanges))
        for ex in exchanges:
            if ex.transport != "http":  # a non-HTTP exchange: the spec's endpoint on that transport
                ep = next((n for n, e in connector.spec.endpoints.items() if e.transport == ex.transport), "")
            else:
                ep = connector.endpoint_matching(ex.method, ex.uri) or ""
            b.statuses.setdefault(ep, set()).add(ex.status)
            sh = body_shape(ex.response_body) if ex.response_body.strip() else {}
            b.shapes.setdefault((ep, ex.status), {})[shape_key(sh)] = sh
            for k, v in ex.response_headers.items():
                if k.lower() in SIGNAL_HEADERS:
                    b.headers.setdefault(k.lower(), set()).add(v)
        return b


@dataclass
class _Signal:
    integration: str
    destination: str
    kind: str
    signal: str
    detail: str
    example: dict[str, Any]
    count: int = 0
    first: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    last: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


class Recorder:
    """Signals of one process, buffered and written to one database pool."""

    def __init__(self, pool: Any):
        self.pool = pool
        self.baselines: dict[int, Baseline] = {}
        self.pending: dict[tuple[str, str, str, str], _Signal] = {}
        self._known_bodies: OrderedDict[tuple[str, int, bytes], str | None] = OrderedDict()
        self._endpoints: dict[tuple[int, str, str], str] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None

    def baseline(self, connector: Any) -> Baseline:
        b = self.baselines.get(id(connector))
        if b is None:
            try:
                b = Baseline.of(connector)
            except Exception as e:  # noqa: BLE001 - unreadable cassettes must not stop delivery
                log.warning(
                    "telemetry: cannot read the cassettes of %s (%s); watching headers only",
                    connector.name,
                    e,
                )
                b = Baseline(known=False)
            self.baselines[id(connector)] = b
        return b

    # -- observing --------------------------------------------------------------------------------
    def observe(
        self, destination: str, connector: Any, secrets: Any, request: VendorRequest, answer: Any
    ) -> None:
        base = self.baseline(connector)
        endpoint = self._endpoint(connector, request)
        headers = {k.lower(): v for k, v in (answer.headers or {}).items()}
        for name in SIGNAL_HEADERS:
            value = headers.get(name)
            if value is not None and value not in base.headers.get(name, set()):
                self._signal(
                    connector,
                    destination,
                    name,
                    f"{name.title()}: {value[:120]}",
                    f"{endpoint or request.url}: the vendor sent {name.title()}: {value[:200]}",
                    request,
                    answer,
                    secrets,
                )
        if not base.known:
            return
        status = int(answer.status)
        if status not in base.statuses.get(endpoint, set()):
            self._signal(
                connector,
                destination,
                "status",
                f"{endpoint} {status}",
                f"{endpoint}: status {status}, never recorded (recorded: "
                f"{', '.join(map(str, sorted(base.statuses.get(endpoint, set())))) or 'none'})",
                request,
                answer,
                secrets,
            )
            return
        key, shape = self._shape(endpoint, status, answer.body or b"")
        recorded = base.shapes.get((endpoint, status), {})
        if key in recorded:
            return
        signal = f"{endpoint} {status} {key}"
        if (connector.name, destination, "shape", signal) in self.pending:
            self._signal(connector, destination, "shape", signal, "", request, answer, secrets)
            return  # described when first seen
        detail = f"{endpoint} {status}: an answer shaped unlike any recorded one"
        if shape is not None:
            near = [s for s in recorded.values() if s is not None]
            if near:
                best = min(near, key=lambda s: sum(len(v) for v in shape_diff(s, shape).values()))
                d = shape_diff(best, shape)
                bits = (
                    [f"+{p}" for p in d["added"]]
                    + [f"-{p}" for p in d["removed"]]
                    + [f"~{p} {'/'.join(a)}->{'/'.join(b)}" for p, a, b in d["retyped"]]
                )
                detail += " (" + ", ".join(bits[:10]) + ")"
        self._signal(connector, destination, "shape", signal, detail, request, answer, secrets)

    def _endpoint(self, connector: Any, request: VendorRequest) -> str:
        """Which endpoint ``request`` went to (URL-template matching, remembered per URL)."""
        if request.endpoint and request.endpoint in connector.endpoints:
            return request.endpoint
        key = (id(connector), request.method, request.url.split("?", 1)[0])
        hit = self._endpoints.get(key)
        if hit is None:
            hit = self._endpoints[key] = (
                connector.endpoint_of(request)
                or connector.endpoint_matching(request.method, request.url)
                or ""
            )
            if len(self._endpoints) > 1024:
                self._endpoints.pop(next(iter(self._endpoints)))
        return hit

    def _shape(self, endpoint: str, status: int, body: bytes) -> tuple[str, dict[str, set[str]] | None]:
        """The body's shape key; identical small bodies (the common case) are parsed once."""
        cache_key = (endpoint, status, body) if len(body) <= 1024 else None
        if cache_key is not None and cache_key in self._known_bodies:
            self._known_bodies.move_to_end(cache_key)
            return self._known_bodies[cache_key] or "text", None
        shape = body_shape(body) if body.strip() else {}
        key = shape_key(shape)
        if cache_key is not None:
            self._known_bodies[cache_key] = key
            if len(self._known_bodies) > 256:
                self._known_bodies.popitem(last=False)
        return key, shape

    def _signal(
        self,
        connector: Any,
        destination: str,
        kind: str,
        signal: str,
        detail: str,
        request: VendorRequest,
        answer: Any,
        secrets: Any,
    ) -> None:
        SIGNALS.labels(destination, kind).inc()
        k = (connector.name, destination, kind, signal)
        s = self.pending.get(k)
        if s is None:
            if len(self.pending) >= MAX_PENDING:
                return
            s = _Signal(connector.name, destination, kind, signal, detail, _example(request, answer, secrets))
            self.pending[k] = s
        s.count += 1
        s.last = dt.datetime.now(dt.UTC)
        self._schedule()

    # -- writing ----------------------------------------------------------------------------------
    def _schedule(self) -> None:
        if self._flush_handle is not None or self.pool is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._flush_handle = loop.call_later(flush_interval_s(), self._start_flush)

    def _start_flush(self) -> None:
        self._flush_handle = None
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self.flush())

    async def flush(self) -> int:
        """Write buffered signals (one statement); on failure they stay buffered for the next try."""
        if not self.pending:
            return 0
        batch, self.pending = self.pending, {}
        rows = list(batch.values())
        params = {
            "integrations": [r.integration for r in rows],
            "destinations": [r.destination for r in rows],
            "kinds": [r.kind for r in rows],
            "signals": [r.signal for r in rows],
            "details": [r.detail for r in rows],
            "examples": [json.dumps(r.example) for r in rows],
            "counts": [r.count for r in rows],
            "firsts": [r.first for r in rows],
            "lasts": [r.last for r in rows],
        }
        try:
            async with self.pool.connection() as conn:
                await conn.execute(q("vendor_signals_upsert"), params)
        except Exception as e:  # noqa: BLE001 - telemetry never disturbs delivery
            log.warning("telemetry: cannot record %d vendor signal(s) yet: %s", len(rows), e)
            for k, r in batch.items():
                cur = self.pending.get(k)
                if cur is None:
                    self.pending[k] = r
                else:
                    cur.count += r.count
                    cur.first = min(cur.first, r.first)
            self._schedule()
            return 0
        return len(rows)


def _example(request: VendorRequest, answer: Any, secrets: Any) -> dict[str, Any]:
    body = (answer.body or b"")[:_EXAMPLE_CHARS].decode("utf-8", "replace")
    example = {
        "request": {"method": request.method, "url": request.url.split("?", 1)[0]},
        "status": int(answer.status),
        "headers": {
            k: v
            for k, v in (answer.headers or {}).items()
            if k.lower() in (*SIGNAL_HEADERS, "content-type") and not _SENSITIVE.search(k)
        },
        "body": body,
    }
    if hasattr(secrets, "redact"):
        return secrets.redact(example)
    text = json.dumps(example)
    for s in sorted(set(secrets), key=len, reverse=True):
        if len(s) >= 4:
            text = text.replace(json.dumps(s)[1:-1], "***")
    return json.loads(text)


_recorders: weakref.WeakKeyDictionary[Any, Recorder] = weakref.WeakKeyDictionary()


def recorder_for(pool: Any) -> Recorder:
    """The process's recorder for ``pool`` (one per pipeline; gone with its pool)."""
    r = _recorders.get(pool)
    if r is None:
        r = _recorders[pool] = Recorder(pool)
    return r


def observe(worker: Any, request: VendorRequest, answer: Any) -> None:
    """The router's one call: record what ``answer`` to ``request`` says that certification did not."""
    try:
        recorder_for(worker.pool).observe(worker.name, worker.connector, worker.secrets, request, answer)
    except Exception:  # noqa: BLE001 - telemetry never disturbs delivery
        log.exception("telemetry: could not observe an answer for %s", getattr(worker, "name", "?"))


async def flush_all() -> None:
    for r in list(_recorders.values()):
        await r.flush()
