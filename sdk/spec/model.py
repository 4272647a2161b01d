"""The destination spec language (version 2), as a pydantic model.

A ``spec.yaml`` is validated against these classes, so a misspelt key is an error that names the key
rather than a setting silently ignored; the expressions inside (fields, conditions, templates) are
compiled and checked when the connector loads (``sdk/mapping``). ``docs/spec-language.md`` is the
reference, and ``sluice schema spec`` prints this model's JSON Schema.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator, model_validator

from sdk.classify import ResponseRule

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
EventType = Literal["track", "identify", "page", "screen", "group", "alias"]

_EXPR_SCHEMA = {
    "description": (
        "A value expression: an expression string (`traits.email ?? context.traits.email | lower`), a "
        'template (`"Viewed {{ name }} Page"`), a literal number/boolean/null, a list of expressions, a '
        "directive object (from, value, template, first, object, merge, array, each, if, switch, lookup, "
        "rest, sum, product, count, call, entries, get, without, render; modifiers format, default, "
        "required, error, when, omit, pick, rename, keep_null, lenient, omit_empty) or an object of fields. "
        "See docs/spec-language.md."
    ),
}
_COND_SCHEMA = {
    "description": (
        "A condition: an expression (truthy), {present: X}, {absent: X}, {has: X}, "
        "{of: X, eq|ne|in|not_in|matches|gt|ge|lt|le|contains|starts_with|type: operand, ci?, loose?}, "
        "{age_of: X, at?, gt|ge|lt|le: duration}, {not: C}, {all: [C]}, {any: [C]}. "
        "See docs/spec-language.md."
    ),
}
Expr = Annotated[Any, WithJsonSchema(_EXPR_SCHEMA)]
Cond = Annotated[Any, WithJsonSchema(_COND_SCHEMA)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EndpointBatch(_Strict):
    """Batching rules of one endpoint, where they differ from the spec-wide ``batching`` block.

    Vendors cap each array of a bulk body separately (Braze: 75 events and 75 purchases per
    request), take merged uploads on another URL (Amplitude's /batch), want even a single
    operation wrapped in an envelope (Customer.io's ``{"batch": [...]}``), keep an id that must
    match inside the body (Klaviyo's list of a subscription job, TikTok's ``test_event_code``:
    ``group_by``), or ask that every request go to the bulk endpoint so that events keep their order
    (Iterable: ``deliver_to``).
    """

    max_events: int = Field(default=1, ge=1, description="mapped requests merged into one, at most")
    max_bytes: int = Field(
        default=1_000_000, ge=1, description="encoded body size of a merged request, at most"
    )
    lists: dict[str, int | None] = Field(
        default_factory=dict,
        description="body paths of arrays to concatenate, each with a cap on merged length (null: none)",
    )
    wrap: str | None = Field(
        default=None, description="put every body (merged or not) in a list under this key before sending"
    )
    hoist: list[str] = Field(
        default_factory=list,
        description="with `wrap`: top-level keys moved out of each body into the envelope beside the list "
        "(PostHog's {api_key, batch: [...]}); only bodies with equal values for them merge",
    )
    merged_endpoint: str | None = Field(
        default=None, description="endpoint whose URL a merged request (2 or more) is sent to"
    )
    group_by: list[str] = Field(
        default_factory=list,
        description="body paths whose values must be equal for requests to merge (an id the vendor reads "
        "from the body rather than the URL, e.g. one subscription job per list, or an envelope field "
        "that applies to the whole request such as a test-event code)",
    )
    deliver_to: str | None = Field(
        default=None,
        description="endpoint every request of this one is delivered to, single or merged (a vendor's bulk "
        "endpoint, in the `wrap` envelope), checked against that endpoint's vendor contract",
    )


class Endpoint(_Strict):
    """Where one kind of request goes. ``url``, ``headers`` and ``params`` are templates; parts that
    read only settings and vars are computed once per config."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="POST", description="HTTP method"
    )
    url: str = Field(default="", description="URL template, e.g. https://{{ vars.host }}/2/httpapi")
    transport: str = Field(
        default="http",
        pattern=r"^[a-z][a-z0-9_]*$",
        description="how requests reach the vendor: http, or a registered non-HTTP transport (see "
        "sdk/transports, e.g. redis) whose operation object is the mapped body, sent as the request's `raw`",
    )
    headers: dict[str, str] = Field(default_factory=dict, description="header name -> template")
    params: dict[str, str] = Field(default_factory=dict, description="query parameter -> template")
    body_format: Literal["json", "json_array", "form", "text", "xml", "query", "none"] = Field(
        default="json",
        description="json: the body as JSON; json_array: the body wrapped in a JSON list; form: "
        "x-www-form-urlencoded; text: the body as text; xml: the body object as XML (one root key); query: "
        "the body object as URL query parameters; none: no body (GET)",
    )
    openapi_operation: str | None = Field(
        default=None, description="'METHOD /path' of the vendor OpenAPI operation this endpoint implements"
    )
    batch: EndpointBatch | None = None
    lookup: LookupStep | None = Field(
        default=None,
        description="this endpoint is a lookup step: its request is not sent on its own but right before "
        "the request that follows it in the mapping, whose `${lookup}` placeholders take the found value",
    )
    found: str | None = Field(
        default=None,
        description="when the lookup step before this request found a value, send the request to this "
        "endpoint instead (same body); e.g. create -> update",
    )

    @model_validator(mode="after")
    def _transport(self) -> Endpoint:
        if self.transport == "http":
            if not self.url:
                raise ValueError("an HTTP endpoint needs a `url`")
            return self
        from sdk.transports import names

        if self.transport not in names():
            known = ", ".join(["http", *sorted(names())])
            raise ValueError(f"unknown transport {self.transport!r}; known: {known}")
        if self.url or self.headers or self.params or self.batch or self.openapi_operation:
            raise ValueError(
                f"a {self.transport} endpoint has no url, headers, params, batch or openapi_operation: "
                "where it connects comes from the settings, what it does is the body"
            )
        return self


class LookupStep(_Strict):
    """What a lookup step reads from its JSON answer. A missing or empty value means "not found"."""

    take: str = Field(description="path of the value in the answer, e.g. searchRecords.0.Id")


Endpoint.model_rebuild()


class TokenExchange(_Strict):
    """An OAuth token request (``auth.type: oauth_token``), made by the sender once per destination and
    cached until ``expires_in`` (or ``ttl_seconds``) runs out or the vendor answers 401. Requests carry
    ``${auth.access_token}`` (as ``Authorization: Bearer``) and may put ``${auth.<field>}`` of the token
    answer (e.g. an instance URL) in their URL; placeholders are filled in at send time only."""

    endpoint: str = Field(description="name of the endpoint the token request is sent to")
    form: dict[str, str] = Field(
        default_factory=dict,
        description="form fields (templates over settings and vars); empty values are left out",
    )
    token_path: str = Field(default="access_token", description="path of the token in the answer")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="placeholder name -> answer path, e.g. instance_url: instance_url (${auth.instance_url})",
    )
    expires_in_path: str = Field(default="expires_in", description="path of the token's lifetime (seconds)")
    ttl_seconds: int = Field(default=3600, ge=1, description="lifetime assumed when the answer gives none")


