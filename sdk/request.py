"""The one shape every connector produces: a vendor HTTP request, before it is sent."""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, model_validator

BodyKind = Literal["json", "form", "text"]


class VendorRequest(BaseModel):
    """A request to a vendor. Exactly one of ``json``/``form``/``text`` may be set (or none, for GET).

    Kept transport-neutral (no httpx objects) so that it can be stored in the
    queue as JSON, compared in tests, and replayed from the dead-letter store.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: str = "POST"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, Any] | None = None
    text: str | None = None
    # The spec endpoint this request was built for: stored with it, so the router applies that endpoint's
    # batching rules even where several endpoints share a method and URL. Never sent to the vendor.
    endpoint: str | None = None
    # Non-HTTP destinations (e.g. Redis): the transport's name and its operation object.
    transport: str = "http"
    raw: Any = None
    # Declared steps run by the sender right before this request (``sdk/steps.py``): a lookup whose
    # answer fills ``${lookup}`` and may switch the request to its ``found`` variant. Stored and shown.
    steps: dict[str, Any] | None = None
    # Connector-private hints that are neither stored nor sent.
    meta: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="after")
    def _one_body(self) -> VendorRequest:
        bodies = [b for b in (self.json_body, self.form, self.text) if b is not None]
        if len(bodies) > 1:
            raise ValueError("a request carries at most one body: json, form or text")
        return self

    @classmethod
    def build(
        cls,
        method: str,
        url: str,
        headers: dict[str, str],
        params: dict[str, Any],
        json_body: Any = None,
        form: dict[str, Any] | None = None,
        text: str | None = None,
        endpoint: str | None = None,
        transport: str = "http",
        raw: Any = None,
    ) -> VendorRequest:
        """The engine's constructor: the values are already checked, so skip validation (hot path).

        Equal to ``VendorRequest(method=..., url=..., ...)`` with the same values (a test holds it so).
        """
        self = _new(cls)
        values = _PROTOTYPE.copy()  # (a copy of a same-shaped dict is cheaper than a literal)
        values["method"], values["url"], values["headers"], values["params"] = method, url, headers, params
        values["json_body"], values["form"], values["text"] = json_body, form, text
        values["endpoint"] = endpoint
        if transport != "http":
            values["transport"], values["raw"] = transport, raw
        values["meta"] = {}
        _set_attr(self, "__dict__", values)
        _set_fields(self, set(_BUILD_FIELDS if transport == "http" else _RAW_FIELDS))
        _set_extra(self, None)
        _set_private(self, None)
        return self

    @property
    def body_kind(self) -> BodyKind | None:
        if self.json_body is not None:
            return "json"
        if self.form is not None:
            return "form"
        if self.text is not None:
            return "text"
        return None

    def to_wire(self) -> dict[str, Any]:
        """The dict written by ``sluice transform`` and stored in delivery jobs."""
        if self.transport != "http":
            out_raw: dict[str, Any] = {"transport": self.transport, "raw": self.raw}
            if self.endpoint is not None:
                out_raw["endpoint"] = self.endpoint
            return out_raw
        out: dict[str, Any] = {
            "method": self.method,
            "url": self.url,
            "headers": dict(self.headers),
            "params": dict(self.params),
        }
        kind = self.body_kind
        if kind == "json":
            out["json"] = self.json_body
        elif kind == "form":
            out["form"] = self.form
        elif kind == "text":
            out["text"] = self.text
        if self.endpoint is not None:
            out["endpoint"] = self.endpoint
        if self.steps is not None:
            out["steps"] = self.steps
        return out

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> VendorRequest:
        if data.get("transport", "http") != "http" and "url" not in data:
            return cls.model_validate({"url": "", **data})
        return cls.model_validate(data)

    def body_bytes(self) -> bytes:
        """The encoded body, as it goes on the wire (used for size limits and sending)."""
        kind = self.body_kind
        if kind == "json":
            return json.dumps(self.json_body, separators=(",", ":"), ensure_ascii=False).encode()
        if kind == "form":
            return urlencode(_form_pairs(self.form or {})).encode()
        if kind == "text":
            return (self.text or "").encode()
        return b""

    def content_type(self) -> str | None:
        return {
            "json": "application/json",
            "form": "application/x-www-form-urlencoded",
            "text": None,
        }.get(self.body_kind or "")


_BUILD_FIELDS = frozenset({"method", "url", "headers", "params", "json_body", "form", "text", "endpoint"})
_RAW_FIELDS = _BUILD_FIELDS | {"transport", "raw"}
_PROTOTYPE: dict[str, Any] = {
    "method": "POST", "url": "", "headers": None, "params": None, "json_body": None, "form": None,
    "text": None, "endpoint": None, "transport": "http", "raw": None, "steps": None, "meta": None,
}  # fmt: skip
# ``build`` sets pydantic's instance slots through their descriptors: the same state a validated
# construction leaves, without BaseModel.__setattr__'s checks (they cost more than the rest of build).
_new = object.__new__
_set_attr = object.__setattr__
_set_fields = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _form_pairs(form: dict[str, Any]) -> list[tuple[str, str]]:
    """A list of strings is a repeated field (``k=a&k=b``), the standard form encoding of a list; vendors
    such as Amplitude's groupidentify/usermap take one JSON object per repeated field."""
    pairs: list[tuple[str, str]] = []
    for k, v in form.items():
        if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
            pairs.extend((k, x) for x in v)
        else:
            pairs.append((k, form_value(v)))
    return pairs


def form_value(v: Any) -> str:
    """How one form field value is written: objects as compact JSON, booleans lower-case, null empty."""
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)
