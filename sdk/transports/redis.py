"""Redis as a destination: each request's ``raw`` is one write, sent with redis-py's asyncio client.

The operation vocabulary (the shape says the command, so ``sluice transform`` shows exactly what is
written; https://redis.io/docs/latest/commands/):

- ``{"key": k, "fields": {f: v, ...}}``: ``HSET k f v ...`` (a user's traits as a hash). Hash fields hold
  text: numbers are written as Redis writes them, booleans as true/false, objects and lists as compact
  JSON; null fields are left out (HSET cannot store null).
- ``{"hash": h, "key": f, "value": v}``: ``HSET h f v``, one field of a hash (objects as JSON text).
- ``{"key": k, "value": v}``: ``JSON.SET k $ v`` (RedisJSON module: the document replaced).
- ``{"key": k, "path": p, "value": v}``: ``JSON.SET k $.p v``, the document created first if absent.

Answers, as the router's classifier reads them: ``200 {"reply": ...}`` when Redis accepted the write;
``400 {"code": "WRONGTYPE", "error": "..."}`` for an error reply (``code`` is the reply's error prefix:
WRONGPASS/NOAUTH when authentication fails, LOADING/BUSY/TRYAGAIN/MASTERDOWN/CLUSTERDOWN/OOM for a server
that cannot take writes for now, ...), so a spec's ``responses`` rules decide which of them are worth a
retry. A connection that cannot be made, breaks or times out is raised as ``OSError`` (retried).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rx
from redis.asyncio.cluster import ClusterNode, RedisCluster

from sdk.delivery import DeliveryResult, UnsendableRequest

_OPERATIONS = ({"key", "fields"}, {"hash", "key", "value"}, {"key", "value"}, {"key", "path", "value"})


def _field(v: Any) -> str | int | float:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str | int | float):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _code(e: rx.RedisError) -> str:
    """The error prefix Redis put on its reply (redis-py strips the known ones into exception types)."""
    text = str(e)
    if isinstance(e, rx.AuthenticationError):
        # A wrong password: "invalid username-password pair"; none given: "Authentication required" (or,
        # at the RESP3 handshake, "HELLO must be called with the client already authenticated").
        return "WRONGPASS" if "password" in text.lower() else "NOAUTH"
    for cls, code in (
        (rx.NoPermissionError, "NOPERM"),
        (rx.ReadOnlyError, "READONLY"),
        (rx.OutOfMemoryError, "OOM"),
        (rx.BusyLoadingError, "LOADING"),
        (rx.ExecAbortError, "EXECABORT"),
    ):
        if isinstance(e, cls):
            return code
    first = text.split(" ", 1)[0]
    return first if first.isupper() and first.isalpha() else "ERR"


def _hosts(address: str) -> list[tuple[str, int]]:
    out = []
    for part in str(address or "").split(","):
        part = part.strip()
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep:
            host, port = part, "6379"
        if not port.isdigit() or not host.strip("[]"):
            raise ValueError(f"Redis address {part!r} is not host:port; write it like localhost:6379")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ValueError("the Redis address is empty; set address to host:port (e.g. localhost:6379)")
    return out


class RedisTransport:
    """One destination's Redis client (a connection pool, or a cluster client with ``clusterMode``)."""

    name = "redis"

    def __init__(self, settings: dict[str, Any]):
        self.settings = settings
        self.hosts = _hosts(settings.get("address", ""))
        self.cluster = settings.get("clusterMode", True) is not False
        db = str(settings.get("database") or "0").strip() or "0"
        if not self.cluster and not db.isdigit():
            raise ValueError(
                f"Redis database {db!r} is not a database number (0-15 by default); fix `database`"
            )
        self.db = 0 if self.cluster else int(db)
        self._client: Any = None

    def addresses(self) -> list[tuple[str, int]]:
        return list(self.hosts)

    def _tls(self) -> dict[str, Any]:
        """redis-py's TLS options from ``secure``/``skipVerify``/``caCertificate`` (PEM text)."""
        skip = bool(self.settings.get("skipVerify"))
        return {
            "ssl_cert_reqs": "none" if skip else "required",
            "ssl_check_hostname": not skip,
            "ssl_ca_data": self.settings.get("caCertificate") or None,
        }

    def _open(self) -> Any:
        common: dict[str, Any] = {"password": self.settings.get("password") or None, "socket_timeout": None}
        secure = bool(self.settings.get("secure"))
        if self.cluster:
            tls = {"ssl": True, **self._tls()} if secure else {}
            nodes = [ClusterNode(h, p) for h, p in self.hosts]
            return RedisCluster(startup_nodes=nodes, **common, **tls)
        host, port = self.hosts[0]
        tls = {"connection_class": aioredis.SSLConnection, **self._tls()} if secure else {}
        pool = aioredis.ConnectionPool(host=host, port=port, db=self.db, **common, **tls)
        return aioredis.Redis(connection_pool=pool)

    @staticmethod
    def check(raw: Any) -> None:
        if not isinstance(raw, dict) or set(raw) not in _OPERATIONS:
            shapes = "; ".join("{" + ", ".join(sorted(s)) + "}" for s in _OPERATIONS)
            raise UnsendableRequest(f"not a Redis operation: expected one of {shapes}")
        for k in ("key", "hash", "path"):
            if k in raw and (not isinstance(raw[k], str) or not raw[k]):
                raise UnsendableRequest(f"the Redis operation's {k!r} must be non-empty text")
        if "fields" in raw and not isinstance(raw["fields"], dict):
            raise UnsendableRequest("the Redis operation's 'fields' must be an object")

    async def _run(self, client: Any, raw: dict[str, Any]) -> Any:
        if "fields" in raw:
            fields = {str(k): _field(v) for k, v in raw["fields"].items() if v is not None}
            return await client.hset(raw["key"], mapping=fields) if fields else 0
        if "hash" in raw:
            return await client.hset(raw["hash"], raw["key"], _field(raw["value"]))
        if "path" in raw:
            await client.json().set(raw["key"], "$", {}, nx=True)
            return await client.json().set(raw["key"], "$." + raw["path"], raw["value"])
        return await client.json().set(raw["key"], "$", raw["value"])

    async def send(self, raw: Any, deadline: float) -> DeliveryResult:
        self.check(raw)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(deadline):
                if self._client is None:
                    self._client = self._open()
                reply = await self._run(self._client, raw)
        except (rx.AuthenticationError, rx.BusyLoadingError, rx.ResponseError) as e:
            body = {"code": _code(e), "error": f"{_code(e)} {e}".strip()}
            return self._answer(400, body, started)
        except rx.RedisClusterException as e:
            body = {
                "code": "CLUSTER",
                "error": f"cluster mode: {e}; turn clusterMode off for a single server",
            }
            return self._answer(400, body, started)
        except (rx.ConnectionError, rx.TimeoutError) as e:
            await self._reset()
            raise ConnectionError(
                f"Redis at {self.settings.get('address')!r}: {type(e).__name__}: {e}"
            ) from None
        except TimeoutError:
            await self._reset()
            raise TimeoutError(
                f"Redis at {self.settings.get('address')!r} did not answer in {deadline} s"
            ) from None
        if isinstance(reply, bytes):
            reply = reply.decode("utf-8", "replace")
        return self._answer(200, {"reply": reply}, started)

    @staticmethod
    def _answer(status: int, body: dict[str, Any], started: float) -> DeliveryResult:
        return DeliveryResult(
            status=status,
            headers={"content-type": "application/json"},
            body=json.dumps(body, separators=(",", ":")).encode(),
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )

    async def _reset(self) -> None:
        """Drop the client after a connection failure: the next send connects afresh."""
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001, S110 - closing a broken client may fail too; nothing to do
                pass

    async def aclose(self) -> None:
        await self._reset()
