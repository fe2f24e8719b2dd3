"""Presence in memory: which connection holds each recipient key, and the admission rules.

The embedded bus's registry (:class:`~signalite.bus.local.LocalBus`). The Redis bus applies the
same rules in one Lua script (``bus/redis_mail.lua``, ``register``), so a limit means the same on
one node and on a cluster:

* a viewer (a non-empty key) that is not virtual is refused when the channel already has
  ``max_viewers`` other real viewers (one reusing its own client id replaces itself, it does
  not count twice);
* then every connect that is not virtual spends a token of the channel's connect bucket
  (``connect_rate`` per second, a burst of one second's worth, at least 1);
* the new connection holds the key; an older one is taken over.

Plain objects, time as a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..signaling.quotas import TokenBucket
from .base import REFUSED_RATE, REFUSED_VIEWERS, Limits

MASTER = ""
"""The recipient key of a channel's master."""


@dataclass(slots=True)
class Holder:
    token: int
    virtual: bool
    started: bool = False
    """:meth:`~signalite.bus.base.Bus.start` was called: messages go straight to it."""


class Presence:
    __slots__ = ("holders", "_viewers", "_buckets")

    def __init__(self) -> None:
        self.holders: dict[tuple[str, str], Holder] = {}
        self._viewers: dict[str, int] = {}
        """Channel → real viewers registered."""
        self._buckets: dict[tuple[str, bool], TokenBucket] = {}
        """(channel, master?) → the connect bucket of that role (AWS counts ConnectAsMaster and
        ConnectAsViewer separately)."""

    def admit(self, arn: str, key: str, virtual: bool, limits: Limits, now: float) -> str | None:
        """Why a connect is refused (:data:`REFUSED_VIEWERS` / :data:`REFUSED_RATE`), or None."""
        if virtual:
            return None
        if key != MASTER and limits.max_viewers is not None:
            others = self._viewers.get(arn, 0)
            existing = self.holders.get((arn, key))
            if existing is not None and not existing.virtual:
                others -= 1
            if others >= limits.max_viewers:
                return REFUSED_VIEWERS
        if limits.connect_rate:
            role = (arn, key == MASTER)
            bucket = self._buckets.get(role)
            if bucket is None:
                bucket = self._buckets[role] = TokenBucket(limits.connect_rate, now)
            if not bucket.take(now):
                return REFUSED_RATE
        return None

    def hold(self, arn: str, key: str, token: int, virtual: bool) -> Holder | None:
        """``token`` holds the key now; returns the holder it replaced."""
        old = self.holders.get((arn, key))
        if old is not None:
            self._count(arn, key, old, -1)
        new = Holder(token, virtual)
        self.holders[arn, key] = new
        self._count(arn, key, new, 1)
        return old

    def release(self, arn: str, key: str, token: int) -> bool:
        h = self.holders.get((arn, key))
        if h is None or h.token != token:
            return False
        del self.holders[arn, key]
        self._count(arn, key, h, -1)
        return True

    def drop(self, arn: str) -> None:
        for k in [k for k in self.holders if k[0] == arn]:
            del self.holders[k]
        self._viewers.pop(arn, None)
        self._buckets.pop((arn, True), None)
        self._buckets.pop((arn, False), None)

    def prune(self, now: float) -> None:
        """Forget connect buckets that are full again (a channel nobody connects to costs nothing)."""
        for role in [r for r, b in self._buckets.items() if b.tokens + (now - b.stamp) * b.rate >= b.capacity]:
            del self._buckets[role]

    def _count(self, arn: str, key: str, h: Holder, delta: int) -> None:
        if key != MASTER and not h.virtual:
            n = self._viewers.get(arn, 0) + delta
            if n:
                self._viewers[arn] = n
            else:
                self._viewers.pop(arn, None)
