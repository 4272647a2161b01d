"""Small pure parts of the pipeline: the SSRF guard, the throttle, event normalisation, COPY escaping."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import time

import pytest

from pipeline.gateway.events import EventError, normalise
from pipeline.queue.db import copy_json, copy_text, redact_dsn
from pipeline.router.guard import AddressGuard, Refused
from pipeline.router.limits import Throttle


def check(guard: AddressGuard, url: str) -> None:
    asyncio.run(guard.check(url))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://169.254.169.254/latest/meta-data",  # cloud metadata, link-local
        "http://[::1]:8080/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
        "http://0.0.0.0/",
    ],
)
def test_private_loopback_and_link_local_are_refused(url):
    with pytest.raises(Refused, match="allow_private"):
        check(AddressGuard([]), url)


def test_allow_private_admits_only_the_listed_networks():
    guard = AddressGuard([ipaddress.ip_network("127.0.0.0/8")])
    check(guard, "http://127.0.0.1:9000/hook")
    with pytest.raises(Refused):
        check(guard, "http://10.0.0.1/")


def test_public_addresses_and_bad_schemes():
    check(AddressGuard([]), "https://93.184.216.34/x")
    with pytest.raises(Refused, match="not http"):
        check(AddressGuard([]), "file:///etc/passwd")
    with pytest.raises(Refused, match="no host"):
        check(AddressGuard([]), "http:///path")


def test_throttle_backs_off_doubling_and_honours_retry_after():
    t = Throttle()
    t.hit(None)
    assert t.active and t.backoff == 2.0
    t.hit(None)
    assert t.backoff == 4.0
    t.ok()
    assert t.backoff == 1.0
    t2 = Throttle()
    t2.hit(30.0)
    assert t2.active and t2.until - time.monotonic() > 25  # paused for the vendor's 30 s


NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


def norm(ev, etype="track"):
    return normalise(ev, etype=etype, received=NOW, received_iso="2024-05-01T12:00:00.000Z", where="t")


def test_normalise_fills_server_fields():
    ev = norm({"userId": 42, "event": "E", "originalTimestamp": "2024-05-01T11:00:00Z"})
    assert ev["type"] == "track" and ev["messageId"] and ev["receivedAt"] == "2024-05-01T12:00:00.000Z"
    assert ev["timestamp"] == "2024-05-01T11:00:00.000Z"  # no sentAt: the client's own time


def test_normalise_rejects_bad_types_with_the_field_name():
    with pytest.raises(EventError, match="anonymousId must be a string"):
        norm({"anonymousId": {"x": 1}, "event": "E"})
    with pytest.raises(EventError, match="messageId must be a string"):
        norm({"userId": "u", "event": "E", "messageId": [1]})


def test_copy_escaping():
    assert copy_text(None) == "\\N"
    assert copy_text("a\tb\nc\\d") == "a\\tb\\nc\\\\d"
    assert copy_json('{"a":"x\\"y"}') == '{"a":"x\\\\"y"}'


def test_redact_dsn_hides_passwords():
    assert "s3cret" not in redact_dsn("postgresql://u:s3cret@h:5432/db")
    assert "s3cret" not in redact_dsn("host=h user=u password=s3cret dbname=db")
