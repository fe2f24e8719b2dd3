"""Rate limiters as plain objects: time comes in as a parameter, nothing is scheduled."""

from __future__ import annotations

from typing import Any, Generic, Hashable, TypeVar


class TokenBucket:
    """``rate`` events per second with a burst of ``capacity`` (default: one second's worth).

    ``take(now)`` spends one token if there is one. A bucket starts full, so the first second of a
    connection may use its whole allowance at once, as the AWS per-second quotas allow.
    """

    __slots__ = ("rate", "capacity", "tokens", "stamp")

    def __init__(self, rate: float, now: float, capacity: float | None = None) -> None:
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(rate, 1.0))
        self.tokens = self.capacity
        self.stamp = now

    def take(self, now: float) -> bool:
        tokens = self.tokens + (now - self.stamp) * self.rate
        tokens = min(tokens, self.capacity)
        self.stamp = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False


def bucket(rate: float | None, now: float) -> TokenBucket | None:
    """A bucket for ``rate``, or None for "no limit" (``None`` or a non-positive rate)."""
    if rate is None or rate <= 0:
        return None
    return TokenBucket(rate, now)


K = TypeVar("K", bound=Hashable)


class BucketTable(Generic[K]):
    """Token buckets by key (a channel and role, a peer address) that outlive what they limit.

    A limit on *attempts* must remember a key after its connection closed, or connect-and-close
    churn would get a fresh bucket every time. Memory stays bounded without a sweep: a bucket
    that has refilled is the same as a fresh one, so it can be forgotten. Keys are kept in order
    of last use; each :meth:`take` forgets, from the least recently used end, the buckets that
    have refilled by now (every bucket not used for ``capacity / rate`` seconds has). So the table
    holds the keys used within that window, and never more than ``max_keys`` (past that the least
    recently used is forgotten early: only a flood of more distinct keys than that per window
    gets fresh buckets).
    """

    __slots__ = ("rate", "capacity", "max_keys", "_refill", "_buckets")

    def __init__(self, rate: float, capacity: float | None = None, max_keys: int = 100_000) -> None:
        if rate <= 0:
            raise ValueError("a BucketTable needs a positive rate (no limit: no table)")
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(rate, 1.0))
        self.max_keys = max_keys
        self._refill = self.capacity / self.rate
        """Seconds an empty bucket takes to refill."""
        self._buckets: dict[K, TokenBucket] = {}

    def take(self, key: K, now: float) -> bool:
        """Spend one of ``key``'s tokens if it has one."""
        buckets = self._buckets
        b = buckets.pop(key, None)
        if b is None:
            b = TokenBucket(self.rate, now, self.capacity)
        ok = b.take(now)
        buckets[key] = b  # (re)inserted last: the dict is in order of last use
        self._forget(now)
        return ok

    def _forget(self, now: float) -> None:
        buckets = self._buckets
        horizon = now - self._refill
        while buckets:
            oldest_key = next(iter(buckets))
            oldest = buckets[oldest_key]
            if oldest.stamp > horizon and len(buckets) <= self.max_keys:
                break
            del buckets[oldest_key]

    def __len__(self) -> int:
        return len(self._buckets)


def table(rate: float | None, capacity: float | None = None) -> BucketTable[Any] | None:
    """A :class:`BucketTable` for ``rate``, or None for "no limit"."""
    if rate is None or rate <= 0:
        return None
    return BucketTable(rate, capacity)
