"""A per-node cache of resource records by ARN in front of the store, kept right by the bus.

The WSS handshake and GetSignalingChannelEndpoint read a channel by ARN on every call; with
the record cached they do not touch SQLite or PostgreSQL. Every write through a node
(insert, replace, delete) drops the ARN from that node's cache at once and publishes an
``invalidate`` control on the bus topic :data:`TOPIC`, which every node subscribes to, so a
change made anywhere reaches every node's cache as fast as the bus carries a message.

Two races are closed:

* a read that was under way while an invalidation came in does not store what it read (a
  generation number counts invalidations; a read stores only if none came since it started);
* a node whose bus feed was down may have missed invalidations: while the bus says its feed is
  down (:meth:`Bus.feed_epoch` is None) nothing is cached or served from the cache, and when the
  feed comes back (a new epoch) the cache is emptied first.

Every writer of the store must be a Signalite node on the same bus (two embedded servers sharing
one SQLite file without a bus would each keep a stale cache: that is not a supported setup).
"""

from __future__ import annotations

import builtins
from typing import Any

from ..bus.base import CTL, Bus, Control, Message
from .base import Resource, Store

TOPIC = "signalite:store"
"""The bus topic of store invalidations (argument: the ARN)."""
INVALIDATE = "invalidate"
MAX_ENTRIES = 50_000
"""Records kept per node; beyond it the cache starts over (records are small: ~1 KiB)."""


class CachingStore:
    """A :class:`~signalite.store.base.Store` that caches ``get_by_arn`` / ``get_attrs_by_arn``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self._records: dict[str, Resource] = {}
        self._generation = 0
        self._epoch: int | None = None
        self._bus: Bus | None = None
        self.hits = 0
        self.misses = 0

    # --- wiring ----------------------------------------------------------------------------
    def attach(self, bus: Bus) -> None:
        """Start caching, kept right by ``bus`` (called once the bus is open)."""
        self._bus = bus
        bus.subscribe(TOPIC, self._on_bus)

    def _on_bus(self, topic: str, message: Message) -> None:
        if isinstance(message, Control) and message.verb == INVALIDATE:
            self._drop(message.argument)

    def _drop(self, arn: str) -> None:
        self._generation += 1
        self._records.pop(arn, None)

    def _changed(self, arn: str) -> None:
        self._drop(arn)
        if self._bus is not None:
            self._bus.publish(TOPIC, Control(CTL, INVALIDATE, arn))

    def _usable(self) -> bool:
        bus = self._bus
        if bus is None:
            return False
        epoch = bus.feed_epoch(TOPIC)
        if epoch is None:
            return False
        if epoch != self._epoch:  # the feed was down: what is cached may be stale
            self._records.clear()
            self._generation += 1
            self._epoch = epoch
        return True

    # --- the Store protocol ----------------------------------------------------------------
    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def ping(self) -> bool:
        return await self.inner.ping()

    async def get_by_arn(self, arn: str) -> Resource | None:
        if not self._usable():
            return await self.inner.get_by_arn(arn)
        found = self._records.get(arn)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        generation = self._generation
        found = await self.inner.get_by_arn(arn)
        if found is not None and generation == self._generation and self._usable():
            if len(self._records) >= MAX_ENTRIES:
                self._records.clear()
            self._records[arn] = found
        return found

    async def get_attrs_by_arn(self, arn: str) -> dict[str, Any] | None:
        if not self._usable():
            return await self.inner.get_attrs_by_arn(arn)
        found = self._records.get(arn)
        if found is None:
            found = await self.get_by_arn(arn)
        else:
            self.hits += 1
        return None if found is None else found.attrs

    async def get_by_name(self, account: str, region: str, kind: str, name: str) -> Resource | None:
        return await self.inner.get_by_name(account, region, kind, name)

    async def insert(self, resource: Resource, *, limit: int | None = None) -> None:
        try:
            await self.inner.insert(resource, limit=limit)
        finally:
            self._changed(resource.arn)

    async def list(self, account: str, region: str, kind: str, *, prefix: str = "", after: str = "",
                   limit: int = 100) -> builtins.list[Resource]:
        return await self.inner.list(account, region, kind, prefix=prefix, after=after, limit=limit)

    async def count(self, account: str, region: str, kind: str) -> int:
        return await self.inner.count(account, region, kind)

    async def replace(self, resource: Resource, expected_version: str) -> bool:
        try:
            return await self.inner.replace(resource, expected_version)
        finally:
            self._changed(resource.arn)  # a failed replace means the cached copy is stale too

    async def delete(self, arn: str, expected_version: str | None = None) -> bool:
        try:
            return await self.inner.delete(arn, expected_version)
        finally:
            self._changed(arn)

    async def find(self, kind: str, attr: str, value: str) -> builtins.list[Resource]:
        return await self.inner.find(kind, attr, value)

    def __getattr__(self, name: str) -> Any:
        """Anything else a backend offers (``schema``, ``pool``… for tests and tools)."""
        return getattr(self.inner, name)
