"""Refuse destination addresses that are private, loopback, link-local or otherwise not public.

A destination URL comes from configuration (or, for webhooks, from an event), so without this check
the pipeline could be pointed at internal services (SSRF). ``network.allow_private`` lists the
CIDRs an operator explicitly permits, e.g. ``127.0.0.0/8`` for a local test sink.

The verdict applies to the address actually connected to: the router's HTTP client
(``pipeline/router/http1.py``) connects through ``open_connection``, which resolves a host name once,
checks every address it got, and connects to one of those very addresses (TLS still verifies, and SNI
and ``Host`` still name, the original host). A name that resolves to a public
address when checked and to 127.0.0.1 a moment later (DNS rebinding) cannot slip through, because
nothing resolves it a second time behind the check's back. Resolutions are cached for ``ttl_s``.

"Not public" follows the IANA special-purpose address registries (RFC 6890 and successors), plus the
IPv6 forms that embed an IPv4 address (IPv4-mapped, 6to4, NAT64), which are judged by that address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
Opener = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

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
            candidate in net
            for candidate in (ip, inner)
            if candidate is not None
            for net in self.allow
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

    async def open_connection(
        self,
        host: str,
        port: int,
        *,
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        opener: Opener | None = None,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP (or TLS) connection to ``host``, made to one of the addresses just checked, never to a
        name resolved again behind the check's back; TLS still verifies, and SNI still names, ``host``.
        ``Refused`` for a forbidden address; ``OSError`` when no address can be reached."""
        opener = opener or asyncio.open_connection
        last: OSError | None = None
        for ip in await self.addresses(host, port):
            try:
                return await opener(str(ip), port, ssl=ssl, server_hostname=server_hostname)
            except OSError as e:
                last = e
        assert last is not None
        raise last

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
