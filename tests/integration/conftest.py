"""Backends for the contract suites: embedded (SQLite file in a temp dir, in-process bus) and
cluster (a fresh PostgreSQL schema, a fresh Redis channel prefix per test). The fixtures of the
real servers live in :mod:`tests.integration.pg` and :mod:`tests.integration.redis_support`."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from signalite.store import Store
from tests.integration.pg import postgres_proxy, postgres_schemas, postgres_url  # noqa: F401 - fixtures
from tests.integration.redis_support import redis_prefixes, redis_proxy, redis_url  # noqa: F401 - fixtures
from tests.integration.stores import opened

STORE_BACKENDS = ["sqlite", "postgresql"]
BUS_BACKENDS = ["local", "redis"]


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of a fresh, empty store for this test, once per backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store' / 'signalite.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """The fresh store of ``store_url``, opened, and closed after the test."""
    s = await opened(store_url)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=BUS_BACKENDS)
def bus_url(request: pytest.FixtureRequest) -> str:
    """A bus URL for this test, once per backend."""
    if request.param == "local":
        return "local://"
    return request.getfixturevalue("redis_url")
