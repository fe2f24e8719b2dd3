"""The one clock of a server: what time it is, and how to wait for some of it to pass.

Everything that reads time (SigV4 skew checks, the signaling router's idle timeouts and message
expiries, the Alexa answer wait, TURN credential expiry, the Redis bus's envelope expiries) asks
the application's :class:`Clock`, so a test can build a server on a :class:`ManualClock` and
move time forward instead of sleeping.

Time is epoch seconds (``float``): an envelope's expiry must mean the same on every node of a
cluster, so a monotonic clock would not do.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Awaitable, Protocol, TypeVar

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` of this clock's time have passed."""
        ...


async def wait_for(clock: Clock, awaitable: Awaitable[T], timeout: float) -> T:
    """``asyncio.wait_for`` measured on ``clock``: the result of ``awaitable``, or
    :class:`TimeoutError` once ``timeout`` seconds of clock time have passed (the awaitable is
    cancelled then)."""
    work = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(timeout))
    try:
        await asyncio.wait((work, timer), return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
    if work.done():
        return work.result()
    work.cancel()
    raise TimeoutError


class SystemClock:
    """Wall-clock time and the event loop's timers."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that moves only when told (:meth:`advance`), for tests.

    Sleepers wake in order of their deadlines when :meth:`advance` passes them; a sleep of zero
    or less returns at once (after one loop iteration, as ``asyncio.sleep(0)`` does).
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = float(start)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        await future

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has come."""
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
