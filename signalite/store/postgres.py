"""Cluster store: PostgreSQL through an asyncpg connection pool.

Same records and guarantees as :mod:`signalite.store.sqlite` (one behaviour, two backends); the
contract is pinned by ``tests/integration/test_store_contract.py``, which runs against both.

URL
    ``postgresql://user:password@host:port/database?schema=NAME&pool_min=1&pool_max=10``

    Everything asyncpg understands in a DSN (``sslmode``, ``connect_timeout`` …) passes through.
    Signalite reads and removes these query parameters of its own:

    ``schema``
        Keep Signalite's table in this PostgreSQL schema (created if missing) instead of the
        connection's default ``search_path`` (normally ``public``). Tables are referenced by their
        schema-qualified name, not through ``search_path``, so this also holds behind a
        transaction-pooling proxy. Several Signalite deployments (or test sessions) can share
        one database this way, each in its own schema. The name must be a plain identifier
        (``[A-Za-z_][A-Za-z0-9_]*``, at most 63 characters) and is used as written, so it is
        case sensitive.
    ``pool_min`` / ``pool_max``
        Size of the connection pool of this node (default 1 and 10).
    ``statement_cache_size``
        asyncpg's prepared-statement cache per connection (default 100); set it to 0 behind
        PgBouncer in transaction-pooling mode.

Schema
    Two tables: ``signalite_resources`` (channels, streams) and ``signalite_entities`` (identity
    records, ``data`` as ``jsonb``, ``name_key`` — the name in lower case — unique per account and
    kind). In ``signalite_resources`` ``attrs`` and ``tags`` are ``jsonb``; ``name`` uses the
    ``"C"`` collation so that ordering and ``name > after`` compare code points exactly as
    SQLite's BINARY collation does, whatever the database's default collation is. ``open()``
    creates the schema idempotently inside a transaction holding a transaction-level advisory
    lock, so any number of nodes may start at once against an empty database. (``jsonb`` does not
    keep the order of object keys: tags come back as the same mapping, not necessarily in the
    order they were written. The API returns tags as a map, so nothing observable depends on it.)

Availability
    ``open()`` connects at once and raises :class:`ConnectionError` with a clear message (password
    redacted) when PostgreSQL cannot be reached within ``CONNECT_TIMEOUT``; ``signalite serve``
    turns that into a one-line error and a non-zero exit rather than a server that is up but can
    do nothing. After start-up the pool reconnects by itself; every query waits at most
    ``ACQUIRE_TIMEOUT`` for a connection and ``COMMAND_TIMEOUT`` for an answer, and :meth:`ping`
    (used by ``/ready``) at most ``PING_TIMEOUT`` in all, so ``/ready`` answers 503 rather than
    hanging while the database is down or unreachable.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import asyncpg

from ..urls import redact, take_params
from .base import Entity, LimitExceeded, NameInUse, Resource

CONNECT_TIMEOUT = 10.0
"""Seconds to establish one connection (start-up fails after this)."""
ACQUIRE_TIMEOUT = 3.0
"""Seconds a query waits for a pooled connection (including reconnecting one)."""
COMMAND_TIMEOUT = 5.0
"""Seconds a statement may take before it is abandoned."""
FAIL_FAST = 1.0
"""After a query failed because PostgreSQL could not be reached, queries in the next this many
seconds fail at once (ConnectionError: the REST edge answers 503, which clients retry) instead of
each waiting for its own timeout; then one is let through to find out whether it is back."""
_UNREACHABLE = (OSError, asyncio.TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError)
PING_TIMEOUT = 3.0
"""Upper bound of :meth:`PostgresStore.ping` as a whole."""

TABLE = "signalite_resources"
ENTITIES = "signalite_entities"
_SCHEMA_LOCK = 0x5167_6E61_6C69_7465  # "Signalite": one advisory lock key for schema creation/migration
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_OWN_PARAMS = ("schema", "pool_min", "pool_max", "statement_cache_size")
_COLUMNS = "account, region, kind, name, arn, created, version, status, attrs, tags"
_SELECT = _COLUMNS + ", rev"
_LIMIT_LOCK_CLASS = 0x5167  # pg_advisory_xact_lock(class, hashtext(key)) serializes inserts under a limit
_ENTITY = "account, kind, name, id, path, created, data, rev"


def parse_url(url: str) -> tuple[str, str | None, int, int]:
    """Split a store URL into (asyncpg DSN, schema, pool_min, pool_max)."""
    dsn, params = take_params(url, _OWN_PARAMS)
    own = dict(params)  # the last of a repeated parameter wins
    schema = own.get("schema") or None
    if schema is not None and not _IDENT.match(schema):
        raise ValueError(f"invalid schema name {schema!r} in the store URL: use letters, digits and '_' "
                         "(not starting with a digit), at most 63 characters")
    try:
        pool_min = int(own.get("pool_min", 1))
        pool_max = int(own.get("pool_max", 10))
    except ValueError:
        raise ValueError("pool_min and pool_max in the store URL must be integers") from None
    if not 0 <= pool_min <= pool_max or pool_max < 1:
        raise ValueError("the store URL needs 0 <= pool_min <= pool_max and pool_max >= 1")
    return dsn, schema, pool_min, pool_max


def _statement_cache_size(url: str) -> int:
    # A blank statement_cache_size counts as absent (the default), unlike a blank pool size.
    given = {k: v for k, v in take_params(url, ("statement_cache_size",))[1] if v}
    raw = given.get("statement_cache_size", "100")
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError("statement_cache_size in the store URL must be a non-negative integer")
    return value




def _row(row: asyncpg.Record | None) -> Resource | None:
    if row is None:
        return None
    return Resource(row["account"], row["region"], row["kind"], row["name"], row["arn"], row["created"],
                    row["version"], row["status"], row["attrs"], row["tags"], revision=row["rev"])


def _entity(row: asyncpg.Record | None) -> Entity | None:
    if row is None:
        return None
    return Entity(row["account"], row["kind"], row["name"], row["id"], row["path"], row["created"], row["data"],
                  revision=row["rev"])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb <-> Python values (asyncpg hands out jsonb as text by default).
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class PostgresStore:
    def __init__(self, url: str) -> None:
        self._url = url
        self._dsn, self._schema, self._pool_min, self._pool_max = parse_url(url)
        self._statement_cache_size = _statement_cache_size(url)
        self._table = f'"{self._schema}".{TABLE}' if self._schema else TABLE
        self._entities = f'"{self._schema}".{ENTITIES}' if self._schema else ENTITIES
        self._pool: asyncpg.Pool | None = None
        self._failed_at = -FAIL_FAST
        self._failure = ""

    @property
    def schema(self) -> str | None:
        return self._schema

    @property
    def table(self) -> str:
        """The (schema-qualified, when a schema is configured) table name."""
        return self._table

    # --- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._dsn, min_size=self._pool_min, max_size=self._pool_max, timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT, init=_init_connection,
                statement_cache_size=self._statement_cache_size)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ConnectionError(f"cannot connect to the PostgreSQL store {redact(self._url)}: "
                                  f"{_describe(exc)}") from exc
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                await self._create_schema(conn)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # e.g. no CREATE privilege: as unusable as unreachable, and said as plainly at start-up.
            await self._close_pool()
            raise ConnectionError(f"cannot prepare the PostgreSQL store {redact(self._url)}: "
                                  f"{_describe(exc)}") from exc
        except BaseException:
            await self._close_pool()
            raise

    async def _create_schema(self, conn: asyncpg.Connection) -> None:
        t = self._table
        statements = []
        if self._schema:
            statements.append(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
        index_prefix = f"{TABLE}_"
        statements += [
            f"""CREATE TABLE IF NOT EXISTS {t} (
                arn      text PRIMARY KEY,
                account  text NOT NULL,
                region   text NOT NULL,
                kind     text NOT NULL,
                name     text COLLATE "C" NOT NULL,
                created  double precision NOT NULL,
                version  text NOT NULL,
                status   text NOT NULL,
                attrs    jsonb NOT NULL DEFAULT '{{}}',
                tags     jsonb NOT NULL DEFAULT '{{}}',
                rev      bigint NOT NULL DEFAULT 0,
                CONSTRAINT {index_prefix}name_key UNIQUE (account, region, kind, name)
            )""",
            f"CREATE INDEX IF NOT EXISTS {index_prefix}attrs_idx ON {t} USING gin (attrs jsonb_path_ops)",
            f"""CREATE TABLE IF NOT EXISTS {self._entities} (
                id       text PRIMARY KEY,
                account  text NOT NULL,
                kind     text NOT NULL,
                name     text NOT NULL,
                name_key text COLLATE "C" NOT NULL,
                path     text COLLATE "C" NOT NULL,
                created  double precision NOT NULL,
                data     jsonb NOT NULL DEFAULT '{{}}',
                rev      bigint NOT NULL DEFAULT 0,
                CONSTRAINT {ENTITIES}_name_key UNIQUE (account, kind, name_key)
            )""",
        ]
        # Concurrent CREATE ... IF NOT EXISTS can still collide in the catalogs; the advisory lock
        # (released at commit) makes nodes starting together take turns.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _SCHEMA_LOCK)
            for statement in statements:
                await conn.execute(statement)

    async def close(self) -> None:
        await self._close_pool()

    async def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), CONNECT_TIMEOUT)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pool.terminate()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("store is not open")
        return self._pool

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; ConnectionError (retriable) when PostgreSQL cannot be reached,
        at once while it failed within the last :data:`FAIL_FAST` seconds."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._failed_at < FAIL_FAST:
            raise ConnectionError(f"PostgreSQL unreachable: {self._failure}")
        try:
            async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
                yield conn
        except _UNREACHABLE as exc:
            self._failed_at = loop.time()
            self._failure = _describe(exc)
            raise ConnectionError(f"PostgreSQL unreachable: {self._failure}") from exc

    async def ping(self) -> bool:
        """True when PostgreSQL answers; raises :class:`ConnectionError` (never hangs) otherwise."""
        async def probe() -> None:
            async with self.pool.acquire(timeout=PING_TIMEOUT) as conn:
                await conn.fetchval("SELECT 1", timeout=PING_TIMEOUT)

        # Run the probe as its own task and stop waiting for it after PING_TIMEOUT: when the
        # server stops answering, asyncpg's clean-up of a timed-out query (a cancel request over a
        # new connection, then the reset on release) can itself take longer than the timeout.
        task = asyncio.ensure_future(probe())
        done, _ = await asyncio.wait({task}, timeout=PING_TIMEOUT)
        if not done:
            task.cancel()
            task.add_done_callback(_consume)
            raise ConnectionError(f"PostgreSQL unreachable: no answer within {PING_TIMEOUT:g}s")
        try:
            task.result()
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise ConnectionError(f"PostgreSQL unreachable: {_describe(exc)}") from exc
        self._failed_at = -FAIL_FAST  # it answers: let queries through again
        return True

    # --- records ---------------------------------------------------------------------------
    async def insert(self, resource: Resource, *, limit: int | None = None) -> None:
        r = resource
        insert = f"INSERT INTO {self._table} ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)"
        values = (r.account, r.region, r.kind, r.name, r.arn, r.created, r.version, r.status, r.attrs, r.tags)
        async with self._conn() as conn:
            try:
                if limit is None:
                    await conn.execute(insert, *values)
                    return
                # Count and insert under one lock per (schema, account, region, kind), so nodes
                # inserting at the same time cannot all see room for one more.
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LIMIT_LOCK_CLASS,
                                       f"{self._schema or ''}/{r.account}/{r.region}/{r.kind}")
                    count = await conn.fetchval(
                        f"SELECT count(*) FROM {self._table} WHERE account=$1 AND region=$2 AND kind=$3",
                        r.account, r.region, r.kind)
                    if count >= limit:
                        raise LimitExceeded(r.name)
                    await conn.execute(insert, *values)
            except asyncpg.UniqueViolationError:
                raise NameInUse(r.name) from None

    async def get_by_name(self, account: str, region: str, kind: str, name: str) -> Resource | None:
        async with self._conn() as conn:
            return _row(await conn.fetchrow(
                f"SELECT {_SELECT} FROM {self._table} WHERE account=$1 AND region=$2 AND kind=$3 AND name=$4",
                account, region, kind, name))

    async def get_by_arn(self, arn: str) -> Resource | None:
        async with self._conn() as conn:
            return _row(await conn.fetchrow(f"SELECT {_SELECT} FROM {self._table} WHERE arn=$1", arn))

    async def get_attrs_by_arn(self, arn: str) -> dict[str, Any] | None:
        async with self._conn() as conn:
            row = await conn.fetchrow(f"SELECT attrs FROM {self._table} WHERE arn=$1", arn)
            return None if row is None else row["attrs"]

    async def list(self, account: str, region: str, kind: str, *, prefix: str = "", after: str = "",
                   limit: int = 100) -> list[Resource]:
        # starts_with() rather than LIKE: names may contain '_' (and '%'), which LIKE treats as
        # wildcards. The prefix range (name >= prefix) lets the unique index serve the scan.
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_SELECT} FROM {self._table} WHERE account=$1 AND region=$2 AND kind=$3 "
                "AND name > $4 AND name >= $5 AND starts_with(name, $5) ORDER BY name LIMIT $6",
                account, region, kind, after, prefix, limit)
        return [_row(r) for r in rows]  # type: ignore[misc]

    async def count(self, account: str, region: str, kind: str) -> int:
        async with self._conn() as conn:
            return int(await conn.fetchval(
                f"SELECT count(*) FROM {self._table} WHERE account=$1 AND region=$2 AND kind=$3",
                account, region, kind))

    async def replace(self, resource: Resource, expected_version: str) -> bool:
        r = resource
        async with self._conn() as conn:
            status = await conn.execute(
                f"UPDATE {self._table} SET version=$1, status=$2, attrs=$3, tags=$4, rev=rev+1 "
                "WHERE arn=$5 AND version=$6 AND ($7::bigint IS NULL OR rev=$7::bigint)",
                r.version, r.status, r.attrs, r.tags, r.arn, expected_version, r.revision)
        return bool(status == "UPDATE 1")

    async def delete(self, arn: str, expected_version: str | None = None) -> bool:
        async with self._conn() as conn:
            if expected_version is None:
                status = await conn.execute(f"DELETE FROM {self._table} WHERE arn=$1", arn)
            else:
                status = await conn.execute(f"DELETE FROM {self._table} WHERE arn=$1 AND version=$2",
                                            arn, expected_version)
        return bool(status == "DELETE 1")

    async def find(self, kind: str, attr: str, value: str) -> builtins.list[Resource]:
        # Containment uses the GIN index; the equality makes the match exact (a JSON string equal
        # to ``value``, as SQLite's json_extract comparison does; no array-element matches).
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_SELECT} FROM {self._table} WHERE kind=$1 "
                "AND attrs @> jsonb_build_object($2::text, $3::text) AND attrs -> $2::text = to_jsonb($3::text) "
                "ORDER BY name",
                kind, attr, value)
        return [_row(r) for r in rows]  # type: ignore[misc]


    # --- identity records ------------------------------------------------------------------
    async def insert_entity(self, entity: Entity, *, limit: int | None = None) -> None:
        e = entity
        insert = (f"INSERT INTO {self._entities} (id, account, kind, name, name_key, path, created, data) "
                  "VALUES ($1,$2,$3,$4,$5,$6,$7,$8)")
        values = (e.id, e.account, e.kind, e.name, e.name.lower(), e.path, e.created, e.data)
        async with self._conn() as conn:
            try:
                if limit is None:
                    await conn.execute(insert, *values)
                    return
                async with conn.transaction():  # count and insert under one lock per (account, kind)
                    await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", _LIMIT_LOCK_CLASS,
                                       f"{self._schema or ''}/entity/{e.account}/{e.kind}")
                    count = await conn.fetchval(
                        f"SELECT count(*) FROM {self._entities} WHERE account=$1 AND kind=$2", e.account, e.kind)
                    if count >= limit:
                        raise LimitExceeded(e.name)
                    await conn.execute(insert, *values)
            except asyncpg.UniqueViolationError:
                raise NameInUse(e.name) from None

    async def get_entity(self, account: str, kind: str, name: str) -> Entity | None:
        async with self._conn() as conn:
            return _entity(await conn.fetchrow(
                f"SELECT {_ENTITY} FROM {self._entities} WHERE account=$1 AND kind=$2 AND name_key=$3",
                account, kind, name.lower()))

    async def get_entity_by_id(self, entity_id: str) -> Entity | None:
        async with self._conn() as conn:
            return _entity(await conn.fetchrow(f"SELECT {_ENTITY} FROM {self._entities} WHERE id=$1", entity_id))

    async def list_entities(self, account: str, kind: str, *, path_prefix: str = "/", after: str = "",
                            limit: int = 100) -> builtins.list[Entity]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_ENTITY} FROM {self._entities} WHERE account=$1 AND kind=$2 AND name_key > $3 "
                "AND starts_with(path, $4) ORDER BY name_key LIMIT $5",
                account, kind, after.lower(), path_prefix, limit)
        return [_entity(r) for r in rows]  # type: ignore[misc]

    async def update_entity(self, entity: Entity) -> bool:
        async with self._conn() as conn:
            status = await conn.execute(
                f"UPDATE {self._entities} SET path=$1, data=$2, rev=rev+1 "
                "WHERE id=$3 AND ($4::bigint IS NULL OR rev=$4::bigint)",
                entity.path, entity.data, entity.id, entity.revision)
        return bool(status == "UPDATE 1")

    async def delete_entity(self, entity: Entity) -> bool:
        async with self._conn() as conn:
            if entity.revision is None:
                status = await conn.execute(f"DELETE FROM {self._entities} WHERE id=$1", entity.id)
            else:
                status = await conn.execute(f"DELETE FROM {self._entities} WHERE id=$1 AND rev=$2",
                                            entity.id, entity.revision)
        return bool(status == "DELETE 1")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _consume(task: "asyncio.Future[None]") -> None:
    """Retrieve the outcome of an abandoned task (no 'exception was never retrieved' noise)."""
    if not task.cancelled():
        task.exception()
