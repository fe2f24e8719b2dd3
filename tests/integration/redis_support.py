"""Real Redis for tests: one channel prefix per test (Redis Pub/Sub ignores the database number,
so isolation is by prefix, not by database).

``SIGNALITE_TEST_REDIS_URL`` names the server (default ``redis://127.0.0.1:6379/0``). When it
cannot be reached the Redis tests are skipped with the reason, unless ``SIGNALITE_REQUIRE_REDIS=1``
(set it in CI), which turns the skip into a failure.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from typing import Callable, Iterator
from urllib.parse import urlsplit

import pytest

from tests.integration.pg import TcpProxy, with_port

REDIS_URL = os.environ.get("SIGNALITE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE = os.environ.get("SIGNALITE_REQUIRE_REDIS", "").lower() in ("1", "true", "yes")


def with_prefix(url: str, prefix: str) -> str:
    sep = "&" if urlsplit(url).query else "?"
    return f"{url}{sep}prefix={prefix}"


async def _ping(url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    finally:
        await client.aclose()


def _unreachable_reason() -> str | None:
    try:
        asyncio.run(_ping(REDIS_URL))
    except Exception as exc:
        return f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}: {exc}); set SIGNALITE_TEST_REDIS_URL"
    return None


@pytest.fixture(scope="session")
def redis_prefixes() -> Iterator[Callable[[], str]]:
    """A factory of bus URLs, each with a channel prefix no other test uses."""
    reason = _unreachable_reason()
    if reason is not None:
        if REQUIRE:
            pytest.fail(reason + " (SIGNALITE_REQUIRE_REDIS is set)")
        pytest.skip(reason)
    session = f"sigtest:{os.getpid()}:{secrets.token_hex(3)}"
    counter = itertools.count()
    yield lambda: with_prefix(REDIS_URL, f"{session}:{next(counter)}:")


@pytest.fixture
def redis_url(redis_prefixes: Callable[[], str]) -> str:
    """A bus URL of its own (fresh channel prefix) for this test."""
    return redis_prefixes()


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    """A :class:`~tests.integration.pg.TcpProxy` in front of the test Redis server."""
    parts = urlsplit(REDIS_URL)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 6379) as proxy:
        yield proxy


def via(proxy: TcpProxy, url: str) -> str:
    return with_port(url, proxy.port)
