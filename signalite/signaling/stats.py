"""What the router counts as it decides: plain integers, no I/O, read by the metrics collector.

Counting has to cost next to nothing on the relay path (a dict increment and a bisect per
delivered message), so nothing here locks, allocates per event or formats labels; the Prometheus
families are built from these numbers only when ``/metrics`` is scraped.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

from .frames import ACTIONS

DELIVERED, BUFFERED, EXPIRED, REPLACED, REJECTED = "delivered", "buffered", "expired", "replaced", "rejected"
OUTCOMES = (DELIVERED, BUFFERED, EXPIRED, REPLACED, REJECTED)
OTHER = "other"
"""The ``type`` label of a rejected frame whose action is not a KVS message type (labels stay bounded)."""

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                   60.0, 120.0, 300.0)
"""Upper bounds (seconds) of the delivery-latency histogram: sub-millisecond relays up to messages
retained for a recipient who connects minutes later."""


def message_type(action: object) -> str:
    return action if isinstance(action, str) and action in ACTIONS else OTHER


class Histogram:
    """Counts per bucket, a sum and a count, as Prometheus histograms have them."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, cumulative count)`` pairs, ending with ``+Inf``."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts):
            running += n
            out.append((repr(bound), running))
        out.append(("+Inf", running + self.counts[-1]))
        return out


class RouterStats:
    """Counters of one router (one node)."""

    __slots__ = ("messages", "delivered", "delivery", "connections")

    def __init__(self) -> None:
        self.messages: Counter[tuple[str, str]] = Counter()
        """``(message type, outcome)`` → messages, for every outcome but ``delivered``."""
        self.delivered: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        """Message type → delivered messages: the per-message count, kept apart as a plain dict
        keyed by the type string (its hash is cached) so that it costs one increment."""
        self.delivery = Histogram()
        """Seconds from a message's arrival to its delivery (retained ones included)."""
        self.connections: Counter[str] = Counter()
        """``master`` / ``viewer`` → open connections on this node (virtual peers not counted)."""

    def by_outcome(self) -> dict[tuple[str, str], int]:
        """Every ``(message type, outcome)`` count, ``delivered`` included."""
        out = dict(self.messages)
        for kind, n in self.delivered.items():
            if n:
                out[kind, DELIVERED] = n
        return out
