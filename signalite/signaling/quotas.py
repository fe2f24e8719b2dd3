"""Rate limiters as plain objects: time comes in as a parameter, nothing is scheduled."""

from __future__ import annotations


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
