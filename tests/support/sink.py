"""A vendor stand-in: a real HTTP server on loopback that records what the pipeline delivers.

Why real HTTP: the router's isolation, retries, ordering and connection handling are only proven against a
socket that really refuses, delays or fails. The sink runs in a background thread of the test process so
tests can change its behaviour mid-run (``sink.respond(500, seconds=60)``) and assert on what arrived.

Every request is recorded as an *attempt*; those answered with 2xx are also recorded as *deliveries*.
Bodies are parsed as JSON; a JSON array (a batch) counts as several events.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

Matcher = Callable[[str, Any], bool]  # (path, parsed json body) -> does the rule apply?


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"


@dataclass
class Received:
    """One HTTP request as the sink saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int
    at: float  # time.monotonic()

    def events(self) -> list[Any]:
        return list(self.body) if isinstance(self.body, list) else [self.body]


@dataclass
class Rule:
    status: int
    match: Matcher | None = None
    until: float | None = None  # time.monotonic() deadline; None = until cleared
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    times: int | None = None  # answer this way to the first `times` matching requests only

    def applies(self, path: str, body: Any, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        if self.times is not None and self.times <= 0:
            return False
        return self.match is None or bool(self.match(path, body))


class Sink:
    """Thread-safe recording HTTP server. Use as a context manager or call ``start()``/``stop()``.

    Why asyncio and not ``http.server``: a thread-per-connection server stalls on the GIL once the
    router opens dozens of keep-alive connections (measured: ~240 req/s with 32 connections), which would
    make the sink, not the pipeline, the bottleneck. One event loop in a background thread serves
    thousands of requests per second and still lets tests change behaviour from the test thread.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self.attempts: list[Received] = []
        self.deliveries: list[Received] = []
        self._cond = threading.Condition(self._lock)
        self._host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(512)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._writers: set[asyncio.StreamWriter] = set()

    # ---- HTTP ------------------------------------------------------------------------------------------
    async def _serve_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().title()] = value.strip()
                if "chunked" in headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while True:
                        size = int((await reader.readline()).strip().split(b";")[0] or b"0", 16)
                        data = await reader.readexactly(size + 2)
                        if size == 0:
                            break
                        chunks.append(data[:-2])
                    raw = b"".join(chunks)
                else:
                    length = int(headers.get("Content-Length") or 0)
                    raw = await reader.readexactly(length) if length else b""
                status, extra, payload = await self._answer(method, target, headers, raw)
                head = [
                    f"HTTP/1.1 {status} {_reason(status)}",
                    "Content-Type: application/json",
                    f"Content-Length: {len(payload)}",
                ]
                head += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
                await writer.drain()
                if headers.get("Connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if (headers.get("Content-Encoding") or "").lower() == "gzip":
            raw = gzip.decompress(raw)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = target.split("?", 1)[0]
        rule = self._rule_for(path, body)
        status = rule.status if rule else 200
        if rule and rule.delay_s:
            await asyncio.sleep(rule.delay_s)
        self._record(Received(method, target, headers, body, status, time.monotonic()))
        payload = (rule.body if rule else '{"ok":true}').encode()
        return status, (rule.headers if rule else {}), payload

    # ---- lifecycle -------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            self._server = await asyncio.start_server(self._serve_conn, sock=self._sock)

        loop.run_until_complete(boot())
        self._ready.set()
        loop.run_forever()
        loop.close()

    def start(self) -> Sink:
        self._thread = threading.Thread(target=self._run, name="sink", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.transport.abort()  # open keep-alive connections end; their handlers return quietly
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if others:
                _, still = await asyncio.wait(others, timeout=1)
                for t in still:  # e.g. a handler inside a delay_s sleep
                    t.cancel()
                if still:
                    await asyncio.wait(still, timeout=1)

        fut = asyncio.run_coroutine_threadsafe(shutdown(), loop)
        try:
            fut.result(5)
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._sock.close()

    def __enter__(self) -> Sink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- behaviour -------------------------------------------------------------------------------------
    def respond(
        self,
        status: int,
        *,
        match: Matcher | None = None,
        seconds: float | None = None,
        times: int | None = None,
        delay_s: float = 0.0,
        headers: dict[str, str] | None = None,
        body: str = '{"error":"injected by test sink"}',
    ) -> Rule:
        """Answer ``status`` to matching requests (all if no ``match``) for ``seconds`` (forever if None).

        ``times`` limits the rule to the first N matching requests: unlike a time window, it cannot
        expire before a slow-starting pipeline sends anything, so tests that need a failure get one.

        ``delay_s`` makes the sink hang that long before answering (a slow vendor). Later rules win.
        """
        until = time.monotonic() + seconds if seconds is not None else None
        rule = Rule(status, match, until, delay_s, dict(headers or {}), body, times)
        with self._lock:
            self._rules.insert(0, rule)
        return rule

    def clear(self, rule: Rule | None = None) -> None:
        """Remove one rule, or all rules: the sink answers 200 again."""
        with self._lock:
            if rule is None:
                self._rules.clear()
            elif rule in self._rules:
                self._rules.remove(rule)

    def _rule_for(self, path: str, body: Any) -> Rule | None:
        now = time.monotonic()
        with self._lock:
            rules = list(self._rules)
        for r in rules:
            with self._lock:
                if r.applies(path, body, now):
                    if r.times is not None:
                        r.times -= 1
                    return r
        return None

    def _record(self, rec: Received) -> None:
        with self._cond:
            self.attempts.append(rec)
            if 200 <= rec.status < 300:
                self.deliveries.append(rec)
            self._cond.notify_all()

    # ---- observations ----------------------------------------------------------------------------------
    def delivered_events(self, path: str | None = None) -> list[Any]:
        """Events answered with 2xx, in arrival order (optionally only those sent to ``path``)."""
        with self._lock:
            recs = list(self.deliveries)
        return [e for r in recs if path is None or r.path.split("?", 1)[0] == path for e in r.events()]

    def delivered_count(self, path: str | None = None) -> int:
        return len(self.delivered_events(path))

    def attempt_count(self, path: str | None = None) -> int:
        with self._lock:
            return sum(len(r.events()) for r in self.attempts if path is None or r.path.startswith(path))

    def delivery_times(self, path: str | None = None) -> list[float]:
        """Monotonic arrival time of each delivered event (for throughput measurements)."""
        with self._lock:
            recs = list(self.deliveries)
        return [r.at for r in recs if path is None or r.path.split("?", 1)[0] == path for _ in r.events()]

    def wait_for(self, predicate: Callable[[], bool], timeout: float, poll: float = 0.2) -> bool:
        """Wait until ``predicate()`` is true or ``timeout`` passes; returns the final value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            with self._cond:
                self._cond.wait(timeout=poll)
        return predicate()

    def wait_for_message_ids(self, ids: set[str], timeout: float, path: str | None = None) -> set[str]:
        """Wait until every id in ``ids`` was delivered (to ``path``); returns the ids still missing."""

        def missing() -> set[str]:
            got = {e.get("messageId") for e in self.delivered_events(path) if isinstance(e, dict)}
            return ids - got

        self.wait_for(lambda: not missing(), timeout)
        return missing()


def message_id_counts(events: list[Any]) -> Counter:
    return Counter(e.get("messageId") for e in events if isinstance(e, dict))


def order_violations(events: list[Any], seq_key: str = "seq") -> list[str]:
    """Users whose delivered events are out of order by ``properties[seq_key]`` (duplicates ignored).

    Why ignore duplicates: at-least-once redelivery after a crash may resend an event that was already
    delivered; that is counted separately. Order means: first deliveries per user have increasing seq.
    """
    seen: set[str] = set()
    last: dict[str, int] = {}
    bad: list[str] = []
    for e in events:
        if not isinstance(e, dict):
            continue
        mid = e.get("messageId")
        if mid in seen:
            continue
        seen.add(mid)
        user = e.get("userId") or e.get("anonymousId")
        seq = (e.get("properties") or {}).get(seq_key)
        if seq is None:
            continue
        if user in last and seq < last[user]:
            bad.append(f"{user}: seq {seq} after {last[user]}")
        last[user] = max(seq, last.get(user, seq))
    return bad
