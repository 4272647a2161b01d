"""GA4 Measurement Protocol: the procedural part of the mapping.

The spec declares the request envelope; this module builds what a field mapping cannot say:
the one-element ``events`` array (event name from the ``events.yaml`` table, parameters flattened
and filtered against GA4's reserved names, ``items`` from products), the client / app-instance id
(found in ``context.externalId`` lists and the integrations object), consent, user properties,
and the GA4 rule that an event may be at most 72 hours old. The endpoint (gtag or firebase) is
chosen from settings in ``post_map``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path
from typing import Any

import yaml

from sdk.errors import ConfigurationError, InstrumentationError
from sdk.mapping.formats import FormatError, parse_time
from sdk.mapping.paths import get

_TABLE = yaml.safe_load((Path(__file__).parent / "events.yaml").read_text())
EVENTS: dict[str, dict[str, Any]] = _TABLE["events"]
ITEM: dict[str, Any] = _TABLE["item"]
RESERVED: dict[str, Any] = _TABLE["reserved"]

MAX_AGE = dt.timedelta(hours=72)
MAX_DEPTH = 20  # deeper property trees are cut rather than flattened into thousands of keys
INTEGRATION_KEYS = ("GA4", "ga4", "Google Analytics 4", "Google Analytics 4 (GA4)", "GOOGLE_ANALYTICS_4")
CONSENT_KEYS = ("ad_user_data", "ad_personalization")
CONSENT_VALUES = ("GRANTED", "DENIED")


def _norm(name: str) -> str:
    """Event-name lookup key: case-insensitive, spaces and underscores equivalent."""
    return re.sub(r"[\s_]+", " ", name).strip().lower()


def _index() -> dict[str, str]:
    out: dict[str, str] = {}
    for ga4_name, entry in EVENTS.items():
        out[_norm(ga4_name)] = ga4_name
        for alias in entry.get("from") or []:
            out[_norm(alias)] = ga4_name
    return out


LOOKUP = _index()
RESERVED_EVENTS = set(RESERVED["event_names"]["common"])
RESERVED_FIREBASE_EVENTS = RESERVED_EVENTS | set(RESERVED["event_names"]["firebase"])


# -- hooks -------------------------------------------------------------------------------------------


def prepare(event: dict[str, Any], kit: Any) -> dict[str, Any]:
    """Validate, then compute the ``_ga4`` block the spec's field mapping reads."""
    s = kit.settings
    client_type = _client_type(s)
    _check_config(s, client_type)
    etype = str(event.get("type", "")).lower()
    name, entry = _event_name(event, etype, client_type)
    _check_age(event, kit)

    props = _source_properties(event, etype)
    integ = _integration_options(event)
    params = _event_params(event, props, entry, integ)

    ga4: dict[str, Any] = {"events": [{"name": name, "params": params}]}
    if client_type == "firebase":
        ga4["app_instance_id"] = _app_instance_id(event)
    else:
        ga4["client_id"] = _client_id(event, integ)
    if _ad_tracking_disabled(event):
        ga4["non_personalized_ads"] = True
    consent = _consent(integ)
    if consent:
        ga4["consent"] = consent
    ga4["user_properties"] = _user_properties(event, props if etype == "track" else {})
    return {**event, "_ga4": ga4}


def post_map(body: dict[str, Any], event: dict[str, Any], kit: Any) -> Any:
    """Route to the endpoint of the configured client type (gtag or firebase)."""
    return kit.request(_client_type(kit.settings), body, event)


# -- settings ----------------------------------------------------------------------------------------


def _client_type(settings: dict[str, Any]) -> str:
    t = settings.get("typesOfClient") or "gtag"
    return "firebase" if str(t).lower() == "firebase" else "gtag"


def _check_config(s: dict[str, Any], client_type: str) -> None:
    if not _nonempty_str(s.get("apiSecret")):
        raise ConfigurationError("GA4: apiSecret must be provided; create one under Admin > Data Streams > "
                                 "Measurement Protocol API secrets and set it in the destination config")
    if client_type == "gtag" and not _nonempty_str(s.get("measurementId")):
        raise ConfigurationError("GA4: measurementId must be provided for the gtag client type; set it to "
                                 "the web stream's measurement id (G-XXXXXXX)")
    if client_type == "firebase" and not _nonempty_str(s.get("firebaseAppId")):
        raise ConfigurationError("GA4: firebaseAppId must be provided for the firebase client type; set it "
                                 "to the app stream's Firebase app id")


# -- event name --------------------------------------------------------------------------------------


