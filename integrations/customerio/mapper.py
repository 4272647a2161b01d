"""Customer.io routing that the spec language cannot say.

Why a mapper: one event type fans out to different Track API operations depending on
who the person is and what happened:

* a known person (userId, else email) gets ``/customers/{id}/...``; an unknown one gets an
  anonymous event at ``/events`` (whose name Customer.io caps at 100 characters);
* mobile lifecycle events carrying a push token register (``Application Installed``/``Opened``
  or the configured ``deviceTokenEventName``) or delete (``Application Uninstalled``) a device;
* identify spreads the traits at the top level, as Customer.io attributes are flat;
* group and alias identify people by ``email`` when the id looks like an address.

Bodies come from the spec's mappings (``kit.map``); this module only picks the endpoint and
the identifier and reshapes what mappings cannot. Everything is pure: no clock, no randomness.
"""

from __future__ import annotations

import re
from typing import Any

from sdk.errors import InstrumentationError
from sdk.mapping import formats
from sdk.mapping.paths import get
from sdk.mapping.values import as_identifier
from sdk.request import VendorRequest

EU_HOST = "track-eu.customer.io"
ANONYMOUS_NAME_LIMIT = 100
REGISTER_DEVICE_EVENTS = ("application installed", "application opened")
DELETE_DEVICE_EVENT = "application uninstalled"
# Where a person's id may be: the call's own userId first, then ids carried in traits.
PERSON_ID_PATHS = ("userId", "traits.userId", "traits.id", "context.traits.userId", "context.traits.id")
EMAIL_PATHS = ("traits.email", "context.traits.email")
_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")


# -- small helpers ---------------------------------------------------------------------------------
def _first(event: dict[str, Any], paths: tuple[str, ...]) -> str | None:
    for p in paths:
        v = as_identifier(get(event, p))
        if v is not None:
            return v
    return None


def _normalise(event: dict[str, Any]) -> dict[str, Any]:
    """Drop containers of the wrong shape so mappings never see a string where an object belongs."""
    out = dict(event)
    for key in ("properties", "traits", "user_properties"):
        if key in out and not isinstance(out[key], dict):
            del out[key]
    ctx = out.get("context")
    ctx = dict(ctx) if isinstance(ctx, dict) else {}
    for key in ("traits", "device", "os"):
        if key in ctx and not isinstance(ctx[key], dict):
            del ctx[key]
    out["context"] = ctx
    return out


def _epoch_s(event: dict[str, Any]) -> int | None:
    raw = get(event, "timestamp") or get(event, "originalTimestamp")
    if raw is None:
        return None
    try:
        return formats.to_epoch_s(raw)
    except formats.FormatError as e:
        raise InstrumentationError(f"timestamp: {e}; send an ISO-8601 timestamp") from e


def _person(event: dict[str, Any]) -> str | None:
    """The identifier used in ``/customers/{identifier}``: an id, else an email address."""
    return _first(event, PERSON_ID_PATHS) or _first(event, EMAIL_PATHS)


def _id_or_email(value: str) -> dict[str, str]:
    return {"email": value} if _EMAIL.match(value) else {"id": value}


def _apply_region(kit: Any) -> None:
    """Honour the legacy ``datacenterEU: true`` switch when no ``datacenter`` is configured."""
    if not kit.settings.get("datacenter") and kit.settings.get("datacenterEU") is True:
        kit.vars["host"] = EU_HOST


# -- identify --------------------------------------------------------------------------------------
def _retl_identifier(event: dict[str, Any]) -> tuple[str, str] | None:
    """Reverse-ETL rows name the person in ``context.externalId`` (type ``CUSTOMERIO-...``)."""
    if not get(event, "context.mappedToDestination"):
        return None
    ids = get(event, "context.externalId")
    for item in ids if isinstance(ids, list) else []:
        if isinstance(item, dict) and str(item.get("type", "")).upper().startswith("CUSTOMERIO"):
            value = as_identifier(item.get("id"))
            if value is not None:
                return value, str(item.get("identifierType") or "id")
    return None


def _attributes(event: dict[str, Any]) -> dict[str, Any]:
    """Person attributes: the traits, flat, with the address parts hoisted to the top level."""
    traits = event.get("traits")
    if not isinstance(traits, dict):
        traits = get(event, "context.traits") or {}
    attrs = {k: v for k, v in traits.items() if k != "anonymousId"}
    address = attrs.get("address")
    if isinstance(address, dict):
        del attrs["address"]
        attrs.update(address)
    if isinstance(event.get("user_properties"), dict):
        attrs.update(event["user_properties"])
    created = attrs.get("createdAt")
    if created is not None and "created_at" not in attrs:
        try:
            attrs["created_at"] = formats.to_epoch_s(created)
            del attrs["createdAt"]
        except formats.FormatError:
            pass  # not a time: leave the trait as the user sent it
    return attrs


