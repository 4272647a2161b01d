"""Braze: the procedural parts the spec language cannot say.

Why a mapper at all:

* every Braze object must carry exactly one identity, either ``external_id`` (the userId) or a
  ``user_alias`` for anonymous users, and alias-only profiles need ``_update_existing_only: false``;
* identify must first merge the anonymous alias profile into the identified one (``/users/identify``)
  before the attributes are written, so one event can become two requests;
* traits are renamed to Braze's reserved attribute names and the rest pass through as custom attributes,
  keeping explicit nulls (Braze clears an attribute set to null);
* ``Order Completed`` becomes one purchase object per product (Braze has no multi-product purchase), or,
  when configured, a Braze recommended e-commerce event with its own product shape;
* group is either a group attribute or a subscription-group status change, depending on a setting.

Batching needs no code: each endpoint's ``batch`` block in spec.yaml holds Braze's per-array limits.

Everything here is pure: time comes from ``kit.ctx``; errors are ``sdk.errors`` types.
"""

from __future__ import annotations

import math
from typing import Any

from sdk.errors import ConfigurationError, InstrumentationError
from sdk.mapping import formats
from sdk.request import VendorRequest

PARTNER = "RudderStack"
ALIAS_LABEL = "rudder_id"

# RudderStack trait name -> Braze reserved attribute name. Traits not listed pass through unchanged.
TRAIT_RENAMES = {
    "firstName": "first_name",
    "lastName": "last_name",
    "birthday": "dob",
    "avatar": "image_url",
}
GENDERS = {
    "m": "M", "male": "M", "man": "M",
    "f": "F", "female": "F", "woman": "F", "w": "F",
    "o": "O", "other": "O",
    "n": "N", "not applicable": "N", "na": "N",
    "p": "P", "prefer not to say": "P",
}  # fmt: skip
NESTED_OPS = {"add": "$add", "remove": "$remove", "update": "$update"}

# Braze recommended e-commerce events: RudderStack e-commerce spec name -> (Braze name, cart action).
ECOMMERCE_EVENTS: dict[str, tuple[str, str | None]] = {
    "product viewed": ("ecommerce.product_viewed", None),
    "product added": ("ecommerce.cart_updated", "add"),
    "product removed": ("ecommerce.cart_updated", "remove"),
    "checkout started": ("ecommerce.checkout_started", None),
    "order completed": ("ecommerce.order_placed", None),
    "order cancelled": ("ecommerce.order_cancelled", None),
    "order refunded": ("ecommerce.order_refunded", None),
}
# Product fields with a Braze name; any other product key goes to the product's `metadata`.
# Product keys that a Braze purchase object has its own fields for; the rest become purchase properties.
PURCHASE_FIELDS = {"product_id", "sku", "price", "quantity", "currency"}
PRODUCT_FIELDS = {"product_id", "sku", "name", "variant", "price", "quantity", "image_url", "url", "currency"}


# -- small helpers -------------------------------------------------------------------------------------
def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _present(v: Any) -> bool:
    return v is not None and v != "" and not isinstance(v, (dict, list))


def _id(v: Any) -> str | None:
    """An identifier as Braze wants it (a non-empty string), or None."""
    if isinstance(v, bool) or not _present(v):
        return None
    return formats.to_string(v)


def _integration_options(event: dict[str, Any]) -> dict[str, Any]:
    """The event's per-destination options (``integrations.Braze``), whatever the key's case."""
    for k, v in _dict(event.get("integrations")).items():
        if isinstance(k, str) and k.lower() == "braze" and isinstance(v, dict):
            return v
    return {}


def _normalise(event: dict[str, Any]) -> dict[str, Any]:
    """Copy the event with ``integrations.braze`` under a fixed key, so spec paths can read it."""
    opts = _integration_options(event)
    integ = dict(_dict(event.get("integrations")))
    integ["braze"] = opts
    return {**event, "integrations": integ}


