"""What a compiled expression reads while one event is transformed.

One ``Env`` is made per event (cheap: a handful of attribute stores). ``let`` values are computed on first
use and remembered for the rest of that event, so a value several fields need (a distinct id, the merged
traits) is worked out once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sdk.context import TransformContext
from sdk.mapping.paths import MISSING

_COMPUTING: Any = object()
_ABSENT: Any = object()  # not computed yet (a let may compute to MISSING, which is then remembered)


class Env:
    __slots__ = (
        "event",
        "settings",
        "vars",
        "ctx",
        "lets",
        "memo",
        "item",
        "index",
        "names",
        "_opts",
        "etype",
        "cfg",
    )

    def __init__(
        self,
        event: dict[str, Any],
        settings: dict[str, Any],
        vars: dict[str, Any],
        ctx: TransformContext,
        lets: dict[str, Callable[[Env], Any]],
        names: tuple[str, ...] = (),
        etype: str = "",
        cfg: dict[Any, Any] | None = None,
    ):
        self.event = event
        self.settings = settings
        self.vars = vars
        self.ctx = ctx
        self.lets = lets
        self.memo: dict[str, Any] = {}
        self.item: Any = MISSING
        self.index: Any = MISSING
        self.names = names
        self._opts: Any = None
        self.etype = etype
        # Values computed once per config (settings-only expressions), shared by every event of it.
        self.cfg = {} if cfg is None else cfg

    def let(self, name: str) -> Any:
        v = self.memo.get(name, _ABSENT)
        if v is _ABSENT:
            fn = self.lets.get(name)
            if fn is None:
                return MISSING
            self.memo[name] = _COMPUTING
            v = fn(self)
            self.memo[name] = v
        elif v is _COMPUTING:
            raise RecursionError(f"let.{name} refers to itself")
        return v

    @property
    def opts(self) -> Any:
        if self._opts is None:
            self._opts = integration_options(self.event, self.names)
        return self._opts

    def ctx_value(self, name: str) -> Any:
        ctx = self.ctx
        if name == "now":
            return ctx.now_iso()
        if name == "now_ms":
            return ctx.now_ms
        if name == "now_s":
            return ctx.now_s
        if name == "message_id":
            mid = self.event.get("messageId")
            if isinstance(mid, str) and mid:
                return mid
            if isinstance(mid, int | float) and not isinstance(mid, bool):
                return str(mid)
            return ctx.stable_id()
        if name == "new_id":
            return ctx.new_id()
        if name == "type":
            return self.etype
        return MISSING


CTX_NAMES = ("now", "now_ms", "now_s", "message_id", "new_id", "type")


def integration_options(event: Any, names: tuple[str, ...]) -> Any:
    """``integrations.<destination>`` as an object, under any of the destination's names (case-insensitive).

    Segment and RudderStack clients address a destination by display name (``"Google Analytics 4"``),
    type (``"GA4"``) or other spellings; the processor routes by the same names, so options follow the
    same rule. A ``true`` (enabled, no options) reads as no options.
    """
    integ = event.get("integrations") if type(event) is dict else None
    if type(integ) is not dict or not integ:
        return MISSING
    for n in names:
        v = integ.get(n)
        if type(v) is dict:
            return v
    lowered = {n.lower() for n in names}
    for k, v in integ.items():
        if type(v) is dict and isinstance(k, str) and k.strip().lower() in lowered:
            return v
    return MISSING
