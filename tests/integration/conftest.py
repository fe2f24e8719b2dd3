"""Backends for the contract suites: embedded (SQLite file in a temp dir) and cluster (a fresh
PostgreSQL schema per test). The PostgreSQL fixtures live in :mod:`tests.integration.pg`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.pg import postgres_proxy, postgres_schemas, postgres_url  # noqa: F401 - fixtures

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of a fresh, empty store for this test, once per backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'store' / 'signalite.db'}"
    return request.getfixturevalue("postgres_url")
