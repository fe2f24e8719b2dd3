"""Metadata stores (channels, streams, identity records): SQLite (embedded default) and PostgreSQL
(cluster), one interface."""

from __future__ import annotations

from .base import Entity, LimitExceeded, NameInUse, Resource, Store


def open_store(url: str) -> Store:
    """Pick the implementation from the URL scheme; the caller awaits ``open()``."""
    if url.startswith("sqlite://"):
        from .sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite://"))
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(f"unsupported store URL {url!r}: use sqlite:///path or postgresql://...")


__all__ = ["Entity", "LimitExceeded", "NameInUse", "Resource", "Store", "open_store"]
