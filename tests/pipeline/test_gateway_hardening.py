"""Gateway hardening (issue 11): the attacks of an outsider holding at most a (public) write key.

Each test reproduces one attack at small scale on loopback: identifiers too long for an index row,
nesting deep enough to break recursive code, a timestamp no datetime can hold, bodies sent before
authentication, bodies and headers that never finish, and floods of idle connections. The limits and
their values are the documented ones (pipeline/README.md, *Gateway limits*).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import httpx
import pytest
from pipeline_helpers import WRITE_KEY, pipeline_config, sql

AUTH = "Basic " + __import__("base64").b64encode(f"{WRITE_KEY}:".encode()).decode()


@pytest.fixture
def gw(start_pipeline):
    return start_pipeline(pipeline_config([]))


def post(gw, path, body, auth=(WRITE_KEY, "")):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{gw.url}{path}", content=content, auth=auth, timeout=30)


def stored(dsn):
    return [r[0] for r in sql(dsn, "SELECT event FROM gateway_jobs ORDER BY id")]


def incompressible(n_bytes: int) -> str:
    return os.urandom(n_bytes // 2).hex()


def raw_connection(gw) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def read_response(s: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes or ``timeout`` passes without data."""
    s.settimeout(timeout)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                length = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
                if length and len(rest) >= int(length[0].split(b":")[1]):
                    return out
    except (TimeoutError, ConnectionResetError):
        pass
    return out


def closed_by_server(s: socket.socket, within: float) -> bool:
    """True when the server closes the connection (EOF or reset) within ``within`` seconds."""
    s.settimeout(within)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# -- item 1: identifiers that would not fit an index row ---------------------------------------------
@pytest.mark.parametrize(
    ("path", "field", "base"),
    [
        ("/v1/track", "userId", {"event": "E"}),
        ("/v1/track", "anonymousId", {"event": "E"}),
        ("/v1/track", "messageId", {"userId": "u", "event": "E"}),
        ("/v1/group", "groupId", {"userId": "u"}),
        ("/v1/alias", "previousId", {"userId": "u"}),
    ],
)
def test_identifiers_over_the_documented_length_are_400_naming_the_field(gw, pg_dsn, path, field, base):
    # The review's poison pill: ~2.7 KB of incompressible text in an id overflowed a btree row.
    r = post(gw, path, {**base, field: incompressible(3000)})
    assert r.status_code == 400, r.text
    assert f"{field} is longer than 1024 bytes" in r.json()["message"]
    # Exactly at the limit (multi-byte characters count in UTF-8 bytes) is accepted.
    at_limit = "é" * 512  # 1024 bytes
    assert post(gw, path, {**base, field: at_limit}).status_code == 200
    assert post(gw, path, {**base, field: at_limit + "x"}).status_code == 400
    assert [e[field] for e in stored(pg_dsn)] == [at_limit]


# -- item 5: nesting and timestamps ------------------------------------------------------------------
@pytest.mark.parametrize("depth", [65, 600, 960, 1000, 1020])
def test_deep_nesting_is_a_400_never_a_500(gw, pg_dsn, depth):
    nested = "[" * depth + "]" * depth
    body = f'{{"userId": "u", "event": "E", "properties": {{"x": {nested}}}}}'.encode()
    r = post(gw, "/v1/track", body)
    assert r.status_code == 400, r.text
    assert "64 levels" in r.json()["message"] or "not valid JSON" in r.json()["message"]
    deep_ctx = json.loads('{"a":' * 70 + "1" + "}" * 70)
    r = post(gw, "/v1/batch", {"batch": [{"type": "identify", "userId": "u"}], "context": deep_ctx})
    assert r.status_code == 400 and "flatten" in r.json()["message"]
    assert stored(pg_dsn) == []
    assert post(gw, "/v1/track", {"userId": "u", "event": "fine"}).status_code == 200


@pytest.mark.parametrize(
    "fields",
    [
        {"originalTimestamp": "9999-12-31T23:59:59.999999-01:00"},
        {"originalTimestamp": "9999-12-31T23:59:59.999999-01:00", "sentAt": "2024-01-01T00:00:00Z"},
        {"timestamp": "9999-12-31T23:59:59.999999-01:00"},
        {"originalTimestamp": "2024-01-01T00:00:00Z", "sentAt": "0001-01-01T00:00:00+01:00"},
    ],
)
def test_timestamps_outside_what_utc_can_hold_are_a_400(gw, pg_dsn, fields):
    r = post(gw, "/v1/track", {"userId": "u", "event": "E", **fields})
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "outside the supported range" in message or "too far apart" in message
    assert stored(pg_dsn) == []


