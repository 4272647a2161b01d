"""The one shape every connector produces: a vendor HTTP request, before it is sent."""

from __future__ import annotations

import copy
import json
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, model_validator

BodyKind = Literal["json", "form", "text"]


class _RequestFields(BaseModel):
    """How a request given from outside the engine is checked (a test, a stored job, a replay): the types
    and the one-body rule. ``VendorRequest`` takes its values from here."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: str = "POST"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    form: dict[str, Any] | None = None
    text: str | None = None
    endpoint: str | None = None
    transport: str = "http"
    raw: Any = None
    steps: dict[str, Any] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_body(self) -> _RequestFields:
        bodies = [b for b in (self.json_body, self.form, self.text) if b is not None]
        if len(bodies) > 1:
            raise ValueError("a request carries at most one body: json, form or text")
        return self


class VendorRequest:
    """A request to a vendor. Exactly one of ``json``/``form``/``text`` may be set (or none, for GET).

    Kept transport-neutral (no httpx objects) so that it can be stored in the
    queue as JSON, compared in tests, and replayed from the dead-letter store.

    A plain slotted class rather than a pydantic model: the engine makes one per request on its hot path
    (``build``, values it has already checked), where a model's construction cost more than mapping a
    simple event. Requests from anywhere else (keyword construction, ``from_wire``, ``model_validate``)
    are validated by ``_RequestFields``, with pydantic's errors.
    """

    __slots__ = ("method", "url", "headers", "params", "json_body", "form", "text", "endpoint", "transport",
                 "raw", "steps", "meta")  # fmt: skip

    method: str
    url: str
    headers: dict[str, str]
    params: dict[str, Any]
    json_body: Any
    form: dict[str, Any] | None
    text: str | None
    # The spec endpoint this request was built for: stored with it, so the router applies that endpoint's
    # batching rules even where several endpoints share a method and URL. Never sent to the vendor.
    endpoint: str | None
    # Non-HTTP destinations (e.g. Redis): the transport's name and its operation object.
    transport: str
    raw: Any
    # Declared steps run by the sender right before this request (``sdk/steps.py``): a lookup whose
    # answer fills ``${lookup}`` and may switch the request to its ``found`` variant. Stored and shown.
    steps: dict[str, Any] | None
    # Connector-private hints that are neither stored nor sent.
    meta: dict[str, Any]

    def __init__(self, **values: Any) -> None:
        _take_fields(self, _RequestFields(**values))

    @classmethod
    def model_validate(cls, data: Any) -> VendorRequest:
        """A request from its wire dict (``json`` or ``json_body``), validated; pydantic's error if not."""
        self = _new(cls)
        _take_fields(self, _RequestFields.model_validate(data))
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
        self.method = method
        self.url = url
        self.headers = headers
        self.params = params
        self.json_body = json_body
        self.form = form
        self.text = text
        self.endpoint = endpoint
        self.transport = transport
        self.raw = raw
        self.steps = None
        self.meta = {}
        return self

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> VendorRequest:
        """A copy with some fields replaced (as pydantic's ``model_copy``: the update is not validated)."""
        other = _new(type(self))
        _take_fields(other, self)
        if deep:
            other = copy.deepcopy(other)
        for name, value in (update or {}).items():
            setattr(other, "json_body" if name == "json" else name, value)
        return other

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the model it replaced

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in _FIELDS if n != "meta")
        return f"VendorRequest({shown})"

    def __copy__(self) -> VendorRequest:
        return self.model_copy()

    def __getstate__(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in _FIELDS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for n in _FIELDS:
            setattr(self, n, state[n])

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


_FIELDS = VendorRequest.__slots__
_new = object.__new__


def _take_fields(target: VendorRequest, source: Any) -> None:
    """Every field of ``source`` (a request, or the checked ``_RequestFields``) onto ``target``."""
    for name in _FIELDS:
        setattr(target, name, getattr(source, name))


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
