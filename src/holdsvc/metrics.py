"""Prometheus metrics: requests, holds placed and refused by code, confirms, expiries."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from holdsvc.errors import HoldsvcError


class Metrics:
    """The counters and histograms of one app instance, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[tuple[str, str], Any] = {}
        self._hold_children: dict[tuple[str, bool], Any] = {}
        self.requests = Counter(
            "holdsvc_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "holdsvc_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.holds = Counter(
            "holdsvc_holds", "Holds placed", ["kind", "replayed"], registry=self.registry
        )
        self.holds_refused = Counter(
            "holdsvc_holds_refused",
            "Holds refused, by error code",
            ["kind", "code"],
            registry=self.registry,
        )
        self.confirms = Counter(
            "holdsvc_confirms", "Holds confirmed", ["kind"], registry=self.registry
        )
        self.confirms_refused = Counter(
            "holdsvc_confirms_refused",
            "Confirms refused, by error code",
            ["kind", "code"],
            registry=self.registry,
        )
        self.expiries = Counter(
            "holdsvc_expiries", "Holds expired by the sweeper", registry=self.registry
        )
        self.open_streams = Gauge(
            "holdsvc_open_streams",
            "Change streams (SSE) open in this process",
            registry=self.registry,
        )

        self.deliveries = Counter(
            "holdsvc_webhook_attempts",
            "Webhook delivery attempts, by result (ok, failed)",
            ["result"],
            registry=self.registry,
        )
        self.delivery_failures = Counter(
            "holdsvc_webhook_failures",
            "Webhook delivery attempts that failed (non-2xx, timeout, refused), by cause",
            ["cause"],
            registry=self.registry,
        )
        self.mails = Counter(
            "holdsvc_mails",
            "Guest mails handed to the SMTP server, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "holdsvc_feed_lag_entries",
            "Feed entries a consumer has not handled yet, per venue (up to 100 counted)",
            ["consumer", "venue"],
            registry=self.registry,
        )

    def feed_lag(self, consumer: str, venue_id: str, entries: int) -> None:
        """Record how many entries one consumer has yet to handle in one venue's feed."""
        self.lag.labels(consumer, venue_id).set(entries)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count and time one HTTP request (label children cached: this runs per request)."""
        counter = self._request_children.get((method, route, status))
        if counter is None:
            counter = self.requests.labels(method, route, str(status))
            self._request_children[(method, route, status)] = counter
        counter.inc()
        timer = self._latency_children.get((method, route))
        if timer is None:
            timer = self.latency.labels(method, route)
            self._latency_children[(method, route)] = timer
        timer.observe(seconds)

    def hold_placed(self, kind: str, *, replayed: bool) -> None:
        """Count a placed (or replayed) hold (label children cached: this runs per hold)."""
        counter = self._hold_children.get((kind, replayed))
        if counter is None:
            counter = self.holds.labels(str(kind), "true" if replayed else "false")
            self._hold_children[(kind, replayed)] = counter
        counter.inc()

    def hold_refused(self, kind: str, error: BaseException) -> None:
        """Count a refused hold by its API code."""
        code = error.code if isinstance(error, HoldsvcError) else "internal_error"
        self.holds_refused.labels(kind, code).inc()

    def confirmed(self, kind: str) -> None:
        """Count a confirm that made a reservation."""
        self.confirms.labels(kind).inc()

    def confirm_refused(self, kind: str, code: str) -> None:
        """Count a refused confirm."""
        self.confirms_refused.labels(kind, code).inc()

    def expired(self) -> None:
        """Count a hold the sweeper expired."""
        self.expiries.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
