"""Amplitude: the procedural parts a field mapping cannot express.

* ``prepare`` derives values the spec then maps from ``$am.*``: the numeric session id, the web user agent
  (browser as ``os_name``/``os_version``, as Amplitude's own browser SDK reports it), mobile ad ids,
  page/screen event names, and the user properties (traits minus the ones Amplitude owns, identify
  operations such as ``$add``, first-touch referrer and UTM campaign values).
* ``post_map`` wraps the mapped event object in the HTTP V2 envelope, moves revenue fields to the top level,
  fans an order's products out into "Product Purchased" events, and builds the form-encoded Group Identify
  and User Mapping calls (whose JSON payload Amplitude wants as a string field).

Everything here is pure: no clock, no randomness; ids come from the event.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from sdk.errors import InstrumentationError
from sdk.mapping.formats import FormatError, to_number
from sdk.request import VendorRequest

ENVELOPE_OPTIONS = {"min_id_length": 1}
# Amplitude derives these from the event's own top-level fields; as custom user properties they would clash.
RESERVED_TRAITS = ("city", "country")
UTM_ORDER = ("source", "medium", "term", "content", "name")
APPLE_OS = {"ios", "ipados", "watchos", "tvos", "macos"}
TRAIT_OPERATIONS = (
    ("traitsToIncrement", "$add"),
    ("traitsToSetOnce", "$setOnce"),
    ("traitsToAppend", "$append"),
    ("traitsToPrepend", "$prepend"),
)
# revenue_type stays in the properties too: it is a plain descriptive property as well.
REVENUE_KEYS = ("revenue", "price", "quantity", "product_id")
PER_EVENT_KEYS = (
    "event_type",
    "event_properties",
    "insert_id",
    "revenue",
    "price",
    "quantity",
    "revenueType",
    "productId",
)
KEEP_EMPTY = ("user_properties", "event_properties", "groups")


def _d(v: Any) -> dict[str, Any]:
    """Fuzz-safe: anything that is not an object reads as an empty one."""
    return v if isinstance(v, dict) else {}


def _text(v: Any) -> str | None:
    if isinstance(v, str):
        return v.strip() or None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    return None


# -- user agent --------------------------------------------------------------------------------------
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Edge", re.compile(r"\b(?:Edg|EdgA|EdgiOS|Edge)/([\d.]+)")),
    ("Opera", re.compile(r"\b(?:OPR|Opera)/([\d.]+)")),
    ("Samsung Browser", re.compile(r"\bSamsungBrowser/([\d.]+)")),
    ("Chrome", re.compile(r"\bCriOS/([\d.]+)")),
    ("Firefox", re.compile(r"\b(?:FxiOS|Firefox)/([\d.]+)")),
    ("Chromium", re.compile(r"\bChromium/([\d.]+)")),
    ("Chrome", re.compile(r"\bChrome/([\d.]+)")),
    ("Safari", re.compile(r"\bVersion/([\d.]+).*\bSafari/")),
    ("IE", re.compile(r"\bMSIE ([\d.]+)")),
    ("IE", re.compile(r"\bTrident/.*\brv:([\d.]+)")),
)
_ANDROID_MODEL = re.compile(
    r"Android[^;)]*;\s*(?:[a-z]{2}[-_][A-Za-z]{2};\s*)?([^;)]+?)(?:\s+Build/|\s*[;)])"
)


def _parse_user_agent(ua: str) -> dict[str, str]:
    """Browser name/version and a device model from a browser user agent (best effort, no external data)."""
    out: dict[str, str] = {}
    for name, rx in _BROWSERS:
        m = rx.search(ua)
        if m:
            mobile = name == "Safari" and "Mobile" in ua
            out["browser"] = "Mobile Safari" if mobile else name
            out["version"] = m.group(1)
            break
    model = None
    if "iPhone" in ua:
        model = "iPhone"
    elif "iPad" in ua:
        model = "iPad"
    elif "iPod" in ua:
        model = "iPod"
    elif "Macintosh" in ua:
        model = "Mac"
    elif "Windows" in ua:
        model = "Windows"
    elif "Android" in ua:
        m = _ANDROID_MODEL.search(ua)
        model = m.group(1).strip() if m and m.group(1).strip() not in ("", "K", "U", "Linux") else "Android"
    elif "CrOS" in ua:
        model = "Chromebook"
    elif "Linux" in ua:
        model = "Linux"
    if model:
        out["model"] = model
    return out


# -- derived values ----------------------------------------------------------------------------------
def _session_id(event: dict[str, Any]) -> int:
    """Amplitude sessions are start times in ms; SDKs may send "user:<ms>". Non-numeric means "no session"."""
    ctx = _d(event.get("context"))
    raw = ctx.get("sessionId")
    if raw is None:
        raw = event.get("session_id")
    if isinstance(raw, bool) or raw is None:
        return -1
    if isinstance(raw, (int, float)):
        return int(raw) if raw == raw and abs(raw) < 1e18 else -1
    if isinstance(raw, str):
        tail = raw.rsplit(":", 1)[-1].strip()
        if re.fullmatch(r"-?\d{1,18}", tail):
            return int(tail)
    return -1


def _device_fields(event: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Platform, OS and device: from the user agent for web traffic, from context.os/device otherwise."""
    ctx = _d(event.get("context"))
    device, os_ = _d(ctx.get("device")), _d(ctx.get("os"))
    channel = str(event.get("channel") or "").lower()
    ua = ctx.get("userAgent")
    out: dict[str, Any] = {}
    if channel == "web" and isinstance(ua, str) and ua.strip():
        parsed = _parse_user_agent(ua)
        out.update(
            platform="Web",
            os_name=parsed.get("browser") or _text(os_.get("name")),
            os_version=parsed.get("version") or _text(os_.get("version")),
            device_model=parsed.get("model") or _text(device.get("model")),
        )
    else:
        out.update(
            platform=_text(device.get("type")),
            os_name=_text(os_.get("name")),
            os_version=_text(os_.get("version")),
            device_model=_text(device.get("model")),
        )
    brand = _text(device.get("brand"))
    if settings.get("mapDeviceBrand") and brand:
        out["device_brand"] = brand
    elif channel == "mobile":
        out["device_brand"] = brand or _text(device.get("manufacturer"))
    kind = str(device.get("type") or os_.get("name") or "").lower()
    ad_id = _text(device.get("advertisingId"))
    if kind in APPLE_OS:
        out.update(idfa=ad_id, idfv=_text(device.get("id")))
    elif kind == "android":
        out["adid"] = ad_id
    return out


