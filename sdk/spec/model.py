"""The destination spec language, as a pydantic model.

A ``spec.yaml`` is validated against these classes, so a typo in a key is an
error that names the key rather than a setting silently ignored. Every part
has defaults that fit most vendors, so a simple destination's spec stays short.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sdk.classify import ResponseRule

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias")
EventType = Literal["track", "identify", "page", "screen", "group", "alias"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TemplateVar(_Strict):
    """A value computed from a setting, for use in templates as ``{{ vars.<name> }}``.

    Typical use is a regional host:
    ``{setting: residencyServer, map: {EU: api.eu.x.com}, default: api.x.com}``.
    """

    setting: str
    map: dict[str, Any] = Field(default_factory=dict)
    default: Any = None


class EndpointBatch(_Strict):
    """Batching rules of one endpoint, where they differ from the spec-wide ``batching`` block.

    Vendors cap each array of a bulk body separately (Braze: 75 events and 75 purchases per
    request), take merged uploads on another URL (Amplitude's /batch), or want even a single
    operation wrapped in an envelope (Customer.io's ``{"batch": [...]}``).
    """

    max_events: int = Field(default=1, ge=1, description="mapped requests merged into one, at most")
    max_bytes: int = Field(default=1_000_000, ge=1)
    lists: dict[str, int | None] = Field(
        default_factory=dict,
        description="body paths of arrays to concatenate, each with a cap on merged length (null: none)",
    )
    wrap: str | None = Field(
        default=None, description="put every body (merged or not) in a list under this key before sending"
    )
    merged_endpoint: str | None = Field(
        default=None, description="endpoint whose URL a merged request (2 or more) is sent to"
    )


class Endpoint(_Strict):
    """Where one kind of request goes.

    Strings may use ``{{ settings.x }}``, ``{{ vars.x }}`` and ``{{ event.path }}``.
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    body_format: Literal["json", "json_array", "form", "text", "none"] = "json"
    openapi_operation: str | None = Field(
        default=None, description="'METHOD /path' of the vendor OpenAPI operation this endpoint implements"
    )
    batch: EndpointBatch | None = None


class Auth(_Strict):
    """How credentials are attached to every request; values are templates over settings."""

    type: Literal["none", "basic", "bearer", "header", "query"] = "none"
    username: str | None = None
    password: str | None = None
    token: str | None = None
    name: str | None = Field(default=None, description="header or query parameter name")
    value: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        need = {
            "basic": ("username",),
            "bearer": ("token",),
            "header": ("name", "value"),
            "query": ("name", "value"),
        }.get(self.type, ())
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"auth type {self.type!r} needs {', '.join(missing)}")
        return self


class Field_(_Strict):
    """One destination field: where its value comes from and how it is shaped.

    ``from`` lists source paths into the event (``properties.revenue``,
    ``context.traits.email``); the first present, non-null one wins. Paths that
    start with ``$settings.`` read the destination settings; ``$now`` is the
    context clock; ``$message_id`` the event's messageId or a context id.
    """

    from_: list[str] = Field(default_factory=list, alias="from")
    value: Any = None
    default: Any = None
    required: bool = False
    error: str | None = Field(default=None, description="message when a required field is missing")
    format: list[str | dict[str, Any]] = Field(default_factory=list)
    omit: list[str] = Field(default_factory=list, description="keys to drop from an object value")
    omit_mapped: bool = Field(
        default=False, description="drop keys that other fields of this mapping consumed"
    )
    keep_null: bool = False
    keep_empty: bool = True
    if_setting: dict[str, Any] | None = None

    @field_validator("from_", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class FieldSet(_Strict):
    """Body fields; keys may be dotted (``user.email``) to build nested objects."""

    body: dict[str, Field_ | str] = Field(default_factory=dict)

    @field_validator("body", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        return {k: ({"from": [x]} if isinstance(x, str) else x) for k, x in v.items()}


class EventMapping(FieldSet):
    """How one event type becomes a request: which endpoint, and the body's fields."""

    endpoint: str = "default"


class Batching(_Strict):
    """How the router may merge several mapped requests into one.

    Requests merge when method, URL, headers and params are equal. For a JSON
    body, the list at ``list_path`` is concatenated (other keys come from the
    first request); a ``json_array`` body is concatenated whole.
    """

    enabled: bool = False
    max_events: int = Field(default=1, ge=1)
    max_bytes: int = Field(default=1_000_000, ge=1)
    list_path: str | None = None


class RateLimit(_Strict):
    requests_per_second: float | None = Field(default=None, gt=0)
    burst: int = Field(default=1, ge=1)


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

    required: dict[str, list[str]] = Field(default_factory=dict)


class Vendor(_Strict):
    api_version: str | None = None
    docs: list[str] = Field(default_factory=list)


class DestinationSpec(_Strict):
    """A destination, complete: identity, settings, endpoints, auth, mappings, limits, error rules."""

    spec_version: int = 1
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    display_name: str
    description: str = ""
    aliases: list[str] = Field(default_factory=list)
    rudder_type: str | None = Field(default=None, description="RudderStack destination type, e.g. AM")
    vendor: Vendor = Field(default_factory=Vendor)
    settings: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON Schema of the settings; mark secrets with `secret: true`",
    )
    event_types: list[EventType]
    vars: dict[str, TemplateVar] = Field(default_factory=dict)
    endpoints: dict[str, Endpoint]
    auth: Auth = Field(default_factory=Auth)
    common: FieldSet | None = Field(default=None, description="fields shared by every event type")
    mappings: dict[EventType, EventMapping] = Field(default_factory=dict)
    batching: Batching = Field(default_factory=Batching)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    responses: list[ResponseRule] = Field(default_factory=list)
    openapi: OpenAPIRef | None = None
    require_https: bool = Field(default=True, description="false only for user-supplied URLs (webhooks)")
    contract: Contract | None = Field(default=None, description="vendor-required fields the harness checks")
    request_schemas: dict[str, str] = Field(
        default_factory=dict,
        description="endpoint name -> JSON Schema file (relative to the integration folder) of the request "
        "body "
        "that endpoint sends, written from the vendor docs; for vendors that publish no OpenAPI description",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DestinationSpec:
        for etype, m in self.mappings.items():
            if m.endpoint not in self.endpoints:
                raise ValueError(
                    f"mappings.{etype}.endpoint is {m.endpoint!r}, but endpoints only define "
                    f"{sorted(self.endpoints)}; add it under endpoints or fix the name"
                )
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
            if b.merged_endpoint and b.merged_endpoint not in self.endpoints:
                raise ValueError(
                    f"endpoints.{name}.batch.merged_endpoint {b.merged_endpoint!r} is not defined"
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
