"""Prometheus metrics, in a registry owned by the app (no process-global state), and the
live figures the dashboard shows (ops/live.py)."""

from __future__ import annotations

from typing import Any, final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from router.ops.live import LiveStats

CONTENT_TYPE = CONTENT_TYPE_LATEST


@final
class Metrics:
    __slots__ = (
        "_children",
        "_request_counts",
        "grabs",
        "live",
        "payments",
        "payouts",
        "rail_calls",
        "rail_latency",
        "rate_limited",
        "registry",
        "requests",
        "sweeps",
        "webhook_deliveries",
        "webhook_failures",
    )

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "payrouter_http_requests", "HTTP requests by route and status", ["route", "status"],
            registry=r,
        )
        self.payments = Counter(
            "payrouter_payments", "Payments reaching a status, by rail", ["rail", "outcome"],
            registry=r,
        )
        self.payouts = Counter(
            "payrouter_payouts", "Payouts ending, by rail and outcome", ["rail", "outcome"],
            registry=r,
        )
        self.grabs = Counter(
            "payrouter_red_packet_grabs", "Red-packet grabs by outcome", ["outcome"],
            registry=r,
        )
        self.rail_calls = Counter(
            "payrouter_rail_calls", "Calls to rails by operation and result",
            ["rail", "operation", "result"], registry=r,
        )
        self.rail_latency = Histogram(
            "payrouter_rail_latency_seconds", "Rail call latency", ["rail", "operation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.rate_limited = Counter(
            "payrouter_rate_limited", "Calls refused by a rate limit", ["limit"], registry=r
        )
        self.webhook_deliveries = Counter(
            "payrouter_webhook_deliveries", "Webhook deliveries acknowledged by merchants",
            registry=r,
        )
        self.webhook_failures = Counter(
            "payrouter_webhook_failures", "Webhook delivery attempts that failed", ["final"],
            registry=r,
        )
        self.sweeps = Counter(
            "payrouter_sweeper_checks", "Unsettled items examined by the sweeper", ["kind"],
            registry=r,
        )

        self._request_counts: dict[tuple[str, int], Any] = {}
        self._children: dict[tuple[Counter | Histogram, tuple[str, ...]], Any] = {}
        self.live = LiveStats()

    def count_request(self, route: str, status: int) -> None:
        """One answered request; its labelled counter is looked up once per (route, status)
        (prometheus_client's `labels` takes a lock and builds keys on every call)."""
        counter = self._request_counts.get((route, status))
        if counter is None:
            counter = self._request_counts[(route, status)] = self.requests.labels(
                route, str(status))
        counter.inc()

    def child(self, metric: Counter | Histogram, *labels: str) -> Any:
        """`metric.labels(*labels)`, looked up once per label values: on the request path
        (a create counts its rail call and its status) `labels` costs more than `inc`."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)