def _external_device_id(event: dict[str, Any]) -> Any:
    for ext in _list(_d(event.get("context")).get("externalId")):
        if (
            isinstance(ext, dict)
            and ext.get("identifierType") == "device_id"
            and ext.get("id") not in (None, "")
        ):
            return ext["id"]
    return None


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _event_traits(event: dict[str, Any]) -> dict[str, Any]:
    traits = event.get("traits")
    if isinstance(traits, dict) and traits:
        return traits
    return _d(_d(event.get("context")).get("traits"))


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, str) and v.strip().lower() == "true")


def _trait_properties(event: dict[str, Any], etype: str, settings: dict[str, Any]) -> dict[str, Any]:
    """User properties from traits: Amplitude-owned location keys removed, identify operations applied."""
    props = dict(_event_traits(event))
    ctx = _d(event.get("context"))
    if _truthy(ctx.get("mappedToDestination")):
        for ext in _list(ctx.get("externalId")):
            if (
                isinstance(ext, dict)
                and isinstance(ext.get("identifierType"), str)
                and ext.get("id") is not None
            ):
                props[ext["identifierType"]] = ext["id"]
    address = props.pop("address", None)
    for key in RESERVED_TRAITS:
        props.pop(key, None)
    if isinstance(address, dict):
        address = {k: v for k, v in address.items() if k not in RESERVED_TRAITS}
        if etype == "identify":
            address.pop("os_version", None)
            for k, v in address.items():
                props.setdefault(k, v)
        else:
            props["address"] = address
    elif address is not None:
        props["address"] = address
    if etype == "identify":
        props.pop("os_version", None)
        for setting, op in TRAIT_OPERATIONS:
            names = [_d(row).get("traits") for row in _list(settings.get(setting))]
            moved = {n: props.pop(n) for n in names if isinstance(n, str) and n and n in props}
            if moved:
                props[op] = moved
        unset = _list(_d(_d(event.get("integrations")).get("Amplitude")).get("fieldsToUnset"))
        fields = [f for f in unset if isinstance(f, str) and f]
        if fields:
            props["$unset"] = {f: "-" for f in fields}
    return props


def _attribution(event: dict[str, Any]) -> dict[str, Any]:
    """First-touch referrer (context.page) and UTM values (context.campaign), as Amplitude's SDKs send."""
    ctx = _d(event.get("context"))
    page, campaign = _d(ctx.get("page")), _d(ctx.get("campaign"))
    out: dict[str, Any] = {}
    for key in ("initial_referrer", "initial_referring_domain"):
        if page.get(key) is not None:
            out[key] = page[key]
    keys = [k for k in UTM_ORDER if k in campaign] + [k for k in campaign if k not in UTM_ORDER]
    for k in keys:
        if campaign[k] is not None:
            out[f"utm_{k}"] = campaign[k]
    return out


