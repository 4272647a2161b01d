"""The declarative destination spec: its model and how it is loaded from ``spec.yaml``."""

from sdk.spec.model import DestinationSpec

__all__ = ["DestinationSpec"]