# -- item 7: authentication before the body, bounded body bytes, deadlines, connection bound -------
def test_a_wrong_write_key_is_refused_before_the_body_is_sent(gw):
    s = raw_connection(gw)
    bad = "Basic " + __import__("base64").b64encode(b"not-a-key:").decode()
    s.sendall(
        f"POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: {bad}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {4_000_000}\r\n\r\n".encode()
    )
    # Not one byte of the 4 MB body was sent, yet the answer is there and the connection is closed.
    response = read_response(s, timeout=10)
    assert response.startswith(b"HTTP/1.1 401"), response[:200]
    assert b"unknown write key" in response
    assert closed_by_server(s, within=5)
    s.close()


def test_body_bytes_in_flight_are_bounded(start_pipeline, pg_dsn):
    gw = start_pipeline(pipeline_config([], gateway={"max_inflight_body_bytes": 100_000}))
    event = json.dumps({"userId": "u", "event": "E", "properties": {"p": "x" * 100}}).encode()
    body = event + b" " * (60_000 - len(event))
    held = raw_connection(gw)
    held.sendall(
        f"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[:1000]
    )
    time.sleep(0.3)  # the first request holds its 60 KB reservation while its body trickles
    r = post(gw, "/v1/track", body)
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "busy" and "max_inflight_body_bytes" in r.json()["message"]
    assert r.headers["Retry-After"] == "1"
    held.sendall(body[1000:])
    assert read_response(held).startswith(b"HTTP/1.1 200")
    held.close()
    assert post(gw, "/v1/track", body).status_code == 200  # the reservation was given back
    # Without a header key (write key in the body) a request may use only a quarter of the budget.
    anon = json.dumps({"userId": "u", "event": "E", "writeKey": WRITE_KEY}).encode()
    assert post(gw, "/v1/track", anon + b" " * 30_000, auth=None).status_code == 503
    assert post(gw, "/v1/track", anon + b" " * 20_000, auth=None).status_code == 200
    assert len(stored(pg_dsn)) == 3


def test_a_body_that_never_finishes_gets_a_408(start_pipeline):
    gw = start_pipeline(pipeline_config([], gateway={"body_timeout_s": 0.5}))
    s = raw_connection(gw)
    s.sendall(
        f"POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
        "Content-Length: 1000\r\n\r\n{".encode()
    )
    response = read_response(s, timeout=10)
    assert response.startswith(b"HTTP/1.1 408"), response[:200]
    assert closed_by_server(s, within=5)
    s.close()


def test_headers_must_arrive_in_time_however_slowly_they_trickle(start_pipeline):
    gw = start_pipeline(pipeline_config([], gateway={"header_timeout_s": 0.5}))
    silent = raw_connection(gw)
    assert closed_by_server(silent, within=5), "a connection that sends nothing must be closed"
    silent.close()
    # Slowloris: a header byte every 0.1 s keeps uvicorn's own timers alive, not the header deadline.
    drip = raw_connection(gw)
    closed = threading.Event()

    def trickle():
        try:
            for ch in b"GET /health HTTP/1.1\r\nX-Slow: " + b"a" * 200:
                if closed.is_set():
                    return
                drip.send(bytes([ch]))
                time.sleep(0.1)
        except OSError:
            closed.set()

    t = threading.Thread(target=trickle)
    t.start()
    assert closed_by_server(drip, within=10)
    closed.set()
    t.join(30)
    drip.close()
    # A keep-alive connection gets the same deadline for its next request.
    with httpx.Client() as c:
        assert c.get(f"{gw.url}/health").status_code == 200


def test_oversized_headers_are_a_431(gw):
    s = raw_connection(gw)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    response = read_response(s)
    assert response.startswith(b"HTTP/1.1 431"), response[:200]
    s.close()


def test_idle_connection_flood_is_bounded_and_health_keeps_answering(start_pipeline):
    gw = start_pipeline(pipeline_config([], gateway={"max_connections": 32}))
    idle = [raw_connection(gw) for _ in range(150)]
    try:
        for _ in range(5):
            r = httpx.get(f"{gw.url}/health", timeout=10)
            assert r.status_code == 200
        open_now = gw.call(lambda p: _async_value(len(gw._server.server_state.connections)))
        assert open_now <= 32
        # A request in progress is never shed for a newcomer.
        assert post(gw, "/v1/identify", {"userId": "u"}).status_code == 200
    finally:
        for s in idle:
            s.close()


async def _async_value(v):
    return v


def test_a_header_that_never_ends_is_cut_off_at_the_limit(gw):
    s = raw_connection(gw)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Endless: ")
    sent = 0
    try:
        for _ in range(100):  # up to 1.6 MB, never a line end
            s.sendall(b"a" * 16_384)
            sent += 16_384
    except OSError:
        pass  # the server closed the connection: what we want
    response = read_response(s)
    assert response.startswith(b"HTTP/1.1 431"), response[:200]
    assert sent < 1_600_000 or closed_by_server(s, within=5)
    s.close()