def _group_of(event: dict[str, Any], settings: dict[str, Any]) -> tuple[Any, Any, dict[str, Any] | None]:
    """(type, value, properties) of the group, from the configured traits or integrations.Amplitude.groups."""
    traits = _event_traits(event)
    type_key, value_key = settings.get("groupTypeTrait"), settings.get("groupValueTrait")
    if type_key and value_key and traits.get(type_key) is not None and traits.get(value_key) is not None:
        gtype, gvalue, gprops = traits[type_key], traits[value_key], dict(traits)
    else:
        groups = _d(_d(_d(event.get("integrations")).get("Amplitude")).get("groups"))
        gtype, gvalue, gprops = groups.get("group_type"), groups.get("group_value"), None
        if gtype is None or gvalue is None:
            raise InstrumentationError(
                "Amplitude group calls need a group type and value: set groupTypeTrait/groupValueTrait in "
                "the destination config and send those traits, or send integrations.Amplitude.groups "
                "{group_type, group_value}"
            )
    scalar = (str, int, float)
    if (
        not isinstance(gtype, scalar)
        or isinstance(gtype, bool)
        or not isinstance(gvalue, scalar)
        or isinstance(gvalue, bool)
    ):
        raise InstrumentationError(
            "Group call parameters are not valid: the group type and value must be strings or numbers"
        )
    return gtype, gvalue, gprops


def _template(text: str, event: dict[str, Any]) -> str:
    """``{{ name }}``-style placeholders over event fields (then properties); unknown ones render empty."""

    def sub(m: re.Match[str]) -> str:
        cur: Any = event
        for part in m.group(1).split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is None:
            cur = _d(event.get("properties")).get(m.group(1))
        return _text(cur) or ""

    return re.sub(r"\{\{\s*([\w.$-]+)\s*\}\}", sub, text).strip()


