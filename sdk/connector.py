"""A loaded destination: its spec compiled once, its optional mapper, and the transform entry point.

Data flows one way: event -> checks -> the spec's requests (fields, conditions, fan-out) -> optional
``refine`` functions of ``mapper.py`` -> requests on their endpoints (URL, headers, auth). Everything that
depends only on the config (settings validation, vars, static URLs and headers, auth) is worked out once
per distinct config (``Bound``), not per event.

``mapper.py`` is a plain module of pure functions, named from the spec (``refine: fn`` on a request,
``call: fn`` in a value). It imports only what ``sdk`` re-exports (see ``sdk/__init__.py``) and never
reads engine internals.
"""

from __future__ import annotations

import base64
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml
from pydantic import ValidationError

from sdk.batching import BatchPlan, merge_planned
from sdk.classify import Classification, classify_response
from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, SluiceError, SpecError, UnsupportedEventError
from sdk.event_filters import check_consent, check_event_filtering
from sdk.mapping import generate_plan
from sdk.mapping.codegen import template_function
from sdk.mapping.env import Env
from sdk.mapping.expressions import CompileError, Compiler
from sdk.mapping.exprstring import template_parts
from sdk.mapping.paths import MISSING
from sdk.mapping.plan import Plan, Planned, compute_vars
from sdk.mapping.xml import to_xml
from sdk.request import VendorRequest
from sdk.settings import SettingsValidator
from sdk.spec.model import DestinationSpec, Endpoint