def _set_host(kit) -> None:
    """Resolve the REST host from ``dataCenter`` case-insensitively (the spec's table is lower-case)."""
    raw = kit.settings.get("dataCenter")
    table = kit.spec.vars["host"].map
    host = table.get(raw.strip().lower()) if isinstance(raw, str) else None
    if not host:
        raise ConfigurationError(
            f"Braze: dataCenter {raw!r} is not a known Braze instance; use one of "
            f"{', '.join(k.upper() for k in table)} (see the Braze dashboard URL)"
        )
    kit.vars["host"] = host


# -- identity ------------------------------------------------------------------------------------------
def _override_alias(event: dict[str, Any]) -> dict[str, str] | None:
    """``integrations.Braze.alias = {alias_label, alias_name}`` lets a sender pick the alias Braze uses."""
    alias = _integration_options(event).get("alias")
    if isinstance(alias, dict):
        label, name = _id(alias.get("alias_label")), _id(alias.get("alias_name"))
        if label and name:
            return {"alias_label": label, "alias_name": name}
    return None


def _anonymous_alias(event: dict[str, Any]) -> dict[str, str] | None:
    anon = _id(event.get("anonymousId"))
    return {"alias_label": ALIAS_LABEL, "alias_name": anon} if anon else None


def _external_id(event: dict[str, Any]) -> str | None:
    """``context.externalId`` of type ``brazeExternalId`` if the sender set one, else the userId."""
    ids = _dict(event.get("context")).get("externalId")
    for item in ids if isinstance(ids, list) else []:
        if isinstance(item, dict) and str(item.get("type", "")).lower() == "brazeexternalid":
            found = _id(item.get("id"))
            if found:
                return found
    return _id(event.get("userId"))


def _identity(event: dict[str, Any]) -> dict[str, Any]:
    """The identity every Braze object needs: external_id, else an alias for an anonymous profile."""
    uid = _external_id(event)
    if uid:
        return {"external_id": uid}
    alias = _override_alias(event) or _anonymous_alias(event)
    if alias:
        # Braze only creates alias-only profiles when told not to restrict the update to existing users.
        return {"user_alias": alias, "_update_existing_only": False}
    raise InstrumentationError("Braze needs a userId or an anonymousId to identify the user; set one of them")


# -- user attributes -----------------------------------------------------------------------------------
def _nested_ops(value: Any) -> Any:
    """``{add: [...], remove: [...], update: [...]}`` -> Braze's ``$add/$remove/$update`` array operations."""
    if not (isinstance(value, dict) and value and set(value) <= set(NESTED_OPS)):
        return value
    if not all(isinstance(v, list) for v in value.values()):
        return value
    out: dict[str, Any] = {}
    for op, items in value.items():
        if op == "add":
            out["$add"] = items
            continue
        converted = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("identifier"), str):
                raise InstrumentationError(
                    f"Braze nested array {op}: each item needs an 'identifier' naming its key field; add it"
                )
            key = item["identifier"]
            entry: dict[str, Any] = {"$identifier_key": key, "$identifier_value": item.get(key)}
            if op == "update":
                entry["$new_object"] = {k: v for k, v in item.items() if k not in ("identifier", key)}
            converted.append(entry)
        out[NESTED_OPS[op]] = converted
    return out


def _email(v: Any) -> Any:
    if v is None:
        return None
    if not isinstance(v, str):
        raise InstrumentationError("Invalid email, email must be a valid string")
    return v.strip().lower()


def _gender(v: Any) -> Any:
    if isinstance(v, str):
        return GENDERS.get(v.strip().lower(), v)
    return v