def _identify(event: dict[str, Any], kit: Any) -> VendorRequest:
    attrs = _attributes(event)
    retl = _retl_identifier(event)
    if retl is not None:
        ident, id_type = retl
        if id_type.lower() not in ("id", "userid"):
            attrs[id_type] = ident  # e.g. identifierType "email": the row's email is also the attribute
    else:
        ident = _person(event)
    if ident is None:
        raise InstrumentationError(
            "userId or email is required for identify events: Customer.io keys people by one of them; "
            "set userId or traits.email"
        )
    body = {**attrs, **kit.map(event, "identify")}
    return kit.request("customer", body, {"id": ident})


# -- track, page, screen ---------------------------------------------------------------------------
def _device_token(event: dict[str, Any]) -> str | None:
    return as_identifier(get(event, "context.device.token"))


def _platform(event: dict[str, Any]) -> str | None:
    raw = as_identifier(get(event, "context.device.type")) or as_identifier(get(event, "context.os.name"))
    if raw is None:
        return None
    p = raw.strip().lower()
    return "ios" if p in ("ipados", "iphone", "ipad", "ios") else p


def _device_body(event: dict[str, Any], token: str) -> dict[str, Any]:
    device: dict[str, Any] = dict(event.get("properties") or {})
    device["id"] = token
    platform = _platform(event)
    if platform is not None:
        device["platform"] = platform
    last_used = _epoch_s(event)
    if last_used is not None:
        device["last_used"] = last_used
    return {"device": device}


def _device_action(event: dict[str, Any], kit: Any) -> str | None:
    """'add', 'delete' or None for the track event's name."""
    name = event.get("event")
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    custom = kit.settings.get("deviceTokenEventName")
    if key == DELETE_DEVICE_EVENT:
        return "delete"
    if key in REGISTER_DEVICE_EVENTS or (isinstance(custom, str) and custom.strip() and name == custom):
        return "add"
    return None


def _device_request(event: dict[str, Any], kit: Any, person: str | None) -> VendorRequest | None:
    action = _device_action(event, kit)
    if action is None:
        return None
    token = _device_token(event)
    if action == "delete":
        if person is None or token is None:
            raise InstrumentationError(
                "userId/email and context.device.token are required for 'Application Uninstalled': "
                "Customer.io deletes a known person's device by its token"
            )
        return kit.request("delete_device", None, {"id": person, "token": token})
    if person is not None and token is not None:
        return kit.request("add_device", _device_body(event, token), {"id": person})
    return None  # no token or anonymous: an ordinary event


def _event_name(etype: str, name: str, limited: bool) -> str:
    """Screens are named "Viewed <name> Screen"; anonymous event names are capped, wrapper included."""
    prefix, suffix = ("Viewed ", " Screen") if etype == "screen" else ("", "")
    if limited:
        name = name[: max(0, ANONYMOUS_NAME_LIMIT - len(prefix) - len(suffix))]
    return f"{prefix}{name}{suffix}"


def _event_call(event: dict[str, Any], kit: Any) -> VendorRequest:
    etype = event["type"]
    person = _person(event)
    if etype == "track":
        device = _device_request(event, kit, person)
        if device is not None:
            return device
    body = kit.map(event, etype)
    anonymous_id = None
    if person is None:
        anonymous_id = as_identifier(event.get("anonymousId"))
        if anonymous_id is None:
            raise InstrumentationError(
                f"{etype} events need userId, an email in traits, or anonymousId: Customer.io cannot "
                "attribute the event otherwise"
            )
    if isinstance(body.get("name"), str):
        body["name"] = _event_name(etype, body["name"], limited=anonymous_id is not None)
    if person is not None:
        return kit.request("customer_event", body, {"id": person})
    body["anonymous_id"] = anonymous_id
    return kit.request("anonymous_event", body, event)


# -- group, alias ----------------------------------------------------------------------------------
def _group(event: dict[str, Any], kit: Any) -> VendorRequest:
    body = kit.map(event, "group")
    user = as_identifier(event.get("userId"))
    if user is not None:
        rel = _id_or_email(user)
    else:
        email = _first(event, ("context.traits.email",))
        if email is None:
            raise InstrumentationError(
                "group events need userId (or context.traits.email): "
                "Customer.io relates the object to a person"
            )
        rel = {"email": email}
    body["cio_relationships"] = [{"identifiers": rel}]
    return kit.request("object", body, event)


def _alias(event: dict[str, Any], kit: Any) -> VendorRequest:
    body = kit.map(event, "alias")
    for side in ("primary", "secondary"):
        body[side] = _id_or_email(body[side]["id"])
    return kit.request("merge", body, event)


# -- hooks -----------------------------------------------------------------------------------------
def transform(event: dict[str, Any], kit: Any) -> VendorRequest:
    event = _normalise(event)
    event["type"] = str(event.get("type", "")).strip().lower()
    _apply_region(kit)
    etype = event["type"]
    if etype == "identify":
        return _identify(event, kit)
    if etype == "group":
        return _group(event, kit)
    if etype == "alias":
        return _alias(event, kit)
    return _event_call(event, kit)