def _event_name(event: dict[str, Any], etype: str, client_type: str) -> tuple[str, dict[str, Any]]:
    if etype == "page":
        return "page_view", EVENTS["page_view"]
    if etype == "group":
        return "join_group", EVENTS["join_group"]
    raw = event.get("event")
    if raw is None or raw == "":
        raise InstrumentationError("GA4: the track event has no 'event' name; set it")
    if not isinstance(raw, str):
        raise InstrumentationError(f"GA4: the track event name must be a string, got {type(raw).__name__}")
    if not raw.strip():
        raise InstrumentationError("GA4: the track event name is blank; set it")
    ga4_name = LOOKUP.get(_norm(raw))
    name = ga4_name or re.sub(r"\s+", "_", raw.strip())
    reserved = RESERVED_FIREBASE_EVENTS if client_type == "firebase" else RESERVED_EVENTS
    if name in reserved:
        raise InstrumentationError(f"GA4: {name!r} is a reserved event name and is not allowed; rename it")
    if name.lower().startswith(tuple(RESERVED["event_prefixes"])):
        raise InstrumentationError(
            f"GA4: event name {name!r} uses a reserved prefix "
            f"({', '.join(RESERVED['event_prefixes'])}); rename it"
        )
    return name, (EVENTS.get(ga4_name, {}) if ga4_name else {})


# -- time --------------------------------------------------------------------------------------------


def _check_age(event: dict[str, Any], kit: Any) -> None:
    """GA4 drops events older than 72 hours; refuse them here so the failure is visible."""
    for key in ("timestamp", "originalTimestamp"):
        v = event.get(key)
        if v is None:
            continue
        try:
            when = parse_time(v)
        except FormatError as e:
            raise InstrumentationError(f"GA4: {key} is not a valid timestamp ({e}); send ISO-8601") from e
        if kit.ctx.now - when > MAX_AGE:
            raise InstrumentationError(
                f"GA4: {key} {v!r} is more than 72 hours in the past; the Measurement Protocol only accepts "
                "events up to 72 hours old (Allowed timestamp is [72 hours] into the past)"
            )
        return


# -- identities, consent, user properties ------------------------------------------------------------


def _external_id(event: dict[str, Any], id_type: str) -> Any:
    ids = get(event, "context.externalId")
    if isinstance(ids, list):
        for x in ids:
            if isinstance(x, dict) and x.get("type") == id_type and _present(x.get("id")):
                return x["id"]
    return None


def _integration_options(event: dict[str, Any]) -> dict[str, Any]:
    integ = event.get("integrations")
    if isinstance(integ, dict):
        for k in INTEGRATION_KEYS:
            if isinstance(integ.get(k), dict):
                return integ[k]
    return {}


def _client_id(event: dict[str, Any], integ: dict[str, Any]) -> Any:
    # userId last: a server-side event may carry no device id, and GA4 only needs a stable instance id.
    for v in (integ.get("clientId"), _external_id(event, "ga4ClientId"), event.get("anonymousId"),
              event.get("rudderId"), event.get("userId")):
        if _present(v) and not isinstance(v, (dict, list, bool)):
            return v if isinstance(v, str) else str(v)
    raise InstrumentationError("GA4: client_id is required for the gtag client type; send anonymousId, "
                               "userId or a context.externalId entry of type ga4ClientId")


def _app_instance_id(event: dict[str, Any]) -> Any:
    v = _external_id(event, "ga4AppInstanceId")
    if not _present(v) or isinstance(v, (dict, list, bool)):
        raise InstrumentationError("GA4: ga4AppInstanceId must be provided under externalId for the firebase "
                                   "client type; add {type: ga4AppInstanceId, id: ...} to context.externalId")
    return v if isinstance(v, str) else str(v)


def _ad_tracking_disabled(event: dict[str, Any]) -> bool:
    v = get(event, "context.device.adTrackingEnabled")
    return v is False or (isinstance(v, str) and v.strip().lower() == "false")


def _consent(integ: dict[str, Any]) -> dict[str, str]:
    c = integ.get("consents")
    if not isinstance(c, dict):
        return {}
    return {k: c[k].upper() for k in CONSENT_KEYS
            if isinstance(c.get(k), str) and c[k].upper() in CONSENT_VALUES}


