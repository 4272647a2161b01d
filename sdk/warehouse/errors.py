"""The row model's errors: members of the SDK's one error tree (``sdk/errors.py``)."""

from __future__ import annotations

from sdk.errors import ConfigurationError, InstrumentationError


class UnknownProviderError(ConfigurationError):
    """The warehouse type is not one Sluice knows; the message lists the known ones."""

    type = "unknown_provider"


class TooManyColumnsError(InstrumentationError):
    """One event would add more columns than a warehouse row should carry; send nested data as a
    JSON column (``jsonPaths``) instead, or raise ``WH_MAX_COLUMNS_IN_EVENT``."""

    type = "too_many_columns"


__all__ = ["InstrumentationError", "TooManyColumnsError", "UnknownProviderError"]
