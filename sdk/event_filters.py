"""Settings every destination shares: event filtering and consent, applied before any mapping.

RudderStack puts the same keys on every destination (``eventFilteringOption`` with ``whitelistedEvents`` /
``blacklistedEvents``; ``oneTrustCookieCategories``, ``ketchConsentPurposes`` and ``consentManagement``), so
configs migrate unchanged and no connector implements them itself. A filtered event raises
``EventDropped``: nothing is sent and it is not an error.

Consent follows RudderStack's documented rules: the event's ``context.consentManagement`` carries
``allowedConsentIds`` / ``deniedConsentIds``, a ``provider`` and (for OneTrust, Ketch and iubenda) a
``resolutionStrategy``; the destination lists the category ids it needs, per source type. With ``and`` every
configured id must be consented (none denied); with ``or`` one consented id is enough. OneTrust and Ketch's
older settings mean ``and``. An event without consent data, or a destination without consent settings,
is not filtered.
"""

from __future__ import annotations

from typing import Any

from sdk.errors import EventDropped


def _rows(value: Any, field: str, source_type: str | None) -> list[str]:
    """Ids from ``[{field: id}]`` rows, or from ``{sourceType: rows}`` (one source type, or all of them)."""
    if isinstance(value, dict):
        if source_type and source_type in value:
            groups = [value[source_type]]
        else:
            groups = list(value.values())
        out: list[str] = []
        for g in groups:
            out.extend(_rows(g, field, None))
        return out
    if not isinstance(value, list):
        return []
    out = []
    for row in value:
        v = row.get(field) if isinstance(row, dict) else row if isinstance(row, str) else None
        if isinstance(v, str) and v.strip():
            out.append(v.strip())
    return out


def check_event_filtering(event: dict[str, Any], etype: str, settings: dict[str, Any]) -> None:
    """Allow- or denylist of track event names (exact names, surrounding spaces ignored)."""
    option = settings.get("eventFilteringOption")
    if etype != "track" or option not in ("whitelistedEvents", "blacklistedEvents"):
        return
    name = event.get("event")
    name = name.strip() if isinstance(name, str) else None
    if option == "whitelistedEvents":
        allowed = set(_rows(settings.get("whitelistedEvents"), "eventName", None))
        if name not in allowed:
            raise EventDropped(
                f"track event {name!r} is not in the destination's allowlist (whitelistedEvents)"
            )
    else:
        denied = set(_rows(settings.get("blacklistedEvents"), "eventName", None))
        if name in denied:
            raise EventDropped(f"track event {name!r} is in the destination's denylist (blacklistedEvents)")


def _ids(v: Any) -> set[str] | None:
    if not isinstance(v, list):
        return None
    return {str(x).strip() for x in v if isinstance(x, str | int) and not isinstance(x, bool)}


def _resolve(configured: list[str], strategy: str, allowed: set[str] | None, denied: set[str] | None) -> bool:
    """Whether the event may go: True when consent covers the configured ids."""
    if not configured:
        return True
    if strategy == "or":
        if allowed is not None:
            return any(c in allowed for c in configured)
        return denied is None or not all(c in denied for c in configured)
    if denied is not None and any(c in denied for c in configured):
        return False
    return allowed is None or all(c in allowed for c in configured)


def check_consent(event: dict[str, Any], settings: dict[str, Any], source_type: str | None) -> None:
    ctx = event.get("context")
    cm = ctx.get("consentManagement") if isinstance(ctx, dict) else None
    if not isinstance(cm, dict):
        return
    allowed, denied = _ids(cm.get("allowedConsentIds")), _ids(cm.get("deniedConsentIds"))
    if allowed is None and denied is None:
        return
    provider = str(cm.get("provider") or "").strip()
    event_strategy = str(cm.get("resolutionStrategy") or "and").strip().lower()
    ok = True
    rules = settings.get("consentManagement")
    groups = rules.get(source_type) if isinstance(rules, dict) and source_type in rules else rules
    matched = False
    for group in _flat(groups):
        if not isinstance(group, dict) or str(group.get("provider") or "oneTrust") != (
            provider or "oneTrust"
        ):
            continue
        matched = True
        configured = _rows(group.get("consents"), "consent", None)
        strategy = (
            str(group.get("resolutionStrategy") or "and").lower() if provider == "custom" else event_strategy
        )
        ok = ok and _resolve(configured, strategy, allowed, denied)
    if not matched and provider in ("", "oneTrust", "ketch"):
        legacy = "oneTrustCookieCategories" if provider in ("", "oneTrust") else "ketchConsentPurposes"
        field = "oneTrustCookieCategory" if legacy == "oneTrustCookieCategories" else "purpose"
        configured = _rows(settings.get(legacy), field, source_type)
        ok = _resolve(configured, "and", allowed, denied)
    if not ok:
        raise EventDropped(
            f"the user has not consented to what this destination requires ({provider or 'oneTrust'} consent)"
        )


def _flat(groups: Any) -> list[Any]:
    if isinstance(groups, list):
        return groups
    if isinstance(groups, dict):
        out: list[Any] = []
        for g in groups.values():
            out.extend(g if isinstance(g, list) else [])
        return out
    return []