class Auth(_Strict):
    """How credentials are attached to every request; values are templates over settings."""

    type: Literal["none", "basic", "bearer", "header", "query", "oauth_token"] = Field(
        default="none",
        description="basic: username/password; bearer: token; header or query: name + value; "
        "oauth_token: a token exchange (see `token`); none",
    )
    username: str | None = None
    password: str | None = None
    token: str | None = None
    name: str | None = Field(default=None, description="header or query parameter name")
    value: str | None = None
    exchange: TokenExchange | None = Field(default=None, description="oauth_token: the token request")

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        need = {
            "basic": ("username",),
            "bearer": ("token",),
            "header": ("name", "value"),
            "query": ("name", "value"),
            "oauth_token": ("exchange",),
        }.get(self.type, ())
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"auth type {self.type!r} needs {', '.join(missing)}")
        return self


class Check(_Strict):
    """A rule an event must pass before any request is built: ``when`` the condition holds, stop with
    one of ``error`` (the event is wrong), ``config_error`` (the settings are wrong), ``unsupported``
    (the destination does not take it) or ``drop`` (send nothing, not an error). Messages are templates."""

    when: Cond
    error: str | None = None
    config_error: str | None = None
    unsupported: str | None = None
    drop: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Check:
        given = [k for k in ("error", "config_error", "unsupported", "drop") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a check has exactly one of error, config_error, unsupported, drop; got {given}"
            )
        return self


class RequestSpec(_Strict):
    """One vendor request an event may cause."""

    name: str | None = Field(default=None, description="a label for messages and tests")
    when: Cond | None = Field(default=None, description="only when this condition holds")
    each: Expr | None = Field(
        default=None, description="one request per element of this list (`item`, `index` inside)"
    )
    endpoint: str = Field(description="name of an endpoint under `endpoints`")
    body: Expr = Field(default=None, description="the body (usually an object of fields)")
    headers: Expr | None = Field(default=None, description="extra headers from the event (an object)")
    params: Expr | None = Field(default=None, description="extra query parameters from the event (an object)")
    refine: str | None = Field(
        default=None,
        description="name of a mapper.py function (body, event, settings, ctx) -> body | [bodies] | None",
    )