def _view_event(event: dict[str, Any], etype: str, settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Page/screen: Amplitude event name ("Viewed X Page"), properties carrying the page/screen name."""
    props = dict(_d(event.get("properties")))
    name = _text(event.get("name"))
    if name is None and etype == "screen":
        name = _text(event.get("event"))
    if name is None:
        name = _text(props.get("name"))
    if name is not None:
        props["name"] = name
    kind = "Page" if etype == "page" else "Screen"
    custom = settings.get(f"userProvided{kind}EventString")
    if settings.get(f"useUserDefined{kind}EventName") and isinstance(custom, str) and custom.strip():
        rendered = _template(custom, event)
        if rendered:
            return rendered, props
    return (f"Viewed {name} {kind}" if name else f"Viewed {kind}"), props


def prepare(event: dict[str, Any], kit: Any) -> dict[str, Any]:
    """Add the derived ``$am`` values the spec maps from; the caller's event is not modified."""
    settings = kit.settings
    etype = str(event.get("type", "")).lower()
    device_id = _external_device_id(event)
    if device_id is None and settings.get("useAdvertisingIdForDeviceId"):
        device_id = _text(_d(_d(event.get("context")).get("device")).get("advertisingId"))
    am: dict[str, Any] = {"session_id": _session_id(event), "device_id": device_id}
    am.update(_device_fields(event, settings))
    if etype in ("track", "page", "screen", "identify"):
        user_props = _trait_properties(event, etype, settings)
    elif etype == "group":
        gtype, gvalue, gprops = _group_of(event, settings)
        am["groups"] = {str(gtype): gvalue}
        am["group"] = (gtype, gvalue, gprops)
        user_props = {str(gtype): gvalue}
    else:
        user_props = {}
    user_props.update(_attribution(event))
    am["user_properties"] = user_props
    if etype == "track" and isinstance(event.get("properties"), dict):
        am["event_properties"] = dict(event["properties"])
    elif etype in ("page", "screen"):
        am["event_type"], am["event_properties"] = _view_event(event, etype, settings)
    elif etype == "identify":
        traits = _event_traits(event)
        am["trait_os_version"] = _text(traits.get("os_version")) or _text(
            _d(traits.get("address")).get("os_version")
        )
    return {**event, "$am": am}


# -- after mapping -----------------------------------------------------------------------------------
def _number(v: Any, what: str) -> Any:
    try:
        n = to_number(v)
    except FormatError as e:
        raise InstrumentationError(f"{what}: {e}; send a number") from e
    if isinstance(n, float) and not math.isfinite(n):
        raise InstrumentationError(f"{what}: {v!r} is not a finite number; send a number")
    return n


def _move_revenue(ev: dict[str, Any], props: dict[str, Any], need_revenue: bool) -> None:
    """Amplitude counts revenue from top-level price x quantity (or revenue); move those out of properties."""
    revenue, price, quantity = props.get("revenue"), props.get("price"), props.get("quantity")
    if revenue is None and (need_revenue or price is None):
        return
    if price is not None:
        ev["price"] = _number(price, "properties.price")
        ev["quantity"] = _number(quantity, "properties.quantity") if quantity is not None else 1
    else:
        ev["price"], ev["quantity"] = _number(revenue, "properties.revenue"), 1
    if revenue is not None:
        ev["revenue"] = _number(revenue, "properties.revenue")
    ev["revenueType"] = _text(props.get("revenue_type")) or _text(props.get("revenueType")) or "Purchased"
    if props.get("product_id") is not None:
        ev["productId"] = props["product_id"]
    for key in REVENUE_KEYS:
        props.pop(key, None)


def _track_events(ev: dict[str, Any], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """The order event plus, depending on settings, one "Product Purchased" event per product."""
    props = ev.get("event_properties")
    if not isinstance(props, dict):
        return [ev]
    products = [p for p in _list(props.get("products")) if isinstance(p, dict)]
    once, per_product = bool(settings.get("trackProductsOnce")), bool(settings.get("trackRevenuePerProduct"))
    props = dict(props)
    ev["event_properties"] = props
    if products and not once:
        props.pop("products", None)
    if not (products and per_product):
        _move_revenue(ev, props, need_revenue=True)
    out = [ev]
    if products and (not once or per_product):
        base = {k: v for k, v in ev.items() if k not in PER_EVENT_KEYS}
        for i, product in enumerate(products, 1):
            item = {**base, "event_type": "Product Purchased", "event_properties": dict(product)}
            if ev.get("insert_id") is not None:
                item["insert_id"] = f"{ev['insert_id']}-{i}"
            if per_product:
                _move_revenue(item, item["event_properties"], need_revenue=False)
            out.append(item)
    return out


def _clean(ev: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ev.items() if k in KEEP_EMPTY or (v is not None and v != "")}


def _json_text(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def post_map(body: dict[str, Any], event: dict[str, Any], kit: Any) -> list[VendorRequest]:
    """Envelope + revenue/product fan-out for events; the form calls for group (second request) and alias."""
    settings = kit.settings
    api_key = settings["apiKey"]
    etype = str(event.get("type", "")).lower()
    if etype == "alias":
        return [_alias_request(body, event, kit)]
    ev = _clean(body)
    if etype == "track" and not ev.get("event_type"):
        raise InstrumentationError("Event not present. Please send event field (the track call's event name)")
    if ev.get("user_id") is None and ev.get("device_id") is None:
        raise InstrumentationError(
            "Amplitude needs a user_id or device_id: send userId or anonymousId with the event"
        )
    events = _track_events(ev, settings) if etype == "track" else [ev]
    requests = [
        kit.request("events", {"api_key": api_key, "events": [e], "options": dict(ENVELOPE_OPTIONS)}, event)
        for e in events
    ]
    if etype == "group":
        gtype, gvalue, gprops = event["$am"]["group"]
        ident: dict[str, Any] = {"group_type": gtype, "group_value": gvalue}
        if gprops:
            ident["group_properties"] = gprops
        requests.append(
            kit.request("groupidentify", {"api_key": api_key, "identification": [_json_text(ident)]}, event)
        )
    return requests


def _alias_request(body: dict[str, Any], event: dict[str, Any], kit: Any) -> VendorRequest:
    """User Mapping: merge previousId into userId, or detach previousId when integrations.Amplitude.unmap."""
    opts = _d(_d(event.get("integrations")).get("Amplitude"))
    if _truthy(opts.get("unmap")):
        mapping: dict[str, Any] = {"user_id": body["user_id"], "unmap": True}
    else:
        if body.get("global_user_id") is None:
            raise InstrumentationError("userId is required for an alias call; set it to the new user id")
        mapping = {"global_user_id": body["global_user_id"], "user_id": body["user_id"]}
        if body.get("user_properties"):
            mapping["user_properties"] = body["user_properties"]
    return kit.request(
        "usermap", {"api_key": kit.settings["apiKey"], "mapping": [_json_text(mapping)]}, event
    )
