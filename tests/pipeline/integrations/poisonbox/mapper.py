"""The buggy mapper of the poisonbox test destination (see spec.yaml)."""

from __future__ import annotations

from typing import Any

from sdk.request import VendorRequest


def transform(event: dict[str, Any], kit: Any) -> VendorRequest:
    body = dict(event)
    if (event.get("properties") or {}).get("poison"):
        body["bug"] = "a\u0000b"  # jsonb refuses \u0000: the hand-off transaction fails
    return VendorRequest(method="POST", url=kit.settings["url"], json=body)
