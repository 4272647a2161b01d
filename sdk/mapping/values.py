"""Small value coercions mappers share, so each vendor's mapper does not grow its own copy."""

from __future__ import annotations

from typing import Any

from sdk.mapping.formats import to_string


def as_identifier(v: Any) -> str | None:
    """A usable identifier: a non-blank string, or a number as its string; anything else is None.

    Vendors key people and objects by string ids; clients send numbers, booleans and blanks too.
    Booleans are refused because ``True`` is never somebody's id.
    """
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return to_string(v)
    if isinstance(v, str) and v.strip():
        return v
    return None


def as_dict(v: Any) -> dict[str, Any]:
    """``v`` if it is an object, else an empty one (events often carry ``properties: null`` or a string)."""
    return v if isinstance(v, dict) else {}
