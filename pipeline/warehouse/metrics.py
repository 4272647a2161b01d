"""Prometheus metrics of warehouse loads (served with the others on the gateway's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LOADS = Counter("sluice_warehouse_loads_total", "Warehouse loads by outcome", ["destination", "outcome"])
EVENTS = Counter("sluice_warehouse_events_loaded_total", "Events loaded into the warehouse", ["destination"])
ROWS = Counter("sluice_warehouse_rows_loaded_total", "Rows loaded into the warehouse", ["destination"])
DISCARDS = Counter(
    "sluice_warehouse_discards_total", "Values sent to rudder_discards (type conflicts)", ["destination"]
)
TABLES_ADDED = Counter("sluice_warehouse_tables_added_total", "Tables created by loads", ["destination"])
COLUMNS_ADDED = Counter("sluice_warehouse_columns_added_total", "Columns added by loads", ["destination"])
LOAD_SECONDS = Histogram(
    "sluice_warehouse_load_seconds",
    "Duration of one load (dlt load step)",
    ["destination"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
LAG_SECONDS = Gauge(
    "sluice_warehouse_lag_seconds",
    "Age of the oldest event waiting for this warehouse",
    ["destination"],
    multiprocess_mode="livemax",
)
