"""Sluice connector SDK: declarative destination specs, mapping engine and test harness.

What a ``mapper.py`` may import (everything else in ``sdk`` is engine internals and may change):

* errors: ``InstrumentationError`` (the event is wrong), ``ConfigurationError`` (the settings are wrong),
  ``UnsupportedEventError``, ``EventDropped`` (send nothing, not an error);
* ``get(obj, "a.b[0].c", default)``: read a path without caring whether the parts exist;
* ``formats``: the spec language's formats as functions (``formats.to_number``, ``formats.sha256``, ...),
  with ``FormatError``;
* ``TransformContext``: the ``ctx`` a refine/call function receives (``now``, ``now_ms``, ``new_id()``).

Mapper functions are pure: ``refine(body, event, settings, ctx)`` returns the refined body, a list of
bodies or None; ``call`` functions take ``(value, event, settings, ctx)`` and return a value. They never
modify ``event`` or ``settings``.
"""

__version__ = "0.2.0"

from sdk.context import TransformContext  # noqa: E402
from sdk.errors import (  # noqa: E402
    ConfigurationError,
    EventDropped,
    InstrumentationError,
    UnsupportedEventError,
)
from sdk.mapping import formats  # noqa: E402
from sdk.mapping.formats import FormatError  # noqa: E402
from sdk.mapping.paths import get  # noqa: E402

__all__ = [
    "ConfigurationError",
    "EventDropped",
    "FormatError",
    "InstrumentationError",
    "TransformContext",
    "UnsupportedEventError",
    "formats",
    "get",
]