class EventMapping(_Strict):
    """What one event type becomes.

    ``requests``: every request whose ``when`` holds, in order (fan-out). ``cases``: the first request
    whose ``when`` holds. A single request may also be written inline (``endpoint`` + ``body``).
    """

    let: dict[str, Expr] = Field(default_factory=dict, description="values for this event type")
    checks: list[Check] = Field(default_factory=list, description="rules for this event type (see Check)")
    requests: list[RequestSpec] | None = None
    cases: list[RequestSpec] | None = None

    @model_validator(mode="before")
    @classmethod
    def _inline(cls, v: Any) -> Any:
        if isinstance(v, list):
            return {"requests": v}
        if isinstance(v, dict) and "endpoint" in v:
            inline_keys = set(RequestSpec.model_fields)
            req = {k: x for k, x in v.items() if k in inline_keys}
            rest = {k: x for k, x in v.items() if k not in inline_keys}
            if "requests" in rest or "cases" in rest:
                raise ValueError(
                    "write the request inline (endpoint, body) or under requests/cases, not both"
                )
            return {**rest, "requests": [req]}
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> EventMapping:
        if (self.requests is None) == (self.cases is None):
            raise ValueError("a mapping has `requests` (all that apply) or `cases` (the first that applies)")
        return self

    @property
    def request_specs(self) -> list[RequestSpec]:
        return self.requests if self.requests is not None else self.cases or []


class Batching(_Strict):
    """How the router may merge several mapped requests into one.

    Requests merge when endpoint, method, URL, headers and params are equal. For a JSON body, the list
    at ``list_path`` is concatenated (other keys come from the first request); a ``json_array`` body is
    concatenated whole.
    """

    enabled: bool = Field(default=False, description="whether the router may merge requests at all")
    max_events: int = Field(default=1, ge=1, description="jobs merged into one request, at most")
    max_bytes: int = Field(
        default=1_000_000, ge=1, description="encoded body size of a merged request, at most"
    )
    list_path: str | None = Field(default=None, description="JSON body: the list concatenated when merging")


class RateLimit(_Strict):
    requests_per_second: float | None = Field(default=None, gt=0, description="sustained request rate")
    burst: int = Field(default=1, ge=1, description="requests that may go at once after a quiet spell")


class OpenAPIRef(_Strict):
    """The vendor's own API description, reduced to the operations this connector uses."""

    document: str = Field(description="path, relative to the integration folder, of the reduced extract")
    source: str | None = None
    version: str | None = None


class Contract(_Strict):
    """What the vendor insists on, checked by the contract harness on every produced request (fuzz included).

    ``required`` maps an endpoint name to body paths that must be present and non-null; ``a.b`` walks
    objects, ``items[].id`` checks every element of a list, and a JSON-array body is checked per element.
    """

    required: dict[str, list[str]] = Field(
        default_factory=dict, description="endpoint name -> body paths the vendor requires"
    )


class Vendor(_Strict):
    api_version: str | None = Field(default=None, description="the vendor API version the mappings follow")
    docs: list[str] = Field(default_factory=list, description="links to the vendor documentation used")


