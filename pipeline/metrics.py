"""Prometheus metrics, defined once per process (the default registry refuses duplicates).

When ``sluice up`` runs the workers in a second process it sets ``PROMETHEUS_MULTIPROC_DIR`` before
this module is imported, so both processes write their samples there and the gateway's ``/metrics``
serves the sum (see ``render``).
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

EVENTS_ACCEPTED = Counter(
    "sluice_gateway_events_accepted_total", "Events committed and acknowledged", ["source"]
)
REQUESTS_REJECTED = Counter("sluice_gateway_requests_rejected_total", "Requests refused", ["status"])
GROUP_COMMIT_EVENTS = Histogram(
    "sluice_gateway_group_commit_events",
    "Events per group commit",
    buckets=(1, 5, 10, 50, 100, 500, 1000, 5000, 20000),
)
GROUP_COMMIT_SECONDS = Histogram(
    "sluice_gateway_group_commit_seconds",
    "Duration of one group commit",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
GATEWAY_BACKLOG = Gauge(
    "sluice_gateway_backlog_events", "Events waiting for the group commit", multiprocess_mode="livesum"
)
DATABASE_UP = Gauge(
    "sluice_database_up", "1 when the gateway's database connection works", multiprocess_mode="livemax"
)
PROCESSED = Counter("sluice_processor_events_total", "Gateway events processed", ["outcome"])
DELIVERY_JOBS_CREATED = Counter(
    "sluice_processor_delivery_jobs_total", "Delivery jobs created", ["destination"]
)
DELIVERIES = Counter("sluice_router_jobs_total", "Delivery job outcomes", ["destination", "outcome"])
REQUESTS_SENT = Counter("sluice_router_requests_total", "Vendor requests sent", ["destination", "status"])
DEAD_LETTERS = Counter(
    "sluice_dead_letters_total", "Events moved to the dead-letter store", ["destination", "stage"]
)


def render() -> bytes:
    """The text exposition of every metric, summed over the pipeline's processes when split."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()
