"""Prometheus metrics, on a registry owned by the application (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.registry import Collector


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_received = Counter(
            "postroom_messages_received", "Messages accepted and stored", ["door"], registry=r
        )
        self.bytes_received = Counter(
            "postroom_received_bytes", "Bytes of accepted messages", ["door"], registry=r
        )
        self.sessions = Counter(
            "postroom_smtp_sessions", "SMTP sessions ended", ["door"], registry=r
        )
        self.sessions_active = Gauge(
            "postroom_smtp_sessions_active", "SMTP sessions open now", ["door"], registry=r
        )
        self.rejects = Counter(
            "postroom_rejects",
            "Refused commands and messages by reason",
            ["door", "reason"],
            registry=r,
        )
        self.commit_seconds = Histogram(
            "postroom_commit_seconds",
            "Time from message complete to durable commit",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.messages_deleted = Counter(
            "postroom_messages_deleted", "Messages deleted (API or retention)", registry=r
        )

        # Figures computed when read (the sending quota gauges, postroom_quota_*, from
        # pipeline/quota.py), by name: see `computed`. Read the exposition off the event loop.
        self._computed: dict[str, Collector] = {}
        self.auth_failures = Counter(
            "postroom_smtp_auth_failures",
            "Refused SMTP authentications on the submission doors",
            ["door", "reason"],
            registry=r,
        )

    def computed(self, name: str, collector: Collector) -> None:
        """Export `collector`'s figures, instead of those of the collector given this `name`
        before (a restarted component does not export its figures twice)."""
        old = self._computed.pop(name, None)
        if old is not None:
            self.registry.unregister(old)
        self.registry.register(collector)
        self._computed[name] = collector

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
