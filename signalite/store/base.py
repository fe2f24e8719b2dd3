"""The metadata store interface: channels and streams with their tags and settings.

Operations own the AWS semantics; a store only keeps records and offers the two guarantees the
operations need from a database: a name is unique per account, region and kind, and an update
or delete can be made conditional on the version the caller read (optimistic locking, which is
what CurrentVersion means on AWS).
"""

from __future__ import annotations

import builtins
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol


class NameInUse(Exception):
    """Raised by :meth:`Store.insert` when the (account, region, kind, name) already exists."""


class LimitExceeded(Exception):
    """Raised by :meth:`Store.insert` when the (account, region, kind) already holds ``limit`` resources."""


@dataclass
class Resource:
    account: str
    region: str
    kind: str
    """``channel`` or ``stream``."""
    name: str
    arn: str
    created: float
    """Epoch seconds with millisecond precision (the ARN carries the same instant)."""
    version: str
    status: str = "ACTIVE"
    attrs: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    revision: int | None = field(default=None, compare=False)
    """The store's own change counter, set on every record a store returns (``None`` on a record
    built by hand); ``evolve()`` keeps it, so :meth:`Store.replace` can tell a stale copy."""

    def evolve(self, **changes: Any) -> "Resource":
        return dataclasses.replace(self, **changes)


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> bool: ...

    async def insert(self, resource: Resource, *, limit: int | None = None) -> None:
        """Add a new resource; raise :class:`NameInUse` if the name is taken, and, with ``limit``,
        :class:`LimitExceeded` if its account, region and kind already hold ``limit`` resources
        (checked atomically with the insert, also across nodes)."""

    async def get_by_name(self, account: str, region: str, kind: str, name: str) -> Resource | None: ...

    async def get_by_arn(self, arn: str) -> Resource | None: ...

    async def get_attrs_by_arn(self, arn: str) -> dict[str, Any] | None:
        """``get_by_arn(arn).attrs`` (None if there is no such resource), reading only that column:
        for hot reads that need only a resource's existence and settings (GetSignalingChannelEndpoint)."""

    async def list(self, account: str, region: str, kind: str, *, prefix: str = "", after: str = "",
                   limit: int = 100) -> list[Resource]:
        """Resources ordered by name, with name > ``after`` and starting with ``prefix``."""

    async def count(self, account: str, region: str, kind: str) -> int: ...

    async def replace(self, resource: Resource, expected_version: str) -> bool:
        """Store ``resource`` (same ARN) only if the stored version is ``expected_version`` and,
        when ``resource.revision`` is set (a record read from the store, or evolved from one), only
        if the record was not replaced since it was read: a read-modify-write that keeps the
        version (tags) cannot silently overwrite a concurrent one. Only version, status, attrs
        and tags change."""

    async def delete(self, arn: str, expected_version: str | None = None) -> bool:
        """Delete, optionally only at ``expected_version``; False if nothing was deleted."""

    async def find(self, kind: str, attr: str, value: str) -> "builtins.list[Resource]":
        """Resources of ``kind`` whose ``attrs[attr] == value`` (media-storage mappings)."""
