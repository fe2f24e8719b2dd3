"""Embedded store: one SQLite file in WAL mode in the data directory.

Queries are single-row lookups on indexed keys that take microseconds, so they run on the event
loop thread directly; a thread hop would cost more than the query.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from pathlib import Path
from typing import Any

from .base import Entity, LimitExceeded, NameInUse, Resource

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    arn      TEXT PRIMARY KEY,
    account  TEXT NOT NULL,
    region   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    created  REAL NOT NULL,
    version  TEXT NOT NULL,
    status   TEXT NOT NULL,
    attrs    TEXT NOT NULL,
    tags     TEXT NOT NULL,
    rev      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account, region, kind, name)
);
CREATE TABLE IF NOT EXISTS entities (
    id       TEXT PRIMARY KEY,
    account  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    name     TEXT NOT NULL,
    name_key TEXT NOT NULL,
    path     TEXT NOT NULL,
    created  REAL NOT NULL,
    data     TEXT NOT NULL,
    rev      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (account, kind, name_key)
);
"""
_COLUMNS = "account, region, kind, name, arn, created, version, status, attrs, tags"
_SELECT = _COLUMNS + ", rev"
_BY_ARN = f"SELECT {_SELECT} FROM resources WHERE arn=?"
_ATTRS_BY_ARN = "SELECT attrs FROM resources WHERE arn=?"
_BY_NAME = f"SELECT {_SELECT} FROM resources WHERE account=? AND region=? AND kind=? AND name=?"
_EMPTY = "{}"


def _json(text: str) -> Any:
    """A stored JSON column; ``{}`` (most resources' tags) without running the decoder."""
    return {} if text == _EMPTY else json.loads(text)


def _row(row: tuple[Any, ...] | None) -> Resource | None:
    if row is None:
        return None
    account, region, kind, name, arn, created, version, status, attrs, tags, rev = row
    return Resource(account, region, kind, name, arn, created, version, status, _json(attrs), _json(tags),
                    revision=rev)


_ENTITY = "account, kind, name, id, path, created, data, rev"


def _entity(row: tuple[Any, ...] | None) -> Entity | None:
    if row is None:
        return None
    account, kind, name, entity_id, path, created, data, rev = row
    return Entity(account, kind, name, entity_id, path, created, json.loads(data), revision=rev)


def _values(r: Resource) -> tuple[Any, ...]:
    return (r.account, r.region, r.kind, r.name, r.arn, r.created, r.version, r.status,
            json.dumps(r.attrs), json.dumps(r.tags))


class SqliteStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("store is not open")
        return self._db

    async def open(self) -> None:
        if self._path not in ("", ":memory:"):
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self._path or ":memory:", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        if "rev" not in {r[1] for r in self._db.execute("PRAGMA table_info(resources)")}:  # files made before rev
            self._db.execute("ALTER TABLE resources ADD COLUMN rev INTEGER NOT NULL DEFAULT 0")

    async def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def ping(self) -> bool:
        self.db.execute("SELECT 1").fetchone()
        return True

    async def insert(self, resource: Resource, *, limit: int | None = None) -> None:
        db = self.db
        if limit is None:
            try:
                db.execute(f"INSERT INTO resources ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", _values(resource))
            except sqlite3.IntegrityError:
                raise NameInUse(resource.name) from None
            return
        db.execute("BEGIN IMMEDIATE")  # the count and the insert as one step, also across processes
        try:
            (count,) = db.execute("SELECT count(*) FROM resources WHERE account=? AND region=? AND kind=?",
                                  (resource.account, resource.region, resource.kind)).fetchone()
            if count >= limit:
                raise LimitExceeded(resource.name)
            db.execute(f"INSERT INTO resources ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", _values(resource))
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK")
            raise NameInUse(resource.name) from None
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def get_by_name(self, account: str, region: str, kind: str, name: str) -> Resource | None:
        return _row(self.db.execute(_BY_NAME, (account, region, kind, name)).fetchone())

    async def get_by_arn(self, arn: str) -> Resource | None:
        return _row(self.db.execute(_BY_ARN, (arn,)).fetchone())

    async def get_attrs_by_arn(self, arn: str) -> dict[str, Any] | None:
        row = self.db.execute(_ATTRS_BY_ARN, (arn,)).fetchone()
        return None if row is None else _json(row[0])

    async def list(self, account: str, region: str, kind: str, *, prefix: str = "", after: str = "",
                   limit: int = 100) -> list[Resource]:
        # substr() instead of LIKE: names may contain '_' and LIKE is case-insensitive.
        cur = self.db.execute(
            f"SELECT {_SELECT} FROM resources WHERE account=? AND region=? AND kind=? AND name > ? "
            "AND substr(name, 1, ?) = ? ORDER BY name LIMIT ?",
            (account, region, kind, after, len(prefix), prefix, limit))
        return [_row(r) for r in cur.fetchall()]  # type: ignore[misc]

    async def count(self, account: str, region: str, kind: str) -> int:
        cur = self.db.execute("SELECT count(*) FROM resources WHERE account=? AND region=? AND kind=?",
                              (account, region, kind))
        return int(cur.fetchone()[0])

    async def replace(self, resource: Resource, expected_version: str) -> bool:
        cur = self.db.execute(
            "UPDATE resources SET version=?, status=?, attrs=?, tags=?, rev=rev+1 "
            "WHERE arn=? AND version=? AND (? IS NULL OR rev=?)",
            (resource.version, resource.status, json.dumps(resource.attrs), json.dumps(resource.tags),
             resource.arn, expected_version, resource.revision, resource.revision))
        return cur.rowcount == 1

    async def delete(self, arn: str, expected_version: str | None = None) -> bool:
        if expected_version is None:
            cur = self.db.execute("DELETE FROM resources WHERE arn=?", (arn,))
        else:
            cur = self.db.execute("DELETE FROM resources WHERE arn=? AND version=?", (arn, expected_version))
        return cur.rowcount == 1

    async def find(self, kind: str, attr: str, value: str) -> builtins.list[Resource]:
        cur = self.db.execute(
            f"SELECT {_SELECT} FROM resources WHERE kind=? AND json_extract(attrs, '$.' || ?) = ?",
            (kind, attr, value))
        return [_row(r) for r in cur.fetchall()]  # type: ignore[misc]

    # --- identity records ------------------------------------------------------------------
    async def insert_entity(self, entity: Entity, *, limit: int | None = None) -> None:
        e = entity
        db = self.db
        insert = ("INSERT INTO entities (id, account, kind, name, name_key, path, created, data) "
                  "VALUES (?,?,?,?,?,?,?,?)")
        values = (e.id, e.account, e.kind, e.name, e.name.lower(), e.path, e.created, json.dumps(e.data))
        db.execute("BEGIN IMMEDIATE")  # the count and the insert as one step, also across processes
        try:
            if limit is not None:
                (count,) = db.execute("SELECT count(*) FROM entities WHERE account=? AND kind=?",
                                      (e.account, e.kind)).fetchone()
                if count >= limit:
                    raise LimitExceeded(e.name)
            db.execute(insert, values)
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK")
            raise NameInUse(e.name) from None
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def get_entity(self, account: str, kind: str, name: str) -> Entity | None:
        return _entity(self.db.execute(f"SELECT {_ENTITY} FROM entities WHERE account=? AND kind=? AND name_key=?",
                                       (account, kind, name.lower())).fetchone())

    async def get_entity_by_id(self, entity_id: str) -> Entity | None:
        return _entity(self.db.execute(f"SELECT {_ENTITY} FROM entities WHERE id=?", (entity_id,)).fetchone())

    async def list_entities(self, account: str, kind: str, *, path_prefix: str = "/", after: str = "",
                            limit: int = 100) -> builtins.list[Entity]:
        cur = self.db.execute(
            f"SELECT {_ENTITY} FROM entities WHERE account=? AND kind=? AND name_key > ? "
            "AND substr(path, 1, ?) = ? ORDER BY name_key LIMIT ?",
            (account, kind, after.lower(), len(path_prefix), path_prefix, limit))
        return [_entity(r) for r in cur.fetchall()]  # type: ignore[misc]

    async def update_entity(self, entity: Entity) -> bool:
        cur = self.db.execute("UPDATE entities SET path=?, data=?, rev=rev+1 WHERE id=? AND (? IS NULL OR rev=?)",
                              (entity.path, json.dumps(entity.data), entity.id, entity.revision, entity.revision))
        return cur.rowcount == 1

    async def delete_entity(self, entity: Entity) -> bool:
        if entity.revision is None:
            cur = self.db.execute("DELETE FROM entities WHERE id=?", (entity.id,))
        else:
            cur = self.db.execute("DELETE FROM entities WHERE id=? AND rev=?", (entity.id, entity.revision))
        return cur.rowcount == 1
