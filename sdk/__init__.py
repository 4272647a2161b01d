"""Sluice connector SDK: declarative destination specs, mapping engine and test harness."""

__version__ = "0.1.0"
