"""Mixpanel: the procedural parts the spec's field table cannot say.

- Identity: Mixpanel projects use either *original* ID merge ($merge / $create_alias, distinct_id is the
  user id or else the anonymous id) or *simplified* ID merge (events carry $user_id and $device_id, anonymous
  profiles are ``$device:<anonymousId>``, and $merge/$create_alias no longer exist).
- Events (/import): event properties, then context.traits, then the mapped context fields (those win, as they
  are Mixpanel's reserved names); empty mapped values are dropped so that SDK placeholders ("") do not
  overwrite real data. Revenue and configured counters become extra /engage updates.
- Profiles (/engage): traits not mapped to a reserved $-property are kept under their own names;
  configured set-once traits go in a separate $set_once update first; iOS/Android push tokens and app
  fields go to the platform-specific reserved properties.
- Groups (/groups): one profile update per configured group key and per group id.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from sdk.errors import ConfigurationError, InstrumentationError, UnsupportedEventError
from sdk.mapping import formats
from sdk.mapping.paths import MISSING, get_path, split_path
from sdk.mapping.values import as_dict, as_identifier
from sdk.request import VendorRequest

if TYPE_CHECKING:
    from sdk.connector import Kit

# Mixpanel limits $insert_id to 36 characters (a UUID); longer ids keep their unique tail.
INSERT_ID_MAX = 36
# Events dated more than five years before they were sent are refused (a client clock or backfill mistake;
# RudderStack refuses them too, so migrated pipelines behave the same).
MAX_EVENT_AGE_YEARS = 5
# Mixpanel rejects event times before 1971-01-01.
MIN_EVENT_TIME_MS = 31_536_000_000
APPLE_DEVICE_TYPES = {"ios", "ipados", "tvos", "watchos", "visionos"}

# Reserved profile names used for $set_once traits (these always use Mixpanel's documented names).
SET_ONCE_RESERVED = {
    "firstName": "$first_name", "first_name": "$first_name", "firstname": "$first_name",
    "lastName": "$last_name", "last_name": "$last_name", "lastname": "$last_name",
    "name": "$name", "email": "$email", "phone": "$phone", "avatar": "$avatar",
    "createdAt": "$created", "created_at": "$created", "city": "$city", "country": "$country_code",
}  # fmt: skip

# (browser, regex for its version) in the order Mixpanel's own SDK tests user agents.
_BROWSERS: list[tuple[str, re.Pattern[str], re.Pattern[str]]] = [
    (name, re.compile(match), re.compile(version))
    for name, match, version in [
        ("Opera Mini", r"Opera Mini", r"Opera Mini/([0-9.]+)"),
        ("Opera", r"OPR/|Opera", r"(?:OPR|Version|Opera)/([0-9.]+)"),
        ("Microsoft Edge", r"Edg(?:e|A|iOS)?/", r"Edg(?:e|A|iOS)?/([0-9.]+)"),
        ("Facebook Mobile", r"FBIOS|FBAN|FBAV", r"FBAV/([0-9.]+)"),
        ("Samsung Internet", r"SamsungBrowser/", r"SamsungBrowser/([0-9.]+)"),
        ("UC Browser", r"UCBrowser|UCWEB", r"UC ?Browser/([0-9.]+)"),
        ("Chrome iOS", r"CriOS/", r"CriOS/([0-9.]+)"),
        ("Firefox iOS", r"FxiOS/", r"FxiOS/([0-9.]+)"),
        ("Chrome", r"Chrome/", r"Chrome/([0-9.]+)"),
        ("Android Mobile", r"Android.*Safari/", r"Android ([0-9.]+)"),
        ("Mobile Safari", r"Safari/.*Mobile|Mobile.*Safari/", r"Version/([0-9.]+)"),
        ("Safari", r"Safari/", r"Version/([0-9.]+)"),
        ("Firefox", r"Firefox/", r"Firefox/([0-9.]+)"),
        ("Internet Explorer", r"MSIE|Trident/", r"(?:MSIE |rv:)([0-9.]+)"),
    ]
]


# -- small helpers ---------------------------------------------------------------------------------------
def _present(v: Any) -> bool:
    return v is not None and v != "" and v is not MISSING


def _browser(event: dict[str, Any]) -> dict[str, str]:
    """$browser and $browser_version from the user agent of a web event, as Mixpanel's web SDK reports them.

    Only for ``channel: web``: a mobile or server event's user agent is an HTTP client's, not a browser's.
    """
    user_agent = as_dict(event.get("context")).get("userAgent")
    channel = event.get("channel")
    if not isinstance(channel, str) or channel.lower() != "web" or not isinstance(user_agent, str):
        return {}
    for name, match, version in _BROWSERS:
        if match.search(user_agent):
            out = {"$browser": name}
            m = version.search(user_agent)
            if m:
                out["$browser_version"] = m.group(1)
            return out
    return {}


def _simplified(kit: Kit) -> bool:
    return kit.settings.get("identityMergeApi") == "simplified"


def _user_id(event: dict[str, Any]) -> str | None:
    """The known-user id: userId, else an id the SDK put in the user's traits.

    Only identify carries user traits at the top level (a group call's traits describe the group).
    """
    traits = as_dict(event.get("traits")) if str(event.get("type", "")).lower() == "identify" else {}
    ctx_traits = as_dict(as_dict(event.get("context")).get("traits"))
    candidates = (event.get("userId"), traits.get("userId"), traits.get("id"), ctx_traits.get("userId"))
    for v in (*candidates, ctx_traits.get("id")):
        if (s := as_identifier(v)) is not None:
            return s
    return None


def _distinct_id(event: dict[str, Any], kit: Kit) -> str:
    """distinct_id: the user, else the anonymous id (``$device:<id>`` under simplified ID merge)."""
    user, anon = _user_id(event), as_identifier(event.get("anonymousId"))
    if user is not None:
        return user
    if anon is not None:
        return f"$device:{anon}" if _simplified(kit) else anon
    raise InstrumentationError(
        f"Mixpanel needs a user: the {str(event.get('type')).lower()} event has neither userId "
        "nor anonymousId; add one"
    )


def _years_before(t: dt.datetime, years: int) -> dt.datetime:
    try:
        return t.replace(year=t.year - years)
    except ValueError:  # 29 February
        return t.replace(year=t.year - years, day=28)


def _check_age(time_ms: int, event: dict[str, Any], kit: Kit) -> None:
    """Refuse times Mixpanel cannot take (before 1971) or more than 5 years older than the event's dispatch.

    The age is measured from when the event was sent (sentAt/receivedAt, capped by now), not from the
    transform clock alone, so that re-delivering a stored event later gives the same answer as the first time.
    """
    if time_ms < MIN_EVENT_TIME_MS:
        raise InstrumentationError("the event time is before 1971-01-01, which Mixpanel rejects; fix it")
    sent = kit.ctx.now
    for key in ("receivedAt", "sentAt"):
        if _present(event.get(key)):
            try:
                sent = min(sent, formats.parse_time(event[key]))
            except (formats.FormatError, TypeError):
                continue
            break
    if time_ms < _years_before(sent, MAX_EVENT_AGE_YEARS).timestamp() * 1000:
        raise InstrumentationError(
            f"Event timestamp should be within last {MAX_EVENT_AGE_YEARS} years of when it was sent; "
            "fix the timestamp"
        )


def _insert_id(event: dict[str, Any], kit: Kit) -> str:
    mid = event.get("messageId")
    if not isinstance(mid, str) or not mid:
        return kit.ctx.new_id()
    return mid[-INSERT_ID_MAX:]


def _render_name(template: str, event: dict[str, Any]) -> str:
    """'Viewed {{ name }} page' with name/category from the event, else from its properties."""
    props = as_dict(event.get("properties"))

    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        v = event.get(key) if key in ("name", "category") and _present(event.get(key)) else props.get(key)
        return "" if v is None else formats.to_string(v)

    return re.sub(r"\{\{\s*([\w.$-]+)\s*\}\}", sub, template).strip()


# -- hooks -----------------------------------------------------------------------------------------------
def prepare(event: dict[str, Any], kit: Kit) -> dict[str, Any]:
    """Validate and normalise: typed errors for bad ids; identify traits merged, set-once traits split off."""
    mid = event.get("messageId")
    if mid is not None and not isinstance(mid, str):
        raise InstrumentationError("messageId should be of type string; send it as a string")
    ev = dict(event)
    for key in ("userId", "anonymousId", "previousId"):
        if ev.get(key) == "" or (key in ev and ev[key] is not None and as_identifier(ev[key]) is None):
            ev.pop(key)
    etype = str(ev.get("type", "")).lower()
    if etype == "alias" and _simplified(kit):
        raise UnsupportedEventError(
            "alias events are not supported with Mixpanel's simplified ID merge; identify the user instead, "
            "or disable alias events for this destination"
        )
    if etype == "identify":
        traits = {**as_dict(as_dict(ev.get("context")).get("traits")), **as_dict(ev.get("traits"))}
        ev["traits"], ev["_set_once"] = _split_set_once(traits, kit.settings.get("setOnceProperties"))
    return ev


def post_map(body: dict[str, Any], event: dict[str, Any], kit: Kit) -> list[VendorRequest]:
    etype = str(event.get("type", "")).lower()
    if etype in ("track", "page", "screen"):
        return _event_requests(body, event, kit)
    if etype == "identify":
        return _identify_requests(body, event, kit)
    if etype == "alias":
        props = body.get("properties") or {}
        if props.get("distinct_id") == props.get("alias"):
            raise InstrumentationError(
                "One of `previousId` or `anonymousId` is same as `userId`, so there is nothing to alias; "
                "fix the event"
            )
        return [kit.request("identity", body, event)]
    return _group_requests(body, event, kit)


# -- events ----------------------------------------------------------------------------------------------
def _event_name(event: dict[str, Any], etype: str, kit: Kit) -> str:
    s = kit.settings
    if etype == "track":
        name = event.get("event")
        if isinstance(name, (int, float)) and not isinstance(name, bool):
            name = formats.to_string(name)
        if not isinstance(name, str) or not name.strip():
            raise InstrumentationError("the track event has no `event` name; Mixpanel needs one")
        return name
    kind = "Page" if etype == "page" else "Screen"
    if s.get(f"useUserDefined{kind}EventName") and isinstance(s.get(f"userDefined{kind}EventTemplate"), str):
        name = _render_name(s[f"userDefined{kind}EventTemplate"], event)
        if name:
            return name
    return f"Loaded a {kind}"


def _event_requests(body: dict[str, Any], event: dict[str, Any], kit: Kit) -> list[VendorRequest]:
    etype = str(event.get("type", "")).lower()
    context = as_dict(event.get("context"))
    props = as_dict(event.get("properties"))
    time_ms = body.get("properties", {}).get("time")
    if not isinstance(time_ms, int):
        time_ms = kit.ctx.now_ms
    _check_age(time_ms, event, kit)
    distinct = _distinct_id(event, kit)
    user = _user_id(event)

    out_props: dict[str, Any] = dict(props)
    if not kit.settings.get("dropTraitsInTrackEvent"):
        out_props.update(as_dict(context.get("traits")))
    if etype in ("page", "screen"):
        for key in ("name", "category"):
            if _present(event.get(key)):
                out_props[key] = event[key]
    out_props.update({k: v for k, v in body.get("properties", {}).items() if _present(v)})
    out_props.update(_utm(context.get("campaign")))
    out_props.update(_browser(event))
    out_props["time"] = time_ms
    out_props["distinct_id"] = distinct
    out_props["$insert_id"] = _insert_id(event, kit)
    if user is not None:
        out_props["$user_id"] = user
    if _simplified(kit) and as_identifier(event.get("anonymousId")) is not None:
        out_props["$device_id"] = as_identifier(event.get("anonymousId"))

    requests = []
    revenue = _transaction(props.get("revenue"), event, kit)
    if revenue is not None:
        requests.append(
            kit.request("engage_append", _profile_update("$append", revenue, distinct, kit), event)
        )
    increments = _increments(props, kit.settings.get("propIncrements"))
    if increments:
        requests.append(kit.request("engage_add", _profile_update("$add", increments, distinct, kit), event))
    body = {"event": _event_name(event, etype, kit), "properties": out_props}
    requests.append(kit.request("import", body, event))
    return requests


def _utm(campaign: Any) -> dict[str, Any]:
    """context.campaign → utm_* properties, with `name` as utm_campaign."""
    out = {}
    for key, value in as_dict(campaign).items():
        if _present(value) and isinstance(key, str):
            out["utm_campaign" if key == "name" else f"utm_{key}"] = value
    return out


def _transaction(revenue: Any, event: dict[str, Any], kit: Kit) -> dict[str, Any] | None:
    """A $transactions entry for revenue; a revenue that is not a number is left to the event only."""
    if not _present(revenue):
        return None
    try:
        amount = formats.to_number(revenue)
    except formats.FormatError:
        return None
    when = kit.ctx.now_iso()
    for key in ("timestamp", "originalTimestamp"):
        if _present(event.get(key)):
            when = formats.to_iso(event[key])
            break
    return {"$transactions": {"$time": when, "$amount": amount}}


def _increments(props: dict[str, Any], setting: Any) -> dict[str, Any]:
    out = {}
    for item in setting if isinstance(setting, list) else []:
        name = as_dict(item).get("property")
        if isinstance(name, str) and name and _present(props.get(name)):
            out[name] = props[name]
    return out


def _profile_update(op: str, value: dict[str, Any], distinct: str, kit: Kit) -> dict[str, Any]:
    return {op: value, "$token": kit.settings["token"], "$distinct_id": distinct}


# -- identify --------------------------------------------------------------------------------------------
def _split_set_once(traits: dict[str, Any], setting: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Move configured set-once traits out of ``traits``; returns (remaining traits, $set_once object)."""
    set_once: dict[str, Any] = {}
    for item in setting if isinstance(setting, list) else []:
        path = as_dict(item).get("property")
        if not isinstance(path, str) or not path.strip():
            continue
        parts = split_path(path.strip())
        value = get_path(traits, parts)
        if not _present(value):
            continue
        traits = _without(traits, parts)
        set_once[SET_ONCE_RESERVED.get(parts[-1], parts[-1])] = value
    return traits, set_once


def _without(obj: dict[str, Any], parts: tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``obj`` with the value at ``parts`` removed (copies only along the path)."""
    out = dict(obj)
    if len(parts) == 1:
        out.pop(parts[0], None)
    elif isinstance(out.get(parts[0]), dict):
        out[parts[0]] = _without(out[parts[0]], parts[1:])
    return out


def _consumed_traits(kit: Kit) -> set[str]:
    """Trait keys the spec's identify mapping reads, so that they are not also sent under their own names."""
    mapping = kit.connector.mappings["identify"]
    return {parts[1] for kind, parts in (s for f in mapping.fields for s in f.sources) if kind == "event"
            and len(parts) >= 2 and parts[0] == "traits"}  # fmt: skip


# Platform-specific reserved profile properties: device model, OS version, app version, app build.
_PLATFORM_KEYS = {
    "ios": ("$ios_device_model", "$ios_version", "$ios_app_release", "$ios_app_version"),
    "android": ("$android_model", "$android_os_version", "$android_app_version", "$android_app_version_code"),
}


def _device_fields(context: dict[str, Any]) -> dict[str, Any]:
    """Mixpanel's platform-specific profile properties, including the push token list."""
    device, os_, app = (as_dict(context.get(k)) for k in ("device", "os", "app"))
    kind = device.get("type").lower() if isinstance(device.get("type"), str) else ""
    platform = "ios" if kind in APPLE_DEVICE_TYPES else kind
    if platform not in _PLATFORM_KEYS:
        return {}
    model_key, os_key, release_key, build_key = _PLATFORM_KEYS[platform]
    fields = {
        f"${platform}_devices": [device["token"]] if _present(device.get("token")) else None,
        model_key: device.get("model"),
        os_key: os_.get("version"),
        release_key: app.get("version"),
        build_key: app.get("build"),
    }
    return {k: v for k, v in fields.items() if _present(v)}


def _identify_requests(body: dict[str, Any], event: dict[str, Any], kit: Kit) -> list[VendorRequest]:
    context = as_dict(event.get("context"))
    traits = as_dict(event.get("traits"))
    distinct = _distinct_id(event, kit)
    mapped = {k: v for k, v in as_dict(body.get("$set")).items() if _present(v)}
    consumed = _consumed_traits(kit)
    profile = {k: v for k, v in traits.items() if k not in consumed}
    profile.update(mapped)
    first = mapped.get("$first_name", mapped.get("$firstName"))
    last = mapped.get("$last_name", mapped.get("$lastName"))
    if "$name" not in profile and _present(first) and _present(last):
        profile["$name"] = f"{formats.to_string(first)} {formats.to_string(last)}"
    profile.update(_device_fields(context))
    profile.update(_browser(event))

    update = {k: v for k, v in body.items() if k != "$set"}
    update["$set"] = profile
    update["$distinct_id"] = distinct
    if context.get("active") is False:
        update["$ignore_time"] = True

    requests = []
    set_once = as_dict(event.get("_set_once"))
    if set_once:
        once = _profile_update("$set_once", set_once, distinct, kit)
        requests.append(kit.request("engage_set_once", once, event))
    requests.append(kit.request("engage", update, event))
    user, anon = _user_id(event), as_identifier(event.get("anonymousId"))
    if not _simplified(kit) and user is not None and anon is not None and user != anon:
        props = {"$distinct_ids": [user, anon], "token": kit.settings["token"]}
        merge = {"event": "$merge", "properties": props}
        requests.append(kit.request("identity", merge, event))
    return requests


# -- group -----------------------------------------------------------------------------------------------
def _group_requests(body: dict[str, Any], event: dict[str, Any], kit: Kit) -> list[VendorRequest]:
    keys = [
        k for k in (as_dict(i).get("groupKey") for i in kit.settings.get("groupKeySettings") or [])
        if isinstance(k, str) and k.strip()
    ]  # fmt: skip
    if not keys:
        raise ConfigurationError(
            "`Group Key Settings` is not configured in destination; add the group keys (e.g. company) "
            "to use group events"
        )
    traits = as_dict(event.get("traits"))
    distinct = _distinct_id(event, kit)
    ip = as_dict(event.get("context")).get("ip")
    requests = []
    for key in keys:
        ids = _group_ids(event, key)
        if not ids:
            continue
        membership: dict[str, Any] = {"$token": body["$token"], "$distinct_id": distinct, "$set": {key: ids}}
        if _present(ip):
            membership["$ip"] = ip
        requests.append(kit.request("engage", membership, event))
        for gid in ids:
            group = {"$token": body["$token"], "$group_key": key, "$group_id": gid, "$set": traits}
            requests.append(kit.request("groups", group, event))
    if not requests:
        raise InstrumentationError(
            f"the group event carries none of the configured group keys ({', '.join(keys)}) "
            "in its fields or traits; add one"
        )
    return requests


def _group_ids(event: dict[str, Any], key: str) -> list[str]:
    """The group ids for ``key``: the event's own field first (e.g. groupId), then the group traits."""
    parts = split_path(key)
    value: Any = MISSING
    for root in (event, as_dict(event.get("traits")), as_dict(as_dict(event.get("context")).get("traits"))):
        value = get_path(root, parts)
        if _present(value):
            break
    values = value if isinstance(value, list) else [value]
    return [s for s in (as_identifier(v) for v in values) if s is not None]
