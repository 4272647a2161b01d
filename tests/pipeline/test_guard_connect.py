"""SSRF guard: the verdict applies to the address actually connected to (DNS rebinding), and every
IANA special-purpose range (and IPv6 forms embedding a private IPv4 address) counts as private."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl

import pytest
from pipeline_helpers import pipeline_config, send, sql, track, wait_until, webhook

from pipeline.router import http1
from pipeline.router.guard import AddressGuard, Refused, is_special
from pipeline.router.http1 import Http1Client
from sdk.request import VendorRequest

PUBLIC = "93.184.216.34"


@pytest.mark.parametrize(
    "ip",
    [
        "100.64.0.1",  # shared address space (CGNAT; some clouds' metadata service)
        "100.100.100.200",
        "192.0.0.8",
        "192.88.99.1",
        "198.18.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "fec0::1",  # site-local
        "fc00::1",
        "ff02::1",
        "2001:db8::1",
        "::7f00:1",  # IPv4-compatible loopback
        "::ffff:10.0.0.1",  # IPv4-mapped private
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::1",  # local-use NAT64
    ],
)
def test_special_purpose_ranges_are_private(ip):
    assert is_special(ipaddress.ip_address(ip))
    with pytest.raises(Refused, match="allow_private"):
        asyncio.run(AddressGuard([]).addresses(ip, 80))


@pytest.mark.parametrize("ip", [PUBLIC, "8.8.8.8", "2606:4700::1111", "2002:808:808::1", "64:ff9b::808:808"])
def test_public_addresses_including_6to4_and_nat64_of_public_ones_pass(ip):
    assert not is_special(ipaddress.ip_address(ip))


def test_allow_private_also_admits_the_ipv6_forms_of_an_allowed_ipv4_network():
    guard = AddressGuard([ipaddress.ip_network("127.0.0.0/8")])
    for ip in ("127.0.0.1", "::ffff:127.0.0.1", "2002:7f00:1::"):
        asyncio.run(guard.addresses(ip, 80))
    with pytest.raises(Refused):
        asyncio.run(guard.addresses("::ffff:10.0.0.1", 80))


class Flip:
    """A resolver that answers a public address first and 127.0.0.1 afterwards (DNS rebinding)."""

    def __init__(self, first: str = PUBLIC):
        self.first = first
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return [self.first] if self.calls == 1 else ["127.0.0.1"]


class Recorder:
    """An ``open_connection`` stand-in that records where connections go instead of connecting."""

    def __init__(self) -> None:
        self.connected: list[str] = []

    async def __call__(self, host, port, **kwargs):
        self.connected.append(host)
        raise ConnectionRefusedError("recorded, not connected")


def test_the_connection_goes_to_the_address_that_was_checked():
    """The old guard checked a name, cached 'allowed', and let httpx resolve it again on connect, so a name
    flipping to 127.0.0.1 in between was delivered to. Now the checked answer is the one connected to."""
    resolver = Flip()
    guard = AddressGuard([], ttl_s=30, resolver=resolver)
    recorder = Recorder()

    async def scenario() -> None:
        await guard.check("http://rebind.test:8080/hook")  # resolves: public
        with pytest.raises(ConnectionRefusedError):  # the resolver would now say 127.0.0.1
            await guard.open_connection("rebind.test", 8080, opener=recorder)

    asyncio.run(scenario())
    assert recorder.connected == [PUBLIC]


def test_a_name_that_rebinds_to_loopback_is_refused_at_connect_time():
    resolver = Flip()
    guard = AddressGuard([], ttl_s=0, resolver=resolver)  # no caching: every connection resolves anew
    recorder = Recorder()

    async def scenario() -> None:
        with pytest.raises(ConnectionRefusedError):
            await guard.open_connection("rebind.test", 8080, opener=recorder)
        with pytest.raises(Refused, match="127.0.0.1"):
            await guard.open_connection("rebind.test", 8080, opener=recorder)

    asyncio.run(scenario())
    assert recorder.connected == [PUBLIC]  # never 127.0.0.1


def test_router_client_reaches_an_allowed_name_with_its_own_host_header(sink):
    port = int(sink.url().rsplit(":", 1)[1].split("/")[0])

    async def resolver(host: str, p: int) -> list[str]:
        return ["127.0.0.1"]

    async def scenario(allow: list) -> int:
        client = Http1Client(AddressGuard(allow, resolver=resolver), ssl.create_default_context())
        try:
            req = VendorRequest(url=f"http://sink.test:{port}/hook", json={"userId": "u1"})
            return (await http1.send(client, req, deadline=5)).status
        finally:
            await client.aclose()

    with pytest.raises(Refused):
        asyncio.run(scenario([]))
    assert sink.attempt_count() == 0
    assert asyncio.run(scenario([ipaddress.ip_network("127.0.0.0/8")])) == 200
    (attempt,) = sink.attempts
    assert attempt.headers["Host"] == f"sink.test:{port}"


def test_pipeline_checks_where_a_name_resolves_when_it_connects(start_pipeline, sink, pg_dsn):
    """The router's own transport resolves (with the pipeline's resolver) and checks: a name that points
    at loopback is refused without a connection, and the job is aborted with the reason."""
    port = int(sink.url().rsplit(":", 1)[1].split("/")[0])

    async def to_loopback(host: str, p: int) -> list[str]:
        return ["127.0.0.1"]

    dest = webhook("hook", f"http://rebind.test:{port}/hook", timeout_s=2)
    p = start_pipeline(pipeline_config([dest], network={"allow_private": []}), resolver=to_loopback)
    send(p, [track("u1", 1)])
    wait_until(lambda: sql(pg_dsn, "SELECT count(*) FROM dead_letters")[0][0] == 1, timeout=60)
    (reason,) = sql(pg_dsn, "SELECT reason FROM dead_letters")[0]
    assert "rebind.test" in reason and "127.0.0.1" in reason and "allow_private" in reason
    assert sink.attempt_count() == 0
