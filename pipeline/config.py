"""``sluice.yaml``: the whole pipeline in one version-controlled file.

Secrets stay out of the file through ``${ENV}`` references (``${NAME:-default}`` gives a default).
Every problem is reported with the key path (``destinations[0].retry.initial_s``) and what to do,
because a pipeline that fails to start should say exactly which line to fix.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """sluice.yaml is wrong; the message names the key and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Names from sluice.yaml end up in index keys (gateway_jobs.source, delivery_jobs.destination); a btree
# entry must stay far below Postgres' ~2.7 KB limit, so names are bounded here, where they are written.
MAX_NAME_LENGTH = 200


class Source(_Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    write_key: str = Field(
        min_length=1, max_length=1024, description="clients send it as the Basic-auth user name"
    )
    type: str | None = Field(
        default=None,
        max_length=64,
        description="source kind (web, ios, android, cloud, ...): selects per-source consent settings",
    )


class RetryPolicy(_Strict):
    """Exponential backoff from ``initial_s`` doubling to ``max_backoff_s``; abort once the event is
    older than ``max_age_s`` AND has been tried ``min_attempts`` times (both, so a short outage never
    aborts a fresh event and a long one never retries forever)."""

    initial_s: float = Field(default=10.0, gt=0)
    max_backoff_s: float = Field(default=300.0, gt=0)
    max_age_s: float = Field(default=10800.0, ge=0)
    min_attempts: int = Field(default=3, ge=1)
    jitter: float = Field(default=0.2, ge=0, le=1)


class RateLimitOverride(_Strict):
    requests_per_second: float | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, ge=1)


class Filters(_Strict):
    event_types: list[str] | None = Field(default=None, description="only these types are delivered")
    events: list[str] | None = Field(default=None, description="only track events with these names")

    @field_validator("event_types")
    @classmethod
    def _types(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        allowed = {"track", "identify", "page", "screen", "group", "alias"}
        out = [t.strip().lower() for t in v]
        bad = [t for t in out if t not in allowed]
        if bad:
            raise ValueError(f"unknown event type(s) {bad}; use some of {sorted(allowed)}")
        return out


class Destination(_Strict):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[A-Za-z0-9_.\-]+$")
    integration: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    ordering: bool = Field(
        default=True, description="per-user ordering: a failed event blocks that user's later ones"
    )
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    rate_limit: RateLimitOverride | None = None
    filters: Filters = Field(default_factory=Filters)
    concurrency: int = Field(default=8, ge=1, le=1024, description="requests in flight at once")
    batch_size: int = Field(
        default=50,
        ge=1,
        le=10000,
        description="jobs read at a time; a worker holds at most 4x this (2 vendor batches when batching), "
        "which is also the most a crash can send twice",
    )
    timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="total time one request may take (connect, send, wait, read the whole answer)",
    )
    base_url: str | None = Field(
        default=None,
        description="send to this scheme://host[:port][/prefix] instead of the vendor's own (sandboxes, "
        "egress proxies, tests); the request's path and query are kept; network.allow_private still applies",
    )
    shards: int = Field(
        default=1,
        description="users are split into this many shards, each delivered by one worker at a time "
        "(whichever sluice process holds its lock): raise it to spread a destination over processes",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url {v!r} must be an http:// or https:// URL with a host")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(
                f"base_url {v!r} may only have a scheme, host, port and path prefix (no query, "
                "fragment or credentials); put credentials in the destination config"
            )
        try:
            parts.port  # noqa: B018 - raises for a port that is not a number
        except ValueError as e:
            raise ValueError(f"base_url {v!r}: {e}") from None
        return v

    @field_validator("shards")
    @classmethod
    def _shards(cls, v: int) -> int:
        if v < 1 or v > 1024:
            raise ValueError(
                f"shards must be between 1 and 1024 (got {v}); use 1 for one worker per destination, "
                "or about the number of sluice processes (times a few) to share it between them"
            )
        return v


class Connection(_Strict):
    source: str
    destinations: list[str]


class Network(_Strict):
    allow_private: list[str] = Field(default_factory=list, description="CIDRs destinations may resolve to")

    @field_validator("allow_private")
    @classmethod
    def _cidrs(cls, v: list[str]) -> list[str]:
        for c in v:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError as e:
                raise ValueError(f"{c!r} is not a CIDR such as 127.0.0.0/8 or 10.0.0.0/8 ({e})") from None
        return v

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.allow_private]


class Gateway(_Strict):
    """Ingestion limits. Every one of them is documented in pipeline/README.md (*Gateway limits*)."""

    max_event_bytes: int = Field(default=32 * 1024, ge=256)
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    group_commit_ms: float = Field(default=2.0, ge=0, le=1000)
    max_backlog: int = Field(default=200_000, ge=1, description="events waiting to be committed before 503")
    max_unprocessed: int | None = Field(
        default=1_000_000,
        ge=1,
        description="gateway jobs not yet processed before the gateway answers 503 (null: no bound); "
        "bounds the disk a stopped processor lets the queue use",
    )
    max_inflight_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        description="request bytes held in memory by all requests at once; beyond it 503 + Retry-After",
    )
    max_connections: int = Field(
        default=2048,
        ge=8,
        description="open client connections; at the limit the longest-idle one is closed for a new one",
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="a request line and headers must arrive within this time"
    )
    body_timeout_s: float = Field(
        default=30.0, gt=0, description="a request body must arrive within this time"
    )
    keep_alive_s: float = Field(
        default=5.0, gt=0, description="an idle keep-alive connection is closed after"
    )
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, description="request line plus headers")


