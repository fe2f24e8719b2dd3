"""The metadata store interface: channels and streams with their tags and settings, and the
identity records (accounts, IAM users, roles, managed policies, access keys).

Operations own the AWS semantics; a store only keeps records and offers the two guarantees the
operations need from a database: a name is unique per account, region and kind, and an update
or delete can be made conditional on the version the caller read (optimistic locking, which is
what CurrentVersion means on AWS).

Identity records (:class:`Entity`) get the same two guarantees in their own table: a name is
unique per account and kind *without regard to case* (IAM's rule: ``Alice`` and ``alice`` cannot
both exist), every record has an id unique across all of them (``AIDA…``, ``AKIA…``, an account
id), and an update or delete can be made conditional on the record's revision, which is how the
identity operations keep an entity and what hangs off it (its keys, inline and attached
policies) consistent across nodes without transactions spanning records.
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


@dataclass
class Entity:
    """An identity record: ``kind`` is ``account``, ``user``, ``role``, ``policy`` or ``access-key``.

    ``name`` is unique per (account, kind) compared without case; ``id`` is unique over every
    entity (the IAM unique id, the access key id, the account id); ``path`` is the IAM path
    (``/`` where the kind has none) that lists filter on; ``data`` is the kind's own JSON."""

    account: str
    kind: str
    name: str
    id: str
    path: str = "/"
    created: float = 0.0
    """Epoch seconds."""
    data: dict[str, Any] = field(default_factory=dict)
    revision: int | None = field(default=None, compare=False)
    """The store's change counter, set on every record a store returns; :meth:`Store.update_entity`
    and :meth:`Store.delete_entity` succeed only while it is still the stored one."""

    def evolve(self, **changes: Any) -> "Entity":
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

    # --- identity records ------------------------------------------------------------------
    async def insert_entity(self, entity: Entity, *, limit: int | None = None) -> None:
        """Add a new identity record; :class:`NameInUse` if its name (without case) is taken in
        its account and kind, or its id anywhere; with ``limit``, :class:`LimitExceeded` if its
        account already holds ``limit`` records of its kind (atomically, also across nodes)."""

    async def get_entity(self, account: str, kind: str, name: str) -> Entity | None:
        """The record of ``kind`` named ``name`` (compared without case) in ``account``."""

    async def get_entity_by_id(self, entity_id: str) -> Entity | None: ...

    async def list_entities(self, account: str, kind: str, *, path_prefix: str = "/", after: str = "",
                            limit: int = 100) -> "builtins.list[Entity]":
        """Records of ``kind`` in ``account`` whose path starts with ``path_prefix``, ordered by
        name without case, with that name after ``after`` (also compared without case)."""

    async def update_entity(self, entity: Entity) -> bool:
        """Store ``entity``'s path and data (same id) if its ``revision`` is still the stored
        one (any revision when it is None); False if the record changed or went since it was
        read. Bumps the revision."""

    async def delete_entity(self, entity: Entity) -> bool:
        """Delete the record with ``entity``'s id, only at its ``revision`` when that is set;
        False if nothing was deleted."""