def _user_properties(event: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    """Scalar traits and ``properties.user_properties``, minus GA4-reserved names, as ``{name: {value}}``."""
    merged: dict[str, Any] = {}
    for src in (get(event, "context.traits"), props.get("user_properties")):
        if isinstance(src, dict):
            merged.update(src)
    out = {}
    for k, v in merged.items():
        if not isinstance(k, str) or not _scalar(v):
            continue
        if k in RESERVED["user_property_names"] or k.startswith(tuple(RESERVED["user_property_prefixes"])):
            continue
        out[k] = {"value": v}
    return out


# -- parameters --------------------------------------------------------------------------------------


def _source_properties(event: dict[str, Any], etype: str) -> dict[str, Any]:
    src = event.get("traits") if etype == "group" else event.get("properties")
    if etype == "group" and not isinstance(src, dict):
        src = get(event, "context.traits")
    return dict(src) if isinstance(src, dict) else {}


def _event_params(event: dict[str, Any], props: dict[str, Any], entry: dict[str, Any],
                  integ: dict[str, Any]) -> dict[str, Any]:
    rest = dict(props)
    for k in ("user_properties", "products"):
        rest.pop(k, None)
    params: dict[str, Any] = {}

    items = _items(props, entry.get("items", "products"), rest)

    for dest, sources in (entry.get("params") or {}).items():
        found = _first(event, props, sources, rest)
        if found is not None:
            params[dest] = found
    if "value" not in params and entry.get("value_from_price"):
        v = _price_times_quantity(props)
        if v is not None:
            params["value"] = v

    engagement = rest.pop("engagementTimeMsec", None)
    session = rest.pop("sessionId", None)
    params["engagement_time_msec"] = engagement if _scalar(engagement) else 1
    for v in (session, integ.get("sessionId"), get(event, "context.sessionId")):
        if _scalar(v):
            params["session_id"] = v
            break
    if _scalar(integ.get("sessionNumber")):
        params["session_number"] = integ["sessionNumber"]

    for k, v in _flatten(rest).items():
        if k not in params and _param_allowed(k):
            params[k] = v
    for dest in entry.get("numeric") or []:
        if dest in params:
            params[dest] = _number(params[dest])
            if params[dest] is None:
                del params[dest]
    if items:
        params["items"] = items
    return params


def _first(event: dict[str, Any], props: dict[str, Any], sources: list[str], rest: dict[str, Any]) -> Any:
    """First present source; bare names are properties and are consumed, ``@path`` reads the event."""
    found = None
    for src in sources:
        v = get(event, src[1:]) if src.startswith("@") else props.get(src)
        if found is None and _scalar(v):
            found = v
        if not src.startswith("@"):
            rest.pop(src, None)
    return found


def _param_allowed(key: str) -> bool:
    if not key or key in RESERVED["param_names"]:
        return False
    return not key.startswith(tuple(RESERVED["param_prefixes"]))


# -- items -------------------------------------------------------------------------------------------


def _items(props: dict[str, Any], mode: str, rest: dict[str, Any]) -> list[dict[str, Any]]:
    products = props.get("products")
    if mode in ("product", "products_or_product") and not (mode == "products_or_product"
                                                            and isinstance(products, list) and products):
        root = {k: props[k] for k in ITEM["root_keys"] if k in props}
        for k in ITEM["root_keys"]:
            if k not in ITEM["shared_keys"]:
                rest.pop(k, None)
        return [_item(root)]
    if isinstance(products, dict):
        products = [products]
    if not isinstance(products, list):
        return []
    return [_item(p) for p in products if isinstance(p, dict)]


def _item(product: dict[str, Any]) -> dict[str, Any]:
    p = dict(product)
    item: dict[str, Any] = {}
    for dest, sources in ITEM["fields"].items():
        for src in sources:
            v = p.pop(src, None)
            if dest not in item and _scalar(v):
                item[dest] = v
    if not ("item_id" in item or "item_name" in item):
        raise InstrumentationError("GA4: One of product_id or name is required for every product; add it")
    for dest in ITEM["numeric"]:
        if dest in item:
            item[dest] = _number(item[dest])
            if item[dest] is None:
                del item[dest]
    for k, v in _flatten(p).items():
        item.setdefault(k, v)
    return item


def _price_times_quantity(props: dict[str, Any]) -> Any:
    price, qty = _number(props.get("price")), _number(props.get("quantity"))
    if not isinstance(price, (int, float)) or isinstance(price, bool):
        return None
    if isinstance(qty, (int, float)) and not isinstance(qty, bool):
        return _tidy(round(price * qty, 6))
    return price


# -- value helpers -----------------------------------------------------------------------------------


def _flatten(obj: dict[str, Any]) -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [2]}`` -> ``{"a_b": 1, "c_0": 2}``; null, "" and empty containers vanish."""
    out: dict[str, Any] = {}

    def walk(prefix: str, v: Any, depth: int) -> None:
        if isinstance(v, dict):
            if depth < MAX_DEPTH:
                for k, x in v.items():
                    walk(f"{prefix}_{k}" if prefix else str(k), x, depth + 1)
        elif isinstance(v, list):
            if depth < MAX_DEPTH:
                for i, x in enumerate(v):
                    walk(f"{prefix}_{i}", x, depth + 1)
        elif _present(v):
            if isinstance(v, float) and not math.isfinite(v):
                return
            out[prefix] = v

    for k, v in obj.items():
        walk(str(k), v, 0)
    return out


def _number(v: Any) -> Any:
    """Numeric strings become numbers; anything else is returned unchanged for GA4 to judge."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return v
        return _tidy(f) if math.isfinite(f) else v
    return v


def _tidy(f: float | int) -> Any:
    if isinstance(f, float) and f.is_integer() and abs(f) < 2**53:
        return int(f)
    return f


def _present(v: Any) -> bool:
    return v is not None and v != "" and v != {} and v != []


def _scalar(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    return isinstance(v, (str, int, bool)) and v != ""


def _nonempty_str(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())