# Framing and hop-by-hop headers are the HTTP client's business; from settings or events they would
# corrupt the request (RFC 9110 7.6.1) or redirect it (Host). One exception: an endpoint may declare a
# literal Host equal to its URL's own literal host, as vendors show it in their request format (GA4's
# Measurement Protocol); it changes nothing on the wire and can never point elsewhere.
FORBIDDEN_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
    "proxy-connection", "proxy-authorization", "proxy-authenticate",
})  # fmt: skip
_STATIC_ROOTS = {"settings", "vars"}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML with duplicate keys refused: the later one would silently win."""


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<: *anchor` keys may be overridden by the mapping's own keys
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}; remove one of them", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_spec(path: Path) -> DestinationSpec:
    """Parse and validate a spec.yaml; errors name the file and the key."""
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as e:
        raise SpecError(f"{path}: cannot read YAML: {e}") from e
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: a spec is a YAML mapping at the top level")
    try:
        return DestinationSpec.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors()[:10]:
            loc = ".".join(str(x) for x in err["loc"])
            lines.append(f"  {loc}: {err['msg']}")
        raise SpecError(f"{path}: invalid spec:\n" + "\n".join(lines)) from e


def _load_mapper(path: Path, name: str) -> ModuleType | None:
    if not path.exists():
        return None
    mod_name = f"sluice_integrations.{name}.mapper"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise SpecError(f"{path}: cannot import mapper")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    spec.loader.exec_module(module)
    return module


def mapper_functions(mapper: ModuleType | None) -> dict[str, Any]:
    """The public functions a mapper defines itself (not ones it imported)."""
    if mapper is None:
        return {}
    return {
        n: f for n, f in vars(mapper).items()
        if inspect.isfunction(f) and not n.startswith("_") and f.__module__ == mapper.__name__
    }  # fmt: skip


class _Template:
    """An endpoint template (URL, header, param): rendered once per config when it reads only settings
    and vars, else per event."""

    def __init__(self, compiler: Compiler, text: str, where: str, strict: bool = True):
        self.fn = compiler.template(text, where, strict=strict).fn  # validates, and the reference
        if generate_plan.enabled():
            self.fn = template_function(compiler, text, where, strict=strict)
        roots = {p.path.root for part in template_parts(text) if not isinstance(part, str)
                 for p in part.operands if p.path is not None}  # fmt: skip
        self.static = roots <= _STATIC_ROOTS


class _CompiledEndpoint:
    def __init__(self, compiler: Compiler, name: str, ep: Endpoint, where: str):
        self.name = name
        self.method = ep.method
        self.url = _Template(compiler, ep.url, f"{where}.url")
        self.headers = {k: _Template(compiler, v, f"{where}.headers.{k}") for k, v in ep.headers.items()}
        self.params = {k: _Template(compiler, v, f"{where}.params.{k}") for k, v in ep.params.items()}
        for k, v in ep.headers.items():
            if k.lower() in FORBIDDEN_HEADERS and not _own_host(k, v, ep.url):
                raise CompileError(
                    f"{where}.headers.{k}",
                    "framing/hop-by-hop headers are set by the client (a Host header may only repeat the "
                    "URL's own literal host)",
                )
        self.body_format = ep.body_format
        self.transport = ep.transport
        self.json_type = ep.body_format in ("json", "json_array") and not any(
            k.lower() == "content-type" for k in ep.headers
        )


@dataclass
class BoundEndpoint:
    """An endpoint with everything that depends only on the config already rendered."""

    compiled: _CompiledEndpoint
    url: str | None
    headers: dict[str, str]
    params: dict[str, Any]
    dynamic_headers: list[tuple[str, Any]]
    dynamic_params: list[tuple[str, Any]]
    # Everything known per config, auth and Content-Type included: requests of a "simple" endpoint (no
    # per-event URL, headers or params) start from copies of these.
    simple: bool = False
    final_headers: dict[str, str] = field(default_factory=dict)
    final_params: dict[str, Any] = field(default_factory=dict)
    # For a simple endpoint: body -> VendorRequest, with everything per config already decided.
    make: Callable[[Any, Env], VendorRequest] | None = None
    # Lower-case names an event's headers may not set (static headers and credentials; None when some
    # endpoint header is rendered per event), the credentials' alone, and whether a Content-Type is fixed.
    taken: frozenset[str] | None = None
    auth_taken: frozenset[str] = frozenset()
    has_content_type: bool = False


@dataclass
class Bound:
    """A connector bound to one config: validated settings, vars, static endpoint parts, auth."""

    settings: dict[str, Any] = field(repr=False)  # holds credentials: never in reprs or tracebacks
    vars: dict[str, Any] = field(repr=False)
    endpoints: dict[str, BoundEndpoint] = field(repr=False)
    auth_headers: dict[str, str] = field(repr=False)
    auth_params: dict[str, str] = field(repr=False)
    warnings: list[str]
    cache: dict[Any, Any] = field(default_factory=dict, repr=False)  # per-config values (see Compiler)
    filters: bool = False  # event filtering or consent settings present: check each event
    # Endpoint name -> its request constructor, for the simple endpoints (``BoundEndpoint.make``).
    makers: dict[str, Callable[[Any, Env], VendorRequest]] = field(default_factory=dict, repr=False)


class Connector:
    """One integration, ready to transform events and classify responses."""

    def __init__(self, spec: DestinationSpec, folder: Path | None = None, mapper: ModuleType | None = None):
        self.spec = spec
        self.folder = folder
        self.mapper = mapper
        where = spec.name
        self.functions = mapper_functions(mapper)
        try:
            self.settings = SettingsValidator(spec.settings, spec.display_name, spec.ignored_settings)
            self.plan = Plan(spec, self.functions)
            compiler = Compiler(self.plan.let_names, self.functions)
            self.endpoints = {
                n: _CompiledEndpoint(compiler, n, ep, f"{where}.endpoints.{n}")
                for n, ep in spec.endpoints.items()
            }
            self.auth = {
                k: _Template(compiler, v, f"{where}.auth.{k}")
                for k in ("username", "password", "token", "value")
                if isinstance(v := getattr(spec.auth, k), str)
            }
            ex = spec.auth.exchange
            self.exchange_form = {
                k: _Template(compiler, v, f"{where}.auth.exchange.form.{k}", strict=False)
                for k, v in (ex.form.items() if ex else ())
            }
        except (CompileError, ValueError) as e:
            raise SpecError(str(e) if isinstance(e, CompileError) else f"{where}: {e}") from e
        for k, t in {**self.auth, **self.exchange_form}.items():
            if not t.static:
                raise SpecError(f"{where}.auth.{k}: credentials may only read settings and vars")
        self._stepped = any(ep.lookup or ep.found for ep in spec.endpoints.values())
        # event type -> (generated mapping, the lets it reads through env.let)
        self._fast = {t: (fn, self.plan.fast_lets[t]) for t, fn in self.plan.generated.items()}
        self._bound: dict[int, tuple[dict[str, Any], Bound]] = {}
        self._bound_by_config: dict[int, tuple[Any, Bound]] = {}
        self._types = frozenset(spec.event_types)
        self._type_names = {t: t for t in spec.event_types} | {t.capitalize(): t for t in spec.event_types}

    # -- loading -----------------------------------------------------------------------------------
    @classmethod
    def from_folder(cls, folder: Path) -> Connector:
        spec_path = folder / "spec.yaml"
        if not spec_path.exists():
            raise SpecError(f"{folder}: no spec.yaml; run `sluice new {folder.name}` to scaffold one")
        spec = load_spec(spec_path)
        if spec.name != folder.name:
            raise SpecError(
                f"{spec_path}: name is {spec.name!r} but the folder is {folder.name!r}; make them equal"
            )
        try:
            return cls(spec, folder, _load_mapper(folder / "mapper.py", spec.name))
        except SpecError as e:
            raise SpecError(f"{spec_path}: {e}") from e

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def has_steps(self) -> bool:
        """Whether requests may need declared steps (a token exchange, lookups) run before sending."""
        return self._stepped or self.spec.auth.exchange is not None

    # -- config ------------------------------------------------------------------------------------
    def bind(self, config: dict[str, Any] | None) -> Bound:
        """The connector for one config; computed once per distinct config."""
        seen = self._bound_by_config.get(id(config))
        if seen is not None and seen[0] is config:  # the same config object as last time (the pipeline's
            return seen[1]  # case; like SettingsValidator.check, callers must not mutate a config after use)
        bound = self._bind(config)
        if len(self._bound_by_config) > 256:
            self._bound_by_config.clear()
        self._bound_by_config[id(config)] = (config, bound)  # keeps `config` alive: its id stays unique
        return bound

    def _bind(self, config: dict[str, Any] | None) -> Bound:
        settings, warnings = self.settings.check(config)
        hit = self._bound.get(id(settings))
        if hit is not None and hit[0] is settings:
            return hit[1]
        env = Env({}, settings, {}, TransformContext.at(None), {}, self.plan.names, "")
        vars_ = compute_vars(self.plan, env)
        endpoints = {}
        for name, ep in self.endpoints.items():
            url = ep.url.fn(env) if ep.url.static else None
            headers = {k: _text(t.fn(env)) for k, t in ep.headers.items() if t.static}
            params = {k: t.fn(env) for k, t in ep.params.items() if t.static}
            endpoints[name] = BoundEndpoint(
                ep, url, headers, params,
                [(k, t.fn) for k, t in ep.headers.items() if not t.static],
                [(k, t.fn) for k, t in ep.params.items() if not t.static],
            )  # fmt: skip
        auth_headers, auth_params = self._auth(env)
        for b in endpoints.values():
            c = b.compiled
            # Simple: only the URL may depend on the event (and no URL query joins parameters).
            b.simple = (
                not b.dynamic_headers and not b.dynamic_params
                and c.body_format in ("json", "json_array", "form", "text", "none")
                and not (b.params or auth_params)
            )  # fmt: skip
            b.final_headers = {**b.headers, **auth_headers}
            if c.json_type and not any(k.lower() == "content-type" for k in b.final_headers):
                b.final_headers["Content-Type"] = "application/json"
            b.final_params = {**b.params, **auth_params}
            b.auth_taken = frozenset(k.lower() for k in auth_headers)
            if not b.dynamic_headers:
                b.taken = frozenset(k.lower() for k in b.headers) | b.auth_taken
            b.has_content_type = any(k.lower() == "content-type" for k in {**b.headers, **auth_headers})
            if b.simple and c.transport == "http":
                b.make = _request_maker(b, self.spec.name)
        bound = Bound(settings, vars_, endpoints, auth_headers, auth_params, warnings)
        bound.makers = {name: b.make for name, b in endpoints.items() if b.make is not None}
        bound.filters = settings.get("eventFilteringOption") in (
            "whitelistedEvents",
            "blacklistedEvents",
        ) or any(
            settings.get(k) for k in ("oneTrustCookieCategories", "ketchConsentPurposes", "consentManagement")
        )
        if len(self._bound) > 256:
            self._bound.clear()
        self._bound[id(settings)] = (settings, bound)  # keeps `settings` alive, so its id stays unique
        return bound

    def check_config(self, config: dict[str, Any] | None) -> dict[str, Any]:
        """Validate a config up front (the pipeline does this at start-up, not per event)."""
        return self.bind(config).settings

    def config_warnings(self, config: dict[str, Any] | None) -> list[str]:
        """Settings the connector does not use (report once at start-up)."""
        return list(self.bind(config).warnings)

    def _auth(self, env: Env) -> tuple[dict[str, str], dict[str, str]]:
        a = self.spec.auth
        if a.type == "none":
            return {}, {}
        r = {k: _text(t.fn(env)) for k, t in self.auth.items()}
        if a.type == "basic":
            cred = f"{r['username']}:{r.get('password', '')}"
            return {"Authorization": "Basic " + base64.b64encode(cred.encode()).decode()}, {}
        if a.type == "bearer":
            return {"Authorization": f"Bearer {r['token']}"}, {}
        if a.type == "oauth_token":
            return {"Authorization": "Bearer ${auth.access_token}"}, {}  # filled in at send time
        if a.type == "header":
            return {a.name or "Authorization": r["value"]}, {}
        return {}, {a.name or "api_key": r["value"]}

    # -- transform ---------------------------------------------------------------------------------
    def transform(
        self,
        event: dict[str, Any],
        config: dict[str, Any] | None,
        ctx: TransformContext | None = None,
        source_type: str | None = None,
    ) -> list[VendorRequest]:
        """Map one event to the vendor requests it causes, or raise a typed ``SluiceError``.

        ``EventDropped`` means the destination deliberately takes nothing for this event.
        """
        if type(event) is not dict:
            raise InstrumentationError("the event must be a JSON object")
        raw_type = event.get("type")
        etype = self._type_names.get(raw_type) if type(raw_type) is str else None  # the usual spellings
        if etype is None:
            etype = self._event_type(raw_type)
        seen = self._bound_by_config.get(id(config))  # bind()'s first test, inline: the per-event path
        bound = seen[1] if seen is not None and seen[0] is config else self.bind(config)
        if bound.filters:
            check_event_filtering(event, etype, bound.settings)
            check_consent(event, bound.settings, source_type)
        if ctx is None:
            ctx = TransformContext.at(None, seed=str(event.get("messageId") or ""))
        # The generated mapping and the lets it reads (Plan.run's fast path, without the indirection).
        fast = self._fast.get(etype)
        lets = fast[1] if fast is not None else {}
        env = Env(event, bound.settings, bound.vars, ctx, lets, self.plan.names, etype, bound.cache)
        try:
            planned = fast[0](env, []) if fast is not None else self.plan.run(env)
            if self._stepped:
                return self._with_steps(planned, bound, env)
            makers = bound.makers
            out = []
            for p in planned:
                make = makers.get(p.endpoint)
                if make is not None and not p.headers and not p.params:
                    out.append(make(p.body, env))
                else:
                    out.append(self._request(p, bound, env))
            return out
        except SluiceError:
            raise
        except RecursionError as e:
            raise InstrumentationError("the event is nested too deeply to map; flatten it") from e
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            # A mapper tripping over an odd value is an event problem the user must see, not a crash.
            raise InstrumentationError(
                f"{self.spec.display_name}: cannot map this event ({type(e).__name__}: {e}); check its fields"
            ) from e

    def _event_type(self, raw_type: Any) -> str:
        """A supported event type in another spelling (`" Track"`, `TRACK`), or the typed error."""
        if not isinstance(raw_type, str) or not raw_type.strip():
            raise InstrumentationError(
                "the event has no 'type'; set it to track, identify, page, screen, group or alias"
            )
        etype = raw_type.strip().lower()
        if etype not in self._types:
            raise UnsupportedEventError(
                f"{self.spec.display_name} does not support {etype!r} events "
                f"(supported: {', '.join(self.spec.event_types)}); disable them for this destination"
            )
        return etype

    def _request(self, p: Planned, bound: Bound, env: Env) -> VendorRequest:
        ep = bound.endpoints[p.endpoint]
        if ep.make is not None and not p.headers and not p.params:
            return ep.make(p.body, env)
        c = ep.compiled
        if c.transport != "http":
            return VendorRequest.build(
                "POST", "", {}, {}, endpoint=p.endpoint, transport=c.transport, raw=p.body
            )
        url = ep.url if ep.url is not None else _event_url(c.url.fn(env))
        headers = dict(ep.headers)
        for k, fn in ep.dynamic_headers:
            headers[k] = _text(fn(env))
        if p.headers:
            # Headers the event supplies never replace the endpoint's or the credentials'.
            taken = ep.taken if ep.taken is not None else {k.lower() for k in headers} | ep.auth_taken
            for k, v in p.headers.items():
                if v is None:
                    continue
                ks = k if type(k) is str else str(k)
                lk = ks.lower()
                if lk in taken or lk in FORBIDDEN_HEADERS:
                    continue
                headers[ks] = _header_value(ks, v if type(v) is str else _text(v))
        headers.update(bound.auth_headers)
        params = dict(ep.params)
        for k, fn in ep.dynamic_params:
            params[k] = fn(env)
        if p.params:
            for k, v in p.params.items():
                if v is not None and k not in params:
                    params[str(k)] = v
        params.update(bound.auth_params)
        if params and "?" in url:
            # One place for query parameters: the URL's own (e.g. from a path an event appended) join them.
            url, _, query = url.partition("?")
            params = {**dict(parse_qsl(query, keep_blank_values=True)), **params}
        body = p.body
        fmt = c.body_format
        json_body, form, text = _body_parts(fmt, body, self.spec.name)
        typed = ep.has_content_type or (
            bool(p.headers or ep.dynamic_headers) and any(k.lower() == "content-type" for k in headers)
        )
        if fmt == "xml":
            text = to_xml(body)
            if not typed:
                headers["Content-Type"] = "application/xml"
        elif fmt == "query" and isinstance(body, dict):
            params.update((str(k), v) for k, v in body.items() if v is not None and k not in params)
        if c.json_type and not typed:
            headers["Content-Type"] = "application/json"
        return VendorRequest.build(c.method, url, headers, params, json_body, form, text, p.endpoint)

    # -- declared steps (sdk/steps.py runs them) ---------------------------------------------------
    def _with_steps(self, planned: list[Planned], bound: Bound, env: Env) -> list[VendorRequest]:
        """A lookup endpoint's request rides on the request after it (``steps.lookup``), with the
        variant to send when the lookup finds a value (``steps.found``, from the endpoint's ``found``)."""
        out: list[VendorRequest] = []
        pending: dict[str, Any] | None = None
        for p in planned:
            ep = self.spec.endpoints[p.endpoint]
            req = self._request(p, bound, env)
            if ep.lookup is not None:
                pending = {"request": req.to_wire(), "take": ep.lookup.take}
                continue
            if pending is not None:
                steps: dict[str, Any] = {"lookup": pending}
                if ep.found is not None:
                    alt = self._request(Planned(ep.found, p.body, p.headers, p.params), bound, env)
                    steps["found"] = alt.to_wire()
                req = req.model_copy(update={"steps": steps})
                pending = None
            out.append(req)
        if pending is not None:
            raise SpecError(f"{self.spec.name}: a lookup step must be followed by the request it feeds")
        return out

    def token_request(self, config: dict[str, Any] | None) -> VendorRequest:
        """The OAuth token request of ``auth.exchange`` for this config (credentials in its form)."""
        ex = self.spec.auth.exchange
        if ex is None:
            raise SpecError(f"{self.spec.name}: auth.type is not oauth_token; there is no token request")
        bound = self.bind(config)
        env = Env({}, bound.settings, bound.vars, TransformContext.at(None), {}, self.plan.names, "")
        values = {k: tpl.fn(env) for k, tpl in self.exchange_form.items()}
        form = {k: t for k, v in values.items() if v is not MISSING and v is not None and (t := _text(v))}
        req = self._request(Planned(ex.endpoint, form), bound, env)
        req.headers.pop("Authorization", None)
        return req

    # -- delivery ----------------------------------------------------------------------------------
    def batch(
        self, requests: list[VendorRequest], config: dict[str, Any] | None = None
    ) -> list[tuple[list[int], VendorRequest]]:
        """Merge requests for delivery; returns (input indices, request) pairs in order.

        Each request merges under its endpoint's ``batch`` rules, or the spec-wide ``batching`` block.
        """
        b = self.spec.batching
        if not b.enabled:
            return [([i], r) for i, r in enumerate(requests)]
        bound = self.bind(config)
        default = BatchPlan.from_batching(b) if b.max_events > 1 else None
        plans: dict[str, BatchPlan] = {}
        for name, ep in self.spec.endpoints.items():
            if ep.batch is not None:
                merged_url = deliver_url = None
                if ep.batch.merged_endpoint:
                    merged_url = bound.endpoints[ep.batch.merged_endpoint].url
                if ep.batch.deliver_to:
                    deliver_url = bound.endpoints[ep.batch.deliver_to].url
                    if deliver_url is None:
                        raise SpecError(
                            f"{self.spec.name}: endpoints.{name}.batch.deliver_to names "
                            f"{ep.batch.deliver_to!r}, whose URL depends on the event; a delivery endpoint's "
                            f"URL may read only settings and vars"
                        )
                plans[name] = BatchPlan.from_endpoint(name, ep.batch, merged_url, deliver_url)
        return merge_planned(requests, lambda r: plans.get(self.endpoint_of(r) or "", default))

    def endpoint_of(self, req: VendorRequest) -> str | None:
        """Which endpoint produced ``req``: the name stored with it."""
        return req.endpoint if req.endpoint in self.endpoints else None

    def endpoint_matching(self, method: str, url: str) -> str | None:
        """Which endpoint a recorded exchange (a cassette, which stores no endpoint name) was sent to:
        the first whose method and URL template match, each ``{{ ... }}`` or ``${...}`` matching any text."""
        base = url.split("?", 1)[0]
        for name, pattern in self._url_patterns():
            ep_method = self.endpoints[name].method
            if ep_method.upper() == method.upper() and pattern.fullmatch(base):
                return name
        return None

    def _url_patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        cached = self.__dict__.get("_url_pattern_cache")
        if cached is None:
            cached = []
            for name in self.endpoints:
                template = self.spec.endpoints[name].url.split("?", 1)[0]
                parts = re.split(r"\{\{.*?\}\}|\$\{[^}]*\}", template)  # templates, step placeholders
                cached.append((name, re.compile(".*?".join(re.escape(p) for p in parts))))
            self.__dict__["_url_pattern_cache"] = cached
        return cached

    def classify(
        self,
        status: int,
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
        request: VendorRequest | None = None,
        jobs: Any = None,
    ) -> Classification:
        """What the router should do with a vendor answer; ``jobs`` (the merged job requests, or their
        count) lets a rule attribute a partial batch failure to the jobs it names."""
        return classify_response(status, headers, body, self.spec.responses, request=request, jobs=jobs)


def _own_host(name: str, value: str, url: str) -> bool:
    """A literal ``Host`` header that equals the endpoint URL's literal host."""
    if name.lower() != "host" or "{{" in value:
        return False
    netloc = urlsplit(url.strip()).netloc
    return bool(netloc) and "{{" not in netloc and netloc.lower() == value.strip().lower()


def _request_maker(b: BoundEndpoint, connector: str) -> Callable[[Any, Env], VendorRequest]:
    """The request constructor of a simple endpoint (nothing per event but its URL and body): the hot path
    of most connectors, so every per-config decision (URL, headers, body kind) is taken here, once. A
    simple endpoint has no query parameters (see ``_bind``), so its requests start with none."""
    c = b.compiled
    method, name, fmt = c.method, c.name, c.body_format
    url, headers = b.url, b.final_headers
    url_fn = c.url.fn if url is None else None
    build = VendorRequest.build
    is_json = fmt == "json"

    def make(body: Any, env: Env) -> VendorRequest:
        u = url if url_fn is None else _event_url(url_fn(env))
        if is_json:  # the usual body kind, without the call that settles the others
            return build(method, u, dict(headers), {}, {} if body is None else body, None, None, name)
        json_body, form, text = _body_parts(fmt, body, connector)
        return build(method, u, dict(headers), {}, json_body, form, text, name)

    return make


def _body_parts(fmt: str, body: Any, connector: str) -> tuple[Any, dict | None, str | None]:
    """(json, form, text) of a mapped body in the endpoint's format; xml and query are the caller's."""
    if fmt == "json":
        return ({} if body is None else body), None, None
    if fmt == "json_array":
        return (body if isinstance(body, list) else [body]), None, None
    if fmt == "form":
        if body is not None and not isinstance(body, dict):
            raise InstrumentationError(f"{connector}: a form body must be an object")
        return None, body or {}, None
    if fmt == "text":
        return None, None, body if isinstance(body, str) else "" if body is None else _text(body)
    return None, None, None


def _event_url(url: Any) -> str:
    """A URL rendered per event. Event values may sit in its path (an object name, a record id), so a
    path that climbs out of the endpoint's own (``..`` or ``.`` segments, plain or percent-encoded) is
    refused: no event may turn a request into one for another resource of the vendor's API."""
    if type(url) is not str:
        url = _text(url)
    if "/." in url or "%2e" in url or "%2E" in url:
        for segment in urlsplit(url).path.split("/"):
            if unquote(segment) in (".", ".."):
                raise InstrumentationError(
                    f"the request URL's path has a {unquote(segment)!r} segment, built from event values: a "
                    "value placed in a URL path must not climb to another resource; fix the event"
                )
    return url


def _header_value(name: str, value: str) -> str:
    """Headers an event supplies: a valid name, one line of text (no header injection)."""
    if not _TOKEN.match(name):
        raise InstrumentationError(
            f"header name {name[:60]!r} is not a valid HTTP header name; use letters, digits and -"
        )
    if "\r" in value or "\n" in value or "\x00" in value:
        raise InstrumentationError(f"header {name!r} contains a line break; remove it")
    return value


def _text(v: Any) -> str:
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "" if v is None else str(v)


__all__ = ["Connector", "Bound", "load_spec", "mapper_functions", "ConfigurationError"]
