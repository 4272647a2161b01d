"""A loaded destination: its spec compiled once, its optional mapper, and the transform entry point.

Mapper hook interface (all optional, module-level functions in ``mapper.py``):

``prepare(event, kit) -> dict``
    Normalise the event before the declarative mapping runs.
``post_map(body, event, kit) -> dict``
    Adjust the body the declarative mapping produced.
``transform(event, kit) -> VendorRequest | list[VendorRequest] | None``
    Take over completely; ``kit.default(event)`` still runs the declarative path.
``batch(requests, kit) -> list[tuple[list[int], VendorRequest]]``
    Custom batching when the spec's ``batching`` block cannot say it.

Hooks must be pure: time and ids come from ``kit.ctx`` (a ``TransformContext``),
errors are raised as ``sdk.errors`` types.
"""

from __future__ import annotations

import base64
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import ValidationError

from sdk.batching import BatchPlan, merge_planned
from sdk.classify import Classification, classify_response
from sdk.context import TransformContext
from sdk.errors import ConfigurationError, InstrumentationError, SluiceError, SpecError, UnsupportedEventError
from sdk.mapping.compile import CompiledMapping, compile_mappings
from sdk.mapping.templates import Template
from sdk.request import VendorRequest
from sdk.settings import SettingsValidator
from sdk.spec.model import DestinationSpec, Endpoint

MAPPER_HOOKS = ("prepare", "post_map", "transform", "batch")
_TEMPLATE_TOKEN = re.compile(r"\{\{.*?\}\}")


def load_spec(path: Path) -> DestinationSpec:
    """Parse and validate a spec.yaml; errors name the file and the key."""
    try:
        raw = yaml.safe_load(path.read_text())
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


class _CompiledEndpoint:
    def __init__(self, name: str, ep: Endpoint, where: str):
        self.name = name
        self.method = ep.method
        self.url = Template(ep.url, f"{where}.url")
        literals = _TEMPLATE_TOKEN.split(ep.url)
        self.url_pattern = re.compile("^" + ".+?".join(re.escape(p) for p in literals) + "$")
        self.url_literal_len = sum(len(p) for p in literals)
        self.headers = {k: Template(v, f"{where}.headers.{k}") for k, v in ep.headers.items()}
        self.params = {k: Template(v, f"{where}.params.{k}") for k, v in ep.params.items()}
        self.body_format = ep.body_format
        self.openapi_operation = ep.openapi_operation


@dataclass
class Kit:
    """What a mapper hook gets: settings, clock, and the declarative machinery to reuse."""

    connector: Connector
    settings: dict[str, Any] = field(repr=False)  # holds credentials: never in reprs or tracebacks
    ctx: TransformContext
    vars: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> DestinationSpec:
        return self.connector.spec

    def ns(self, event: dict[str, Any]) -> dict[str, Any]:
        return {"event": event, "settings": self.settings, "vars": self.vars, "ctx": self.ctx}

    def map(self, event: dict[str, Any], event_type: str | None = None) -> dict[str, Any]:
        """Run the spec's mapping for ``event_type`` (default: the event's own type)."""
        etype = event_type or str(event.get("type", "")).lower()
        mapping = self.connector.mappings.get(etype)
        if mapping is None:
            raise UnsupportedEventError(f"{self.spec.display_name} has no mapping for {etype!r} events")
        return mapping.run(self.ns(event))

    def request(self, endpoint: str, body: Any, event: dict[str, Any] | None = None) -> VendorRequest:
        """Build a request to one of the spec's endpoints, with auth applied."""
        return self.connector.build_request(endpoint, body, self.ns(event or {}))

    def default(self, event: dict[str, Any]) -> list[VendorRequest]:
        """The declarative path: prepare → map → post_map → request."""
        return self.connector.declarative(event, self)


