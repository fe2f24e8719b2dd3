"""Waiting for a condition: poll it until it holds, with a deadline that is a safety net only.

A test that waits for "the server noticed the close" or "the pool reconnected" has no event to
await, only a state it can ask about. These helpers ask again until the answer is right; the
deadline exists so that a condition that never holds fails the test instead of hanging it. They
never assert how long anything took, and the poll interval only sets how often to ask.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")

DEADLINE = 30.0
"""Default safety-net deadline, far above what any condition needs on an idle machine."""


class NeverHeld(AssertionError):
    """The condition did not hold before the deadline."""


def _describe(what: str | Callable[[], str]) -> str:
    return what() if callable(what) else what


def eventually(predicate: Callable[[], T], *, what: str | Callable[[], str] = "the condition",
               timeout: float = DEADLINE, interval: float = 0.05,
               ignoring: tuple[type[BaseException], ...] = ()) -> T:
    """Call ``predicate`` until it returns something truthy, and return that.

    Exceptions of the types in ``ignoring`` count as "not yet" (a store still reconnecting raises
    ConnectionError); any other exception propagates at once. ``what`` names the condition in the
    failure message (a callable is evaluated then, e.g. to attach a server log).
    """
    deadline = time.monotonic() + timeout
    while True:
        result: T | None
        try:
            result = predicate()
        except ignoring:
            result = None
        if result:
            return result
        if time.monotonic() >= deadline:
            raise NeverHeld(f"{_describe(what)} did not hold within the {timeout:g} s safety net")
        time.sleep(interval)


async def eventually_async(predicate: Callable[[], Awaitable[T]], *, what: str | Callable[[], str] = "the condition",
                           timeout: float = DEADLINE, interval: float = 0.05,
                           ignoring: tuple[type[BaseException], ...] = ()) -> T:
    """:func:`eventually` for a coroutine predicate; the event loop keeps running between polls."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result: T | None
        try:
            result = await predicate()
        except ignoring:
            result = None
        if result:
            return result
        if loop.time() >= deadline:
            raise NeverHeld(f"{_describe(what)} did not hold within the {timeout:g} s safety net")
        await asyncio.sleep(interval)
