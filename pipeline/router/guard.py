"""Refuse destination addresses that are private, loopback, link-local or otherwise not public.

A destination URL comes from configuration (or, for webhooks, from an event), so without this check
the pipeline could be pointed at internal services (SSRF). ``network.allow_private`` lists the
CIDRs an operator explicitly permits, e.g. ``127.0.0.0/8`` for a local test sink.

The verdict applies to the address actually connected to: the router's HTTP transport resolves a
host name once, checks every address it got, and connects to one of those very addresses (TLS still
verifies, and SNI and ``Host`` still name, the original host). A name that resolves to a public
address when checked and to 127.0.0.1 a moment later (DNS rebinding) cannot slip through, because
nothing resolves it a second time behind the check's back. Resolutions are cached for ``ttl_s``.

"Not public" follows the IANA special-purpose address registries (RFC 6890 and successors), plus the
IPv6 forms that embed an IPv4 address (IPv4-mapped, 6to4, NAT64), which are judged by that address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import typing
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import httpcore
import httpx

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_net = ipaddress.ip_network
SPECIAL_V4 = tuple(
    _net(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT; some clouds' metadata service)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local (cloud metadata at 169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and 255.255.255.255
    )
)
SPECIAL_V6 = tuple(
    _net(n)
    for n in (
        "::/128",
        "::1/128",
        "::/96",  # deprecated IPv4-compatible addresses
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID, benchmarking, ...)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)
_NAT64 = _net("64:ff9b::/96")


class Refused(Exception):
    """The URL must not be called; retrying cannot help (abort with this reason)."""


def embedded_v4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, 6to4, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_special(ip: IPAddress) -> bool:
    """True when ``ip`` (or the IPv4 address it embeds) is not a public unicast address."""
    inner = embedded_v4(ip)
    if inner is not None:
        return is_special(inner)
    nets = SPECIAL_V4 if isinstance(ip, ipaddress.IPv4Address) else SPECIAL_V6
    return any(ip in n for n in nets)


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class AddressGuard:
    def __init__(self, allow: list[IPNetwork], ttl_s: float = 30.0, resolver: Resolver | None = None):
        self.allow = allow
        self.ttl_s = ttl_s
        self.resolver = resolver or _system_resolver
        self._cache: dict[tuple[str, int], tuple[float, list[IPAddress]]] = {}

    def _allowed(self, ip: IPAddress) -> bool:
        inner = embedded_v4(ip)
        return any(
            candidate in net for candidate in (ip, inner) if candidate is not None for net in self.allow
            if net.version == candidate.version
        )

    def _reason(self, host: str, ip: IPAddress) -> str | None:
        if not is_special(ip) or self._allowed(ip):
            return None
        return (
            f"destination host {host!r} resolves to {ip}, a private/loopback/link-local or otherwise "
            f"non-public address; add its network to network.allow_private in sluice.yaml if this is intended"
        )

    def check_url(self, url: str) -> None:
        """Refuse what no address can make right: a scheme other than http(s), or no host."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise Refused(f"destination URL {url.split('?')[0]!r} is not http(s); fix the destination config")
        if not parts.hostname:
            raise Refused(f"destination URL {url.split('?')[0]!r} has no host; fix the destination config")

    async def check(self, url: str) -> None:
        """Check a URL up front (scheme, host and where it resolves now); the transport checks again
        at connect time, which is the check that counts."""
        self.check_url(url)
        parts = urlsplit(url)
        await self.addresses(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """Where ``host`` may be reached: every address it resolves to, each checked; ``Refused`` if
        any is forbidden (a name mixing public and private answers is not trusted); ``OSError`` when
        it cannot be resolved (retryable)."""
        key = (host, port)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            ips = hit[1]
        else:
            try:
                ips = [ipaddress.ip_address(host.strip("[]"))]
            except ValueError:
                answers = await self.resolver(host, port)
                ips = [ipaddress.ip_address(a.split("%")[0]) for a in answers]
            if not ips:
                raise OSError(f"{host!r} did not resolve to any address")
            self._cache[key] = (now + self.ttl_s, ips)
        for ip in ips:
            reason = self._reason(host, ip)
            if reason:
                raise Refused(reason)
        return ips


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but every TCP connection goes to an address the guard checked."""

    def __init__(self, guard: AddressGuard, inner: httpcore.AsyncNetworkBackend | None = None):
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            ips = await self.guard.addresses(host, port)
        except OSError as e:
            raise httpcore.ConnectError(f"cannot resolve {host!r}: {e}") from e
        last: Exception | None = None
        for ip in ips:
            try:
                return await self.inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("unix sockets are not destinations")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(guard: AddressGuard, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections are checked by ``guard`` (no environment proxies: a proxy
    would be what the check sees, not the destination)."""
    transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    ssl_context = transport._pool._ssl_context  # noqa: SLF001 - the same TLS settings httpx would use
    transport._pool = httpcore.AsyncConnectionPool(  # noqa: SLF001 - httpx has no public backend hook
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(guard),
    )
    return transport
