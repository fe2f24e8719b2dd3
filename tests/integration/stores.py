"""Opening a store of either backend for the integration suites (the ``store`` fixture in
conftest.py uses it; tests that open a second store on the same URL call it themselves)."""

from __future__ import annotations

from signalite.store import Store, open_store


async def opened(url: str) -> Store:
    """The store at ``url``, opened (tables created if missing)."""
    store = open_store(url)
    await store.open()
    return store