def _user_attributes(traits: dict[str, Any], kit) -> dict[str, Any]:
    """Traits -> a Braze attributes object (reserved names renamed, the rest as custom attributes)."""
    out: dict[str, Any] = {}
    nested = bool(kit.settings.get("enableNestedArrayOperations"))
    for key, value in traits.items():
        if not isinstance(key, str) or key == "address":
            continue
        if key == "email":
            out["email"] = _email(value)
        elif key == "gender":
            out["gender"] = _gender(value)
        else:
            out[TRAIT_RENAMES.get(key, key)] = _nested_ops(value) if nested else value
    address = traits.get("address")
    if isinstance(address, dict):
        if "city" in address:
            out["home_city"] = address["city"]
        if "country" in address:
            out["country"] = address["country"]
    return out


def _attributes_object(traits: dict[str, Any], event: dict[str, Any], kit) -> dict[str, Any] | None:
    attrs = _user_attributes(traits, kit)
    if not attrs:
        return None
    obj = {**attrs, **_identity(event)}
    merge_objects = _dict(event.get("properties")).get("mergeObjectsUpdateOperation")
    if isinstance(merge_objects, bool) and kit.settings.get("enableNestedArrayOperations"):
        # Part of the nested custom attribute feature: Braze replaces nested objects unless told to merge.
        obj["_merge_objects"] = merge_objects
    return obj


def _event_time(obj: dict[str, Any], kit) -> None:
    """Braze wants ISO-8601 strings; numbers (epoch) are converted, strings are kept as sent."""
    t = obj.get("time")
    if isinstance(t, str) and t.strip():
        return
    try:
        obj["time"] = formats.to_iso(t) if t is not None else kit.ctx.now_iso()
    except formats.FormatError:
        obj["time"] = kit.ctx.now_iso()


# -- event types ---------------------------------------------------------------------------------------
def _identify(event: dict[str, Any], kit) -> list[VendorRequest]:
    traits = {**_dict(_dict(event.get("context")).get("traits")), **_dict(event.get("traits"))}
    obj = _attributes_object(traits, event, kit)
    if obj is None:
        raise InstrumentationError("No attributes found to update the user profile; send traits")
    requests = []
    uid = _external_id(event)
    alias = _override_alias(event) or _anonymous_alias(event)
    if uid and alias:
        # Merge what was recorded on the anonymous (alias-only) profile into the identified user first.
        body = {"aliases_to_identify": [{"external_id": uid, "user_alias": alias}]}
        requests.append(kit.request("identify", body, event))
    requests.append(kit.request("track", {"attributes": [obj]}, event))
    return requests


def _custom_event(event: dict[str, Any], kit, etype: str) -> dict[str, Any]:
    obj = kit.map(event, etype)
    if not isinstance(obj.get("properties"), dict):
        obj.pop("properties", None)
    if not obj.get("app_id"):
        obj.pop("app_id", None)
    _event_time(obj, kit)
    return {**obj, **_identity(event)}


def _number(v: Any, what: str) -> Any:
    try:
        n = formats.to_number(v)
    except formats.FormatError as e:
        raise InstrumentationError(f"Braze: {what} must be a number ({e}); fix the event") from e
    if isinstance(n, float) and not math.isfinite(n):
        raise InstrumentationError(f"Braze: {what} must be a finite number, got {v!r}; fix the event")
    return n


def _purchases(event: dict[str, Any], products: list[Any], time: str, kit) -> list[dict[str, Any]]:
    """One Braze purchase per product; product_id, price and currency are required by Braze."""
    props = _dict(event.get("properties"))
    extra = bool(kit.settings.get("sendPurchaseEventWithExtraProperties"))
    ident = _identity(event)
    out = []
    bad = "Invalid Order Completed event:"
    for i, product in enumerate(products):
        if not isinstance(product, dict):
            raise InstrumentationError(f"{bad} product at index: {i} is not an object; send objects")
        pid = _id(product.get("product_id")) or _id(product.get("sku"))
        if not pid:
            raise InstrumentationError(f"{bad} product at index: {i} is missing product_id; add it")
        if product.get("price") is None:
            raise InstrumentationError(f"{bad} product at index: {i} is missing price; add it")
        currency = _id(product.get("currency")) or _id(props.get("currency"))
        if not currency:
            raise InstrumentationError(
                f"{bad} Message properties and product at index: {i} is missing currency; add currency"
            )
        purchase: dict[str, Any] = {
            "product_id": pid,
            "price": _number(product["price"], f"products[{i}].price"),
            "currency": currency,
            "time": time,
        }
        if product.get("quantity") is not None:
            purchase["quantity"] = int(_number(product["quantity"], f"products[{i}].quantity"))
        if extra:
            rest = {k: v for k, v in product.items() if k not in PURCHASE_FIELDS}
            if rest:
                purchase["properties"] = rest
        out.append({**purchase, **ident})
    return out


