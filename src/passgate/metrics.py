"""Passgate's Prometheus metrics, all in one place (the service layer counts, `web.metrics` exposes them).

With several worker processes, `passgate serve` sets PROMETHEUS_MULTIPROC_DIR before the workers start, so
prometheus_client keeps each process's values in files there and a scrape adds them up (`registry`). The
directory must be set before this module is first imported in a process: prometheus_client chooses where
values live when the first metric is made.

Every label takes values from a closed set (event types, error codes, route templates, limit names), so the
number of series stays bounded whatever the traffic.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.registry import REGISTRY

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "unmatched"  # the route label of every request no route answers (raw paths never are labels)
NO_CODE = "none"  # the code label of a success

CEREMONIES = Counter(
    "passgate_ceremonies",
    "Use cases recorded as events, by event type, outcome and error code.",
    ["type", "outcome", "code"],
)
REQUESTS = Counter(
    "passgate_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "passgate_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RATE_LIMIT_REFUSALS = Counter(
    "passgate_rate_limit_refusals", "Attempts refused by a rate limit, by the limit's name.", ["limit"]
)
MAIL_SENT = Counter("passgate_mail_sent", "Messages the mail server (or back-channel client) accepted.", ["kind"])
MAIL_FAILED = Counter(
    "passgate_mail_failed",
    "Delivery attempts that failed, by kind and what became of the message (retried, or kept as failed).",
    ["kind", "outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "passgate_webhook_deliveries",
    "Webhook delivery attempts, by outcome: delivered, retried (queued again), failed (given up), disabled"
    " (the endpoint answered 410 Gone).",
    ["outcome"],
)
WEBHOOK_LAG = Histogram(
    "passgate_webhook_delivery_lag_seconds",
    "Time from an event to its delivery (the endpoint's 2xx), retries included.",
    buckets=(0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 3600.0, 6 * 3600.0, 86400.0, 3 * 86400.0),
)
STORAGE_ERRORS = Counter(
    "passgate_storage_errors",
    "Exceptions from the database or Redis that reached the error handler, by exception class.",
    ["error"],
)
SESSIONS_ACTIVE = Gauge(
    "passgate_sessions_active",
    "Sessions neither past their absolute end nor idle too long (refreshed periodically).",
    multiprocess_mode="mostrecent",
)
MDS_AGE = Gauge(
    "passgate_mds_age_seconds",
    "Seconds since the FIDO metadata BLOB in use was last refreshed successfully (with mds_file set; +Inf while"
    " there is none).",
    multiprocess_mode="mostrecent",
)


def multiprocess() -> bool:
    return MULTIPROC_VARIABLE in os.environ


def registry() -> CollectorRegistry:
    """What a scrape reports: this process's metrics, or with several workers all of theirs, added up."""
    if not multiprocess():
        return REGISTRY
    collected = CollectorRegistry()
    _multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    return collected