class DestinationSpec(_Strict):
    """A destination, complete: identity, settings, endpoints, auth, mappings, limits, error rules."""

    spec_version: Literal[2] = Field(description="the spec language version; this reference is version 2")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the integration folder's name")
    display_name: str = Field(description="the vendor's product name, as users write it")
    description: str = Field(default="", description="one line: what the destination does")
    aliases: list[str] = Field(default_factory=list, description="other names in configs and `integrations`")
    rudder_type: str | None = Field(default=None, description="RudderStack destination type, e.g. AM")
    vendor: Vendor = Field(default_factory=Vendor)
    settings: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the settings; mark secrets with `secret: true`",
    )
    ignored_settings: list[str] = Field(
        default_factory=list,
        description="settings keys accepted without effect (device-mode or UI-only keys of migrated configs)",
    )
    event_types: list[EventType] = Field(
        description="event types the destination takes; each needs a mapping"
    )
    vars: dict[str, Expr] = Field(
        default_factory=dict,
        description="values computed once per config from settings (e.g. a regional host)",
    )
    endpoints: dict[str, Endpoint] = Field(description="named places requests go")
    auth: Auth = Field(default_factory=Auth)
    let: dict[str, Expr] = Field(default_factory=dict, description="named values, computed once per event")
    checks: list[Check] = Field(default_factory=list, description="rules every event must pass")
    mappings: dict[EventType, EventMapping] = Field(
        default_factory=dict, description="what each event type becomes (see EventMapping)"
    )
    batching: Batching = Field(default_factory=Batching)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    responses: list[ResponseRule] = Field(
        default_factory=list,
        description="how vendor answers are classified; first match wins, defaults after",
    )
    openapi: OpenAPIRef | None = None
    require_https: bool = Field(default=True, description="false only for user-supplied URLs (webhooks)")
    contract: Contract | None = Field(default=None, description="vendor-required fields the harness checks")
    request_schemas: dict[str, str] = Field(
        default_factory=dict,
        description="endpoint name -> JSON Schema file (relative to the integration folder) of the request "
        "body that endpoint sends, written from the vendor docs (for vendors without an OpenAPI description)",
    )

    @field_validator("spec_version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> Any:
        if v == 1:
            raise ValueError(
                "spec_version 1 is no longer supported; port the spec to version 2 (docs/spec-language.md)"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DestinationSpec:
        for etype, m in self.mappings.items():
            if etype not in self.event_types:
                raise ValueError(f"mappings.{etype} is given but {etype!r} is not in event_types")
            for i, r in enumerate(m.request_specs):
                if r.endpoint not in self.endpoints:
                    raise ValueError(
                        f"mappings.{etype} request {i} uses endpoint {r.endpoint!r}, but endpoints only "
                        f"define {sorted(self.endpoints)}; add it under endpoints or fix the name"
                    )
        for etype in self.event_types:
            if etype not in self.mappings:
                raise ValueError(f"event_types lists {etype!r} but mappings.{etype} is missing")
        for name, ep in self.endpoints.items():
            for ref in (ep.found,):
                if ref is not None and ref not in self.endpoints:
                    raise ValueError(f"endpoints.{name}.found {ref!r} is not defined")
        if self.auth.exchange is not None and self.auth.exchange.endpoint not in self.endpoints:
            raise ValueError(f"auth.exchange.endpoint {self.auth.exchange.endpoint!r} is not defined")
        for name in self.request_schemas:
            if name not in self.endpoints:
                raise ValueError(
                    f"request_schemas.{name} names no endpoint; use one of {sorted(self.endpoints)}"
                )
        for name, ep in self.endpoints.items():
            b = ep.batch
            if b is None:
                continue
            if not self.batching.enabled:
                raise ValueError(
                    f"endpoints.{name}.batch is set but batching.enabled is false; the router only merges "
                    f"(and wraps) requests when batching is enabled: set `batching: {{enabled: true}}`"
                )
            if b.max_events > self.batching.max_events:
                raise ValueError(
                    f"endpoints.{name}.batch.max_events ({b.max_events}) exceeds batching.max_events "
                    f"({self.batching.max_events}), which bounds how many jobs the router claims per batch"
                )
            if b.hoist and not b.wrap:
                raise ValueError(
                    f"endpoints.{name}.batch.hoist needs `wrap`: the keys move into its envelope"
                )
            if b.merged_endpoint and b.merged_endpoint not in self.endpoints:
                raise ValueError(
                    f"endpoints.{name}.batch.merged_endpoint {b.merged_endpoint!r} is not defined"
                )
            if b.deliver_to and b.deliver_to not in self.endpoints:
                raise ValueError(f"endpoints.{name}.batch.deliver_to {b.deliver_to!r} is not defined")
            if b.deliver_to and b.merged_endpoint:
                raise ValueError(
                    f"endpoints.{name}.batch: give deliver_to (every request goes there) or merged_endpoint "
                    f"(only merged ones do), not both"
                )
        return self

    @property
    def all_names(self) -> list[str]:
        names = [self.name, self.display_name, *self.aliases]
        if self.rudder_type:
            names.append(self.rudder_type)
        return names

    def secret_settings(self) -> list[str]:
        props = (self.settings or {}).get("properties", {}) or {}
        return [k for k, v in props.items() if isinstance(v, dict) and v.get("secret")]

    def secret_values(self, config: dict[str, Any]) -> list[str]:
        """Every value in ``config`` the settings schema marks ``secret: true``: top-level settings, and
        properties of nested objects and of list rows (Slack's per-channel webhook URLs), longest first."""
        return sorted(set(self.secret_paths(config).values()), key=len, reverse=True)

    def secret_paths(self, config: dict[str, Any]) -> dict[str, str]:
        """The same values keyed by where they sit in ``config`` (``channels.0.webhookUrl``): a stable
        name the router uses to put a sealed credential back from the destination's current config."""
        found: dict[str, str] = {}
        _collect_secrets(self.settings or {}, config, found, False, "")
        return found


def _collect_secrets(
    schema: Any, value: Any, out: dict[str, str], secret: bool, path: str, depth: int = 0
) -> None:
    if depth > 16 or not isinstance(schema, dict):
        return
    secret = secret or bool(schema.get("secret"))
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for k, v in value.items():
            _collect_secrets(props.get(k) or {}, v, out, secret, f"{path}.{k}" if path else str(k), depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _collect_secrets(schema.get("items") or {}, v, out, secret, f"{path}.{i}", depth + 1)
    elif secret and isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        out[path] = str(value)