class Processor(_Strict):
    dedupe_window_s: float = Field(default=3600.0, ge=0)
    batch_size: int = Field(default=2000, ge=1, le=100_000)
    max_lag_s: float = Field(
        default=300.0, gt=0, description="/health says degraded when the oldest unprocessed event is older"
    )


class Router(_Strict):
    poll_interval_s: float = Field(default=0.2, gt=0)


class SluiceConfig(_Strict):
    sources: list[Source] = Field(min_length=1)
    destinations: list[Destination] = Field(default_factory=list)
    connections: list[Connection] = Field(default_factory=list)
    network: Network = Field(default_factory=Network)
    gateway: Gateway = Field(default_factory=Gateway)
    processor: Processor = Field(default_factory=Processor)
    router: Router = Field(default_factory=Router)
    database_url: str | None = None

    @model_validator(mode="after")
    def _references(self) -> SluiceConfig:
        def dupes(names: list[str]) -> list[str]:
            return sorted({n for n in names if names.count(n) > 1})

        if d := dupes([s.name for s in self.sources]):
            raise ValueError(f"sources: duplicate name(s) {d}; each source needs its own name")
        if d := dupes([s.write_key for s in self.sources]):
            raise ValueError("sources: two sources share a write_key; give each its own")
        if d := dupes([x.name for x in self.destinations]):
            raise ValueError(f"destinations: duplicate name(s) {d}; each destination needs its own name")
        srcs = {s.name for s in self.sources}
        dests = {x.name for x in self.destinations}
        for i, c in enumerate(self.connections):
            if c.source not in srcs:
                raise ValueError(
                    f"connections[{i}].source: no source named {c.source!r}; known: {sorted(srcs)}"
                )
            for j, dn in enumerate(c.destinations):
                if dn not in dests:
                    raise ValueError(
                        f"connections[{i}].destinations[{j}]: no destination named {dn!r}; "
                        f"known: {sorted(dests)}"
                    )
        return self

    def destinations_for(self, source: str) -> list[Destination]:
        names: list[str] = []
        for c in self.connections:
            if c.source == source:
                names.extend(n for n in c.destinations if n not in names)
        by_name = {d.name: d for d in self.destinations}
        return [by_name[n] for n in names if by_name[n].enabled]


def expand_env(value: Any, env: dict[str, str] | None = None, path: str = "") -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string; an unset variable is an error."""
    env = os.environ if env is None else env
    if isinstance(value, dict):
        return {k: expand_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{path}: environment variable {name} is not set; export it (e.g. `export {name}=...`) "
            f"or write ${{{name}:-default}} in sluice.yaml"
        )

    return _ENV_RE.sub(sub, value)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def parse_config(raw: Any, where: str = "sluice.yaml", env: dict[str, str] | None = None) -> SluiceConfig:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: the file must be a YAML mapping with sources, destinations and connections"
        )
    data = expand_env(raw, env)
    try:
        return SluiceConfig.model_validate(data)
    except ValidationError as e:
        lines = []
        for err in e.errors()[:10]:
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key; check the spelling against examples/sluice.yaml"
            elif err["type"] == "missing":
                msg = "required key is missing"
            lines.append(f"  {_loc(err['loc'])}: {msg}")
        raise ConfigError(f"{where} is invalid:\n" + "\n".join(lines)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice in one mapping is an error.

    Plain YAML keeps the last value silently, so a pasted second ``webhookUrl:`` would win unnoticed.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: keys given here may override merged ones, as YAML intends
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first given on line {first.line + 1}); keep only one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _yaml_path(root: yaml.Node | None, mark: yaml.Mark | None) -> str:
    """The key path (``destinations[0].config``) of the node that holds ``mark``, for error messages."""
    if root is None or mark is None:
        return ""
    path = ""
    node = root
    while True:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if v.start_mark.index <= mark.index <= v.end_mark.index or k.start_mark.index == mark.index:
                    if k.start_mark.index == mark.index:
                        return path
                    path += f".{k.value}" if path else str(k.value)
                    nxt = v
                    break
            if nxt is None:
                return path
            node = nxt
        elif isinstance(node, yaml.SequenceNode):
            nxt = None
            for i, v in enumerate(node.value):
                if v.start_mark.index <= mark.index <= v.end_mark.index:
                    path += f"[{i}]"
                    nxt = v
                    break
            if nxt is None:
                return path
            node = nxt
        else:
            return path


def load_config(path: str | Path, env: dict[str, str] | None = None) -> SluiceConfig:
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(
            f"{p}: no such file; pass --config PATH or copy examples/sluice.yaml to ./sluice.yaml"
        ) from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as e:
        if e.problem and e.problem.startswith("duplicate key"):
            try:
                where = _yaml_path(yaml.compose(text, Loader=yaml.SafeLoader), e.problem_mark)
            except yaml.YAMLError:
                where = ""
            line = e.problem_mark.line + 1 if e.problem_mark else "?"
            raise ConfigError(f"{p}: {where or '(top level)'}: {e.problem} (line {line})") from None
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return parse_config(raw, str(p), env)
