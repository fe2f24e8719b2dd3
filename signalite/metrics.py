"""Prometheus metrics at ``GET /metrics``, on every listener.

Nothing on a request or relay path talks to prometheus-client: the router, the hub and the REST
edge count into plain integers (``signaling.stats.RouterStats``, :class:`EdgeStats`), and the
collectors here turn them into metric families only when ``/metrics`` is scraped. Each server has
its own ``CollectorRegistry`` (``app[REGISTRY]``), so two servers in one process never share
numbers. Label values are bounded: message types, outcomes, roles, operation names of the
models, HTTP status codes — never a channel name or a client id.

Families (the contract's names): ``signalite_connections{role}``,
``signalite_messages_total{type,outcome}``, ``signalite_message_delivery_seconds``,
``signalite_api_requests_total{operation,code}``, ``signalite_handshakes_total{outcome}``, and
``signalite_retained_messages`` (messages kept for recipients who are not connected).
"""

from __future__ import annotations

import hmac
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .context import SETTINGS

if TYPE_CHECKING:  # pragma: no cover
    from .signaling.router import Router

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class EdgeStats:
    """What the REST edge and the WSS handshake count."""

    __slots__ = ("requests", "handshakes")

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()
        """``(operation, HTTP status)`` → answered requests."""
        self.handshakes: Counter[str] = Counter()
        """Outcome (``accepted`` or the refusal's error code) → WSS handshakes."""


REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
EDGE_STATS = web.AppKey("edge_stats", EdgeStats)


class EdgeCollector(Collector):
    def __init__(self, stats: EdgeStats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("signalite_api_requests", "REST API requests answered, by operation and HTTP status",
                                       labels=["operation", "code"])
        for (operation, code), n in sorted(self.stats.requests.items()):
            requests.add_metric([operation, str(code)], n)
        yield requests
        handshakes = CounterMetricFamily("signalite_handshakes", "WSS handshakes, by outcome", labels=["outcome"])
        for outcome, n in sorted(self.stats.handshakes.items()):
            handshakes.add_metric([outcome], n)
        yield handshakes


class RouterCollector(Collector):
    """The signaling router's counters (``get_router`` is called at scrape time)."""

    def __init__(self, get_router: Callable[[], Router], get_retained: Callable[[], int | None] = lambda: None) -> None:
        self.get_router = get_router
        self.get_retained = get_retained
        """The bus's count of retained messages (None: not known cheaply, e.g. kept in Redis)."""

    def collect(self) -> Iterator[Metric]:
        router = self.get_router()
        stats = router.stats
        connections = GaugeMetricFamily("signalite_connections", "Open WSS signaling connections on this node",
                                        labels=["role"])
        for role in ("master", "viewer"):
            connections.add_metric([role], stats.connections[role])
        yield connections
        messages = CounterMetricFamily("signalite_messages", "Signaling messages, by type and what became of them",
                                       labels=["type", "outcome"])
        for (kind, outcome), n in sorted(stats.by_outcome().items()):
            messages.add_metric([kind, outcome], n)
        yield messages
        delivery = HistogramMetricFamily("signalite_message_delivery_seconds",
                                         "Seconds from a message's arrival to its delivery (retained ones included)")
        delivery.add_metric([], stats.delivery.cumulative(), stats.delivery.total)
        yield delivery
        retained = GaugeMetricFamily("signalite_retained_messages",
                                     "Messages kept for recipients who are not connected (embedded bus)")
        count = self.get_retained()
        if count is not None:
            retained.add_metric([], count)
        yield retained


def new_registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=False)


async def handle_metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text; ``Authorization: Bearer TOKEN`` when --metrics-token."""
    token = request.app[SETTINGS].metrics_token
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return web.Response(status=401, text="metrics need Authorization: Bearer <token>\n",
                                headers={"WWW-Authenticate": 'Bearer realm="signalite-metrics"'})
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