def _ecom_product(p: dict[str, Any], for_list: bool = True) -> dict[str, Any]:
    """A RudderStack product -> a Braze recommended-event product (unknown keys under ``metadata``)."""
    out: dict[str, Any] = {}
    pid = _id(p.get("product_id")) or _id(p.get("sku"))
    if pid:
        out["product_id"] = pid
    if p.get("name") is not None:
        out["product_name"] = p["name"]
    variant = _id(p.get("variant")) or pid
    if variant:
        out["variant_id"] = variant
    for src, dst in (("price", "price"), ("image_url", "image_url"), ("url", "product_url")):
        if p.get(src) is not None:
            out[dst] = p[src]
    consumed = set(PRODUCT_FIELDS)
    if for_list:
        if p.get("quantity") is not None:
            out["quantity"] = p["quantity"]
    else:
        consumed.discard("quantity")
    meta = {k: v for k, v in p.items() if k not in consumed}
    if meta and for_list:
        out["metadata"] = meta
    return out


def _ecommerce_event(event: dict[str, Any], name: str, action: str | None, kit) -> dict[str, Any]:
    """A Braze recommended e-commerce event (ecommerce.*) from a RudderStack e-commerce spec event."""
    props = _dict(event.get("properties"))
    consumed: set[str] = set()
    out: dict[str, Any] = {}

    def take(dst: str, *srcs: str) -> None:
        for s in srcs:
            if props.get(s) is not None:
                out[dst] = props[s]
                consumed.add(s)
                return

    if name == "ecommerce.product_viewed":
        out.update(_ecom_product(props, for_list=False))
        consumed |= PRODUCT_FIELDS - {"quantity"}
        take("currency", "currency")
    else:
        if action:
            out["action"] = action
        take("cart_id", "cart_id")
        if name == "ecommerce.checkout_started":
            take("checkout_id", "checkout_id", "order_id")
        elif name != "ecommerce.cart_updated":
            take("order_id", "order_id")
        take("currency", "currency")
        take("total_value", "total", "revenue", "value")
        take("total_discounts", "discount")
        take("shipping", "shipping")
        take("tax", "tax")
        if name == "ecommerce.order_cancelled":
            take("cancel_reason", "cancel_reason")
        products = props.get("products")
        if isinstance(products, list):
            consumed.add("products")
            out["products"] = [_ecom_product(p) for p in products if isinstance(p, dict)]
        elif name == "ecommerce.cart_updated" and (props.get("product_id") or props.get("sku")) is not None:
            # A single-product event: its product fields describe the one product in the cart change.
            out["products"] = [_ecom_product({k: v for k, v in props.items() if k in PRODUCT_FIELDS})]
            consumed |= PRODUCT_FIELDS
    source = props.get("source") if isinstance(props.get("source"), str) else event.get("channel")
    consumed.add("source")
    if isinstance(source, str) and source:
        out["source"] = source
    meta = {k: v for k, v in props.items() if k not in consumed}
    if meta:
        out["metadata"] = meta
    obj = {"name": name, "properties": out}
    base = kit.map(event, "track")
    obj["time"] = base.get("time")
    if base.get("app_id"):
        obj["app_id"] = base["app_id"]
    _event_time(obj, kit)
    return {**obj, **_identity(event)}


