"""What only the PostgreSQL store has: its URL (schema isolation, pool size), its schema, and how
it behaves when the database is unreachable or stops answering (through a real TCP relay that the
test cuts or freezes; nothing is mocked)."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest

from signalite.store import open_store
from signalite.store.postgres import PostgresStore, parse_url, redact
from tests.integration.pg import POSTGRES_URL, _execute, with_port, with_schema
from tests.integration.test_store_contract import ACCOUNT, REGION, res
from tests.support.server import refused_port
from tests.support.wait import eventually_async


def test_url_parameters_are_taken_out_of_the_dsn():
    dsn, schema, lo, hi = parse_url("postgresql://u:p@db:5433/app?sslmode=disable&schema=tenant_1&pool_min=2&pool_max=5")
    assert dsn == "postgresql://u:p@db:5433/app?sslmode=disable"
    assert (schema, lo, hi) == ("tenant_1", 2, 5)
    assert parse_url("postgres://db/app") == ("postgres://db/app", None, 1, 10)


@pytest.mark.parametrize("bad", ["schema=1abc", "schema=a-b", 'schema=a"b', "schema=" + "x" * 64,
                                 "pool_max=0", "pool_min=3&pool_max=2", "pool_max=lots",
                                 "statement_cache_size=-1", "statement_cache_size=many"])
def test_invalid_url_parameters_are_refused(bad):
    with pytest.raises(ValueError):
        PostgresStore(f"postgresql://db/app?{bad}")


def test_passwords_are_redacted():
    assert redact("postgresql://user:s3cret@db:5432/app?schema=x") == "postgresql://user:***@db:5432/app?schema=x"
    assert redact("postgresql://user@db/app") == "postgresql://user@db/app"


def test_open_store_picks_postgres_for_both_schemes():
    assert isinstance(open_store("postgresql://db/app"), PostgresStore)
    assert isinstance(open_store("postgres://db/app"), PostgresStore)


async def test_schemas_isolate_deployments_in_one_database(postgres_schemas):
    a, b = open_store(postgres_schemas()), open_store(postgres_schemas())
    await a.open()
    await b.open()
    try:
        await a.insert(res("only-in-a"))
        await b.insert(res("only-in-b"))
        await b.insert(res("only-in-a"))  # same name, other schema: no conflict
        assert [r.name for r in await a.list(ACCOUNT, REGION, "channel")] == ["only-in-a"]
        assert [r.name for r in await b.list(ACCOUNT, REGION, "channel")] == ["only-in-a", "only-in-b"]
    finally:
        await a.close()
        await b.close()


async def test_schema_layout(postgres_url):
    store = PostgresStore(postgres_url)
    await store.open()
    await store.close()
    rows = (await _execute(
        POSTGRES_URL,
        "SELECT column_name, data_type, collation_name FROM information_schema.columns "
        f"WHERE table_schema = '{store.schema}' AND table_name = 'signalite_resources' ORDER BY column_name"))[0]
    columns = {r["column_name"]: (r["data_type"], r["collation_name"]) for r in rows}
    assert columns["attrs"][0] == columns["tags"][0] == "jsonb"
    assert columns["name"] == ("text", "C")


async def test_open_fails_fast_with_a_clear_message_when_nothing_listens():
    with refused_port() as port:
        store = PostgresStore(with_port("postgresql://signalite:hunter2@127.0.0.1/x", port))
        with pytest.raises(ConnectionError) as info:
            await store.open()
    message = str(info.value)
    assert "cannot connect to the PostgreSQL store" in message
    assert "hunter2" not in message and "***" in message


async def test_open_fails_with_a_clear_message_for_a_missing_database(postgres_schemas):
    missing = urlunsplit(urlsplit(POSTGRES_URL)._replace(path="/signalite_no_such_database"))
    with pytest.raises(ConnectionError, match="cannot connect to the PostgreSQL store.*does not exist"):
        await PostgresStore(missing).open()


async def _ping_until_ok(store) -> None:
    """The pool reconnects lazily: the first pings after an outage may still meet dead sockets."""
    await eventually_async(store.ping, what="the store answering again", interval=0.1, ignoring=(ConnectionError,))


async def test_ping_raises_while_the_database_is_cut_off_and_recovers(postgres_url, postgres_proxy):
    store = PostgresStore(with_port(postgres_url, postgres_proxy.port) + "&pool_max=2")
    await store.open()
    try:
        assert await store.ping() is True
        postgres_proxy.stop()
        with pytest.raises(ConnectionError, match="PostgreSQL unreachable"):
            await store.ping()
        with pytest.raises(ConnectionError):  # operations fail too (the REST edge answers 503), they do not hang
            await store.count(ACCOUNT, REGION, "channel")
        with pytest.raises(ConnectionError, match="PostgreSQL unreachable"):  # the next one at once
            await store.count(ACCOUNT, REGION, "channel")
        postgres_proxy.start()
        await _ping_until_ok(store)
        await store.insert(res("after-outage"))
        assert await store.count(ACCOUNT, REGION, "channel") == 1
    finally:
        await store.close()


async def test_ping_gives_up_instead_of_hanging_when_the_database_stops_answering(postgres_url, postgres_proxy):
    store = PostgresStore(with_port(postgres_url, postgres_proxy.port) + "&pool_min=1&pool_max=1")
    await store.open()
    try:
        assert await store.ping() is True
        postgres_proxy.freeze()
        with pytest.raises(ConnectionError, match="PostgreSQL unreachable"):
            await store.ping()
        postgres_proxy.thaw()
        await _ping_until_ok(store)
    finally:
        postgres_proxy.thaw()
        await store.close()


async def test_works_without_a_statement_cache(postgres_url):
    """``statement_cache_size=0`` (for PgBouncer in transaction mode) is accepted and used."""
    store = PostgresStore(postgres_url + "&statement_cache_size=0")
    await store.open()
    try:
        await store.insert(res("no-cache"))
        assert (await store.get_by_name(ACCOUNT, REGION, "channel", "no-cache")).name == "no-cache"
    finally:
        await store.close()


async def test_open_fails_with_a_clear_message_without_the_right_to_create_the_schema(postgres_schemas):
    role = f"signalite_test_ro_{os.getpid()}"
    await _execute(POSTGRES_URL, f"DROP ROLE IF EXISTS {role}", f"CREATE ROLE {role} LOGIN PASSWORD 'ro-pw'")
    try:
        parts = urlsplit(with_schema(POSTGRES_URL, "signalite_forbidden"))
        url = urlunsplit(parts._replace(netloc=f"{role}:ro-pw@{parts.hostname}:{parts.port or 5432}"))
        with pytest.raises(ConnectionError, match="cannot prepare the PostgreSQL store.*permission denied"):
            await PostgresStore(url).open()
    finally:
        await _execute(POSTGRES_URL, f"DROP ROLE IF EXISTS {role}")
