"""Refuse destination URLs that resolve to private, loopback or link-local addresses.

A destination URL comes from configuration (or, for webhooks, from a user), so without this check
the pipeline could be pointed at internal services (SSRF). ``network.allow_private`` lists the
CIDRs an operator explicitly permits, e.g. ``127.0.0.0/8`` for a local test sink.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from urllib.parse import urlsplit

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL must not be called; retrying cannot help (abort with this reason)."""


def _forbidden(ip: IPAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


class AddressGuard:
    def __init__(self, allow: list[IPNetwork], ttl_s: float = 30.0):
        self.allow = allow
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, int], tuple[float, str | None]] = {}

    def _check_ip(self, host: str, ip: IPAddress) -> str | None:
        if not _forbidden(ip):
            return None
        if any(ip in net for net in self.allow if net.version == ip.version):
            return None
        return (
            f"destination host {host!r} resolves to {ip}, a private/loopback/link-local address; "
            f"add its network to network.allow_private in sluice.yaml if this is intended"
        )

    async def check(self, url: str) -> None:
        """Raise ``Refused`` for a forbidden URL; resolution failures raise ``OSError`` (retryable)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise Refused(f"destination URL {url.split('?')[0]!r} is not http(s); fix the destination config")
        host = parts.hostname
        if not host:
            raise Refused(f"destination URL {url.split('?')[0]!r} has no host; fix the destination config")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (host, port)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[0] > now:
            if hit[1]:
                raise Refused(hit[1])
            return
        try:
            ips: list[IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
            ips = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        reason = None
        for ip in ips:
            reason = self._check_ip(host, ip)
            if reason:
                break
        self._cache[key] = (now + self.ttl_s, reason)
        if reason:
            raise Refused(reason)
