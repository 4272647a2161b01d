"""Sluice pipeline: gateway, Postgres queue, processor and router, started by ``sluice up``."""