class Connector:
    """One integration, ready to transform events and classify responses."""

    def __init__(self, spec: DestinationSpec, folder: Path | None = None, mapper: ModuleType | None = None):
        self.spec = spec
        self.folder = folder
        self.mapper = mapper
        where = f"{spec.name}"
        try:
            self.settings = SettingsValidator(spec.settings, spec.display_name)
            self.endpoints = {
                n: _CompiledEndpoint(n, ep, f"{where}.endpoints.{n}") for n, ep in spec.endpoints.items()
            }
            self.mappings: dict[str, CompiledMapping] = compile_mappings(spec.mappings, spec.common, where)
            self.auth = {
                k: Template(v, f"{where}.auth.{k}")
                for k in ("username", "password", "token", "value")
                if isinstance(v := getattr(spec.auth, k), str)
            }
        except ValueError as e:
            raise SpecError(f"{where}: {e}") from e
        self.hooks = {
            h: getattr(mapper, h) for h in MAPPER_HOOKS if mapper is not None and hasattr(mapper, h)
        }

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
        return cls(spec, folder, _load_mapper(folder / "mapper.py", spec.name))

    @property
    def name(self) -> str:
        return self.spec.name

    # -- transform ---------------------------------------------------------------------------------
    def vars_for(self, settings: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, var in self.spec.vars.items():
            raw = settings.get(var.setting)
            key = raw if isinstance(raw, str) else ("" if raw is None else str(raw))
            out[name] = var.map.get(key, var.default if var.default is not None else raw)
        return out

    def transform(
        self, event: dict[str, Any], config: dict[str, Any] | None, ctx: TransformContext | None = None
    ) -> list[VendorRequest]:
        """Map one event to the vendor requests it causes, or raise a typed ``SluiceError``."""
        if not isinstance(event, dict):
            raise InstrumentationError("the event must be a JSON object")
        etype = event.get("type")
        if not isinstance(etype, str) or not etype:
            raise InstrumentationError(
                "the event has no 'type'; set it to track, identify, page, screen, group or alias"
            )
        etype = etype.strip().lower()
        if etype not in self.spec.event_types:
            raise UnsupportedEventError(
                f"{self.spec.display_name} does not support {etype!r} events "
                f"(supported: {', '.join(self.spec.event_types)}); disable them for this destination"
            )
        settings = self.settings(config)
        if ctx is None:
            ctx = TransformContext.at(None, seed=str(event.get("messageId") or ""))
        kit = Kit(self, settings, ctx, self.vars_for(settings))
        try:
            if "transform" in self.hooks:
                result = self.hooks["transform"](event, kit)
                return _as_requests(result, self.spec.display_name)
            return self.declarative(event, kit)
        except SluiceError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            # A mapper tripping over an odd value is an event problem the user must see, not a crash.
            raise InstrumentationError(
                f"{self.spec.display_name}: cannot map this event ({type(e).__name__}: {e}); check its fields"
            ) from e

    def declarative(self, event: dict[str, Any], kit: Kit) -> list[VendorRequest]:
        if "prepare" in self.hooks:
            event = self.hooks["prepare"](event, kit)
        etype = str(event.get("type", "")).lower()
        mapping = self.mappings.get(etype)
        if mapping is None:
            raise UnsupportedEventError(f"{self.spec.display_name} has no mapping for {etype!r} events")
        ns = kit.ns(event)
        body: Any = mapping.run(ns)
        if "post_map" in self.hooks:
            body = self.hooks["post_map"](body, event, kit)
            if isinstance(body, (VendorRequest, list)) or body is None:
                return _as_requests(body, self.spec.display_name)
        return [self.build_request(mapping.endpoint, body, ns)]

    def build_request(self, endpoint: str, body: Any, ns: dict[str, Any]) -> VendorRequest:
        ep = self.endpoints.get(endpoint)
        if ep is None:
            raise SpecError(f"{self.spec.name}: endpoint {endpoint!r} is not defined in spec.yaml")
        url = ep.url.render(ns)
        headers = {k: _s(t.render(ns)) for k, t in ep.headers.items()}
        params = {k: t.render(ns) for k, t in ep.params.items()}
        self._apply_auth(ns, headers, params)
        # The endpoint name rides along (never on the wire): several endpoints may share one URL.
        req: dict[str, Any] = {"method": ep.method, "url": url, "headers": headers, "params": params}
        req["meta"] = {"endpoint": endpoint}
        fmt = ep.body_format
        if fmt == "json":
            req["json"] = body
        elif fmt == "json_array":
            req["json"] = body if isinstance(body, list) else [body]
        elif fmt == "form":
            req["form"] = body
        elif fmt == "text":
            req["text"] = body if isinstance(body, str) else _s(body)
        if fmt in ("json", "json_array") and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        return VendorRequest.model_validate(req)

    def _apply_auth(self, ns: dict[str, Any], headers: dict[str, str], params: dict[str, Any]) -> None:
        a = self.spec.auth
        if a.type == "none":
            return
        r = {k: _s(t.render(ns)) for k, t in self.auth.items()}
        if a.type == "basic":
            cred = f"{r['username']}:{r.get('password', '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        elif a.type == "bearer":
            headers["Authorization"] = f"Bearer {r['token']}"
        elif a.type == "header":
            headers[a.name or "Authorization"] = r["value"]
        elif a.type == "query":
            params[a.name or "api_key"] = r["value"]

    # -- delivery ----------------------------------------------------------------------------------
    def batch(
        self, requests: list[VendorRequest], config: dict[str, Any] | None = None
    ) -> list[tuple[list[int], VendorRequest]]:
        """Merge requests for delivery; returns (input indices, request) pairs in order.

        Each request merges under its endpoint's ``batch`` rules, or the spec-wide ``batching``
        block. Requests read back from the queue carry no endpoint tag, so the endpoint is found
        from the URL; endpoints sharing a method and URL should therefore share batch rules.
        """
        settings = self.settings(config)
        if "batch" in self.hooks:
            kit = Kit(self, settings, TransformContext.at(None), self.vars_for(settings))
            return self.hooks["batch"](requests, kit)
        b = self.spec.batching
        if not b.enabled:
            return [([i], r) for i, r in enumerate(requests)]
        default = BatchPlan.from_batching(b) if b.max_events > 1 else None
        plans: dict[str, BatchPlan] = {}
        for name, ep in self.spec.endpoints.items():
            if ep.batch is not None:
                merged_url = None
                if ep.batch.merged_endpoint:
                    ns = {"event": {}, "settings": settings, "vars": self.vars_for(settings)}
                    merged_url = self.endpoints[ep.batch.merged_endpoint].url.render(ns)
                plans[name] = BatchPlan.from_endpoint(name, ep.batch, merged_url)
        return merge_planned(requests, lambda r: plans.get(self.endpoint_of(r) or "", default))

    def endpoint_of(self, req: VendorRequest) -> str | None:
        """Which endpoint produced ``req``: its tag if it has one, else the best URL-template match."""
        tagged = req.meta.get("endpoint")
        if isinstance(tagged, str) and tagged in self.endpoints:
            return tagged
        url = req.url.split("?", 1)[0]
        best: tuple[int, str] | None = None
        for name, ep in self.endpoints.items():
            if ep.url_pattern.match(url):
                # The most specific template (most literal characters) wins; the same method first.
                score = ep.url_literal_len + (1000 if ep.method == req.method.upper() else 0)
                if best is None or score > best[0]:
                    best = (score, name)
        return best[1] if best else None

    def classify(
        self, status: int, headers: dict[str, str] | None = None, body: bytes | str | None = None
    ) -> Classification:
        return classify_response(status, headers, body, self.spec.responses)

    def check_config(self, config: dict[str, Any] | None) -> dict[str, Any]:
        """Validate a config up front (the pipeline does this at start-up, not per event)."""
        return self.settings(config)


def _s(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else str(v)


def _as_requests(result: Any, name: str) -> list[VendorRequest]:
    if result is None:
        return []
    items = result if isinstance(result, list) else [result]
    out = []
    for r in items:
        if isinstance(r, VendorRequest):
            out.append(r)
        elif isinstance(r, dict):
            out.append(VendorRequest.model_validate(r))
        else:
            raise ConfigurationError(f"{name}: mapper returned {type(r).__name__}, expected VendorRequest")
    return out
