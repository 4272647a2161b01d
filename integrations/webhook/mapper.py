"""Webhook: the method and headers come from settings, which the spec language cannot template."""

from __future__ import annotations

from sdk.request import VendorRequest


def transform(event, kit):
    s = kit.settings
    headers = {"content-type": "application/json"}
    for pair in s.get("headers") or []:
        if isinstance(pair, dict) and pair.get("from"):
            headers[str(pair["from"])] = str(pair.get("to", ""))
    return VendorRequest(method=s.get("webhookMethod") or "POST", url=s["webhookUrl"], headers=headers, json=event)
