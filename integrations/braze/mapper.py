"""Braze: the one procedure the spec language cannot say.

Under ``enableNestedArrayOperations`` a custom attribute shaped ``{add: [...], remove: [...], update: [...]}``
becomes Braze's array-of-objects operations. Each update/remove item names its key field in ``identifier``;
the object Braze merges (``$new_object``) is the item without ``identifier`` and without the field that
``identifier`` names: a key known only at run time.
"""

from __future__ import annotations

from typing import Any

from sdk import InstrumentationError

_OPS = {"add": "$add", "remove": "$remove", "update": "$update"}


def nested_operations(attributes: Any, event: dict[str, Any], settings: dict[str, Any], ctx: Any) -> Any:
    """Custom attributes with each operation-shaped value as Braze nested-array operations."""
    if not isinstance(attributes, dict):
        return attributes
    return {k: _operations(v) for k, v in attributes.items()}


def _operations(value: Any) -> Any:
    if not (isinstance(value, dict) and value and set(value) <= set(_OPS)):
        return value
    if not all(isinstance(v, list) for v in value.values()):
        return value
    return {_OPS[op]: _converted(op, items) for op, items in value.items()}


def _converted(op: str, items: list[Any]) -> list[Any]:
    return items if op == "add" else [_identified(op, item) for item in items]


def _identified(op: str, item: Any) -> dict[str, Any]:
    key = item.get("identifier") if isinstance(item, dict) else None
    if not isinstance(key, str):
        raise InstrumentationError(
            f"Braze nested array {op}: each item needs an 'identifier' naming its key field; add it"
        )
    entry = {"$identifier_key": key, "$identifier_value": item.get(key)}
    if op == "update":
        entry["$new_object"] = {k: v for k, v in item.items() if k not in ("identifier", key)}
    return entry