def _track_like(event: dict[str, Any], kit, etype: str) -> list[VendorRequest]:
    body: dict[str, Any] = {}
    attrs = _attributes_object(_dict(_dict(event.get("context")).get("traits")), event, kit)
    if attrs is not None:
        body["attributes"] = [attrs]
    if etype != "track":
        body["events"] = [_custom_event(event, kit, etype)]
        body["partner"] = PARTNER
        return [kit.request("track", body, event)]
    name = event.get("event")
    key = name.strip().lower() if isinstance(name, str) else ""
    if kit.settings.get("useEcommerceRecommendedEvents") and key in ECOMMERCE_EVENTS:
        braze_name, action = ECOMMERCE_EVENTS[key]
        body["events"] = [_ecommerce_event(event, braze_name, action, kit)]
        body["partner"] = PARTNER
        return [kit.request("track", body, event)]
    products = _dict(event.get("properties")).get("products")
    if key == "order completed" and isinstance(products, list) and products:
        time = _custom_event(event, kit, "track")["time"]
        purchases = _purchases(event, products, time, kit)
        # Braze takes at most 75 purchases per request: a big order becomes several requests.
        requests = []
        for start in range(0, len(purchases), 75):
            chunk = dict(body) if start == 0 else {}
            chunk["purchases"] = purchases[start : start + 75]
            chunk["partner"] = PARTNER
            requests.append(kit.request("track", chunk, event))
        return requests
    body["events"] = [_custom_event(event, kit, "track")]
    body["partner"] = PARTNER
    return [kit.request("track", body, event)]


def _group(event: dict[str, Any], kit) -> list[VendorRequest]:
    traits = _dict(event.get("traits"))
    group_id = _id(event.get("groupId")) or _id(traits.get("groupId"))
    if not group_id:
        raise InstrumentationError("Braze group calls need a groupId; set groupId")
    if not kit.settings.get("enableSubscriptionGroupInGroupCall"):
        obj = {f"ab_rudder_group_{group_id}": True, **_identity(event)}
        return [kit.request("track", {"attributes": [obj], "partner": PARTNER}, event)]
    state = traits.get("subscriptionState")
    if state not in ("subscribed", "unsubscribed"):
        raise InstrumentationError(
            "Braze subscription-group calls need traits.subscriptionState subscribed or unsubscribed; set it"
        )
    group: dict[str, Any] = {"subscription_group_id": group_id, "subscription_state": state}
    uid = _external_id(event)
    if uid:
        group["external_ids"] = [uid]
    email, phone = _id(traits.get("email")), _id(traits.get("phone"))
    if email:
        group["emails"] = [email]
    if phone:
        group["phones"] = [phone]
    if not (uid or email or phone):
        raise InstrumentationError(
            "Braze subscription-group calls need a userId, traits.email or traits.phone to find the user"
        )
    return [kit.request("subscription", {"subscription_groups": [group]}, event)]


def _alias(event: dict[str, Any], kit) -> list[VendorRequest]:
    if not _id(event.get("previousId")):
        raise InstrumentationError("[BRAZE]: previousId is required for alias call; set previousId")
    if not _id(event.get("userId")):
        raise InstrumentationError("[BRAZE]: userId is required for alias call; set userId")
    update = kit.map(event, "alias")
    return [kit.request("merge", {"merge_updates": [update]}, event)]


def transform(event: dict[str, Any], kit) -> list[VendorRequest]:
    _set_host(kit)
    event = _normalise(event)
    etype = str(event.get("type", "")).strip().lower()
    if etype == "identify":
        return _identify(event, kit)
    if etype in ("track", "page", "screen"):
        return _track_like(event, kit, etype)
    if etype == "group":
        return _group(event, kit)
    return _alias(event, kit)
