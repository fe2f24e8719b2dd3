"""Retention in memory: the messages kept for recipient keys that no connection holds, with TTL.

This is the embedded bus's shared retention (:class:`~signalite.bus.local.LocalBus`); the Redis
bus keeps the same lists in Redis with the same rules (``bus/redis_mail.lua``):

* one list per (channel, recipient key), oldest first;
* a newer SDP_OFFER (SDP_ANSWER) from the same sender replaces an older retained one, when the
  message is retained because nobody holds the key;
* at most :data:`~signalite.bus.base.MAX_RETAINED_PER_RECIPIENT` per key, the oldest dropped;
* each message expires at its own ``expires`` (a TTL change applies to later messages only).

Plain objects, time as a parameter. Expiry costs what is due, not what is kept: one heap entry per
recipient key, at the earliest expiry among its messages.
"""

from __future__ import annotations

import itertools
from heapq import heappop, heappush
from typing import Iterable

from .base import MAX_RETAINED_PER_RECIPIENT, Envelope

SDP_ACTIONS = frozenset(("SDP_OFFER", "SDP_ANSWER"))
"""The message types the replacement rule applies to."""

Key = tuple[str, str]
"""(channel ARN, recipient key)."""


class Retention:
    __slots__ = ("lists", "_checks", "_heap", "_seq")

    def __init__(self) -> None:
        self.lists: dict[Key, list[Envelope]] = {}
        self._checks: dict[Key, float] = {}
        """Key → when the sweep next looks at its list (its earliest expiry, or earlier)."""
        self._heap: list[tuple[float, int, Key]] = []
        self._seq = itertools.count()

    def add(self, key: Key, env: Envelope, replace: bool) -> list[tuple[Envelope, str]]:
        """Keep ``env`` for ``key``; returns ``(message, outcome)`` for messages it displaced
        (``replaced`` by the SDP rule when ``replace``, ``expired`` when over the cap)."""
        out: list[tuple[Envelope, str]] = []
        at = self._checks.get(key)
        if at is None or env.expires < at:
            self._checks[key] = env.expires
            heappush(self._heap, (env.expires, next(self._seq), key))
        queue = self.lists.get(key)
        if queue is None:
            self.lists[key] = [env]
            return out
        if replace and env.msg_type in SDP_ACTIONS:
            for i, old in enumerate(queue):
                if old.msg_type == env.msg_type and old.sender == env.sender:
                    del queue[i]
                    out.append((old, "replaced"))
                    break
        queue.append(env)
        if len(queue) > MAX_RETAINED_PER_RECIPIENT:
            out.append((queue[0], "expired"))
            del queue[0]
        return out

    def take(self, key: Key, now: float) -> tuple[list[Envelope], list[Envelope]]:
        """Remove and return ``(unexpired, expired)`` messages of ``key``, oldest first."""
        queue = self.lists.pop(key, None)
        if not queue:
            return [], []
        self._checks.pop(key, None)
        kept = [e for e in queue if e.expires > now]
        return kept, ([e for e in queue if e.expires <= now] if len(kept) != len(queue) else [])

    def put_back(self, key: Key, envelopes: list[Envelope]) -> None:
        """Return messages that could not be written, in front of anything kept since."""
        if not envelopes:
            return
        queue = self.lists.get(key, [])
        self.lists[key] = envelopes + queue
        first = min(e.expires for e in envelopes)
        at = self._checks.get(key)
        if at is None or first < at:
            self._checks[key] = first
            heappush(self._heap, (first, next(self._seq), key))

    def peek(self, key: Key, now: float) -> list[Envelope]:
        return [e for e in self.lists.get(key, ()) if e.expires > now]

    def drop(self, arn: str) -> None:
        for key in [k for k in self.lists if k[0] == arn]:
            del self.lists[key]
            self._checks.pop(key, None)

    def expire(self, now: float) -> list[tuple[Key, Envelope]]:
        """Drop messages past their expiry; returns them with their keys (for counting, tracing)."""
        heap, checks = self._heap, self._checks
        out: list[tuple[Key, Envelope]] = []
        while heap and heap[0][0] <= now:
            at, _, key = heappop(heap)
            if checks.get(key) != at:
                continue  # delivered, rescheduled or dropped
            queue = self.lists[key]
            kept = [e for e in queue if e.expires > now]
            out.extend((key, e) for e in queue if e.expires <= now)
            if not kept:
                del self.lists[key]
                del checks[key]
                continue
            self.lists[key] = kept
            at = checks[key] = min(e.expires for e in kept)
            heappush(heap, (at, next(self._seq), key))
        return out

    def count(self) -> int:
        return sum(len(q) for q in self.lists.values())

    @property
    def scheduled(self) -> int:
        """Entries in the expiry heap (bounded by the keys retained, not by the messages)."""
        return len(self._heap)

    def keys(self) -> Iterable[Key]:
        return self.lists.keys()
