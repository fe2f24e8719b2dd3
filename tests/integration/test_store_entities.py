"""The Store contract for identity records (``Entity``), run against SQLite and PostgreSQL alike.

Names unique per account and kind without regard to case, ids unique over everything, lists
ordered by name without case and filtered by path, revision-conditional updates and deletes, and
limits that hold under concurrent inserts from two "nodes" on one database.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import AsyncIterator

import pytest

from signalite.store import Entity, LimitExceeded, NameInUse, Store
from tests.integration.stores import opened

ACCOUNT = "111122223333"
OTHER = "444455556666"
_ids = itertools.count()


def ent(name: str, *, kind: str = "user", account: str = ACCOUNT, path: str = "/", data: dict | None = None,
        entity_id: str | None = None) -> Entity:
    return Entity(account, kind, name, entity_id or f"AIDA{next(_ids):017d}", path, 1_700_000_000.25,
                  {"n": name} if data is None else data)


@pytest.fixture
async def two_nodes(store_url: str) -> AsyncIterator[tuple[Store, Store]]:
    a, b = await opened(store_url), await opened(store_url)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_insert_then_get_by_name_and_by_id(store):
    e = ent("Alice", path="/team/", data={"policies": {"p": "{\"Version\":\"2012-10-17\"}"}, "keys": ["AKIA1"],
                                          "ünï": "välue ✓", "n": 2**53, "f": 1.5, "none": None})
    await store.insert_entity(e)
    by_name = await store.get_entity(ACCOUNT, "user", "Alice")
    assert by_name == e
    assert by_name.revision is not None
    assert await store.get_entity_by_id(e.id) == e
    assert type(by_name.data["f"]) is float and type(by_name.data["n"]) is int
    assert by_name.created == e.created


async def test_names_are_unique_without_case_and_kept_as_written(store):
    await store.insert_entity(ent("Alice"))
    with pytest.raises(NameInUse):
        await store.insert_entity(ent("aLICE"))
    got = await store.get_entity(ACCOUNT, "user", "ALICE")
    assert got is not None and got.name == "Alice"


async def test_same_name_is_free_in_another_account_or_kind(store):
    records = [ent("shared"), ent("shared", account=OTHER), ent("shared", kind="role")]
    for e in records:
        await store.insert_entity(e)
    for e in records:
        assert await store.get_entity(e.account, e.kind, "shared") == e
    assert await store.get_entity(ACCOUNT, "policy", "shared") is None
    assert await store.get_entity("999999999999", "user", "shared") is None


async def test_ids_are_unique_over_every_account_and_kind(store):
    await store.insert_entity(ent("a", entity_id="AKIAONE"))
    with pytest.raises(NameInUse):
        await store.insert_entity(ent("b", kind="access-key", account=OTHER, entity_id="AKIAONE"))
    assert (await store.get_entity_by_id("AKIAONE")).name == "a"
    assert await store.get_entity_by_id("AKIATWO") is None


async def test_lists_are_ordered_without_case_paged_and_filtered_by_path(store):
    for name, path in [("bob", "/"), ("Alice", "/eng/"), ("carol", "/eng/video/"), ("Dave", "/ops/"),
                       ("erin", "/eng/")]:
        await store.insert_entity(ent(name, path=path))
    await store.insert_entity(ent("zed", account=OTHER))
    await store.insert_entity(ent("role-a", kind="role"))

    async def names(**kw) -> list[str]:
        return [e.name for e in await store.list_entities(ACCOUNT, "user", **kw)]

    assert await names() == ["Alice", "bob", "carol", "Dave", "erin"]
    assert await names(limit=2) == ["Alice", "bob"]
    assert await names(after="bob", limit=2) == ["carol", "Dave"]
    assert await names(after="BOB") == ["carol", "Dave", "erin"]
    assert await names(path_prefix="/eng/") == ["Alice", "carol", "erin"]
    assert await names(path_prefix="/eng/video/") == ["carol"]
    assert await names(path_prefix="/nothing/") == []
    assert [e.name for e in await store.list_entities(OTHER, "user")] == ["zed"]


async def test_updates_and_deletes_are_conditional_on_the_revision(store):
    e = ent("rev")
    await store.insert_entity(e)
    read = await store.get_entity(ACCOUNT, "user", "rev")
    assert await store.update_entity(read.evolve(data={"v": 2}, path="/moved/"))
    stale = read.evolve(data={"v": 3})
    assert not await store.update_entity(stale)
    assert not await store.delete_entity(stale)
    now = await store.get_entity_by_id(e.id)
    assert (now.data, now.path) == ({"v": 2}, "/moved/")
    assert now.revision != read.revision
    assert await store.delete_entity(now)
    assert await store.get_entity_by_id(e.id) is None
    assert not await store.update_entity(now)
    assert not await store.delete_entity(now.evolve(revision=None))


async def test_a_record_built_by_hand_updates_and_deletes_unconditionally(store):
    e = ent("hand")
    await store.insert_entity(e)
    assert await store.update_entity(e.evolve(data={"x": 1}))
    assert (await store.get_entity_by_id(e.id)).data == {"x": 1}
    assert await store.delete_entity(e)


async def test_a_name_is_free_again_after_delete(store):
    first = ent("again")
    await store.insert_entity(first)
    assert await store.delete_entity(await store.get_entity_by_id(first.id))
    second = ent("AGAIN")
    await store.insert_entity(second)
    assert (await store.get_entity(ACCOUNT, "user", "again")).id == second.id


async def test_limits_count_per_account_and_kind(store):
    for i in range(3):
        await store.insert_entity(ent(f"u{i}"), limit=3)
    with pytest.raises(LimitExceeded):
        await store.insert_entity(ent("u3"), limit=3)
    await store.insert_entity(ent("u3", account=OTHER), limit=3)
    await store.insert_entity(ent("r0", kind="role"), limit=3)
    assert len(await store.list_entities(ACCOUNT, "user")) == 3


async def test_records_survive_reopening(store_url):
    first = await opened(store_url)
    e = ent("kept", data={"k": [1, 2]})
    try:
        await first.insert_entity(e)
    finally:
        await first.close()
    again = await opened(store_url)
    try:
        assert await again.get_entity_by_id(e.id) == e
    finally:
        await again.close()


async def test_concurrent_inserts_of_one_name_in_any_case_exactly_one_wins(two_nodes):
    a, b = two_nodes
    candidates = [ent("contested".upper() if i % 3 else "contested") for i in range(30)]
    results = await asyncio.gather(*((a if i % 2 else b).insert_entity(e) for i, e in enumerate(candidates)),
                                   return_exceptions=True)
    assert results.count(None) == 1
    assert all(isinstance(x, NameInUse) for x in results if x is not None), results


async def test_concurrent_inserts_under_a_limit_never_exceed_it(two_nodes):
    a, b = two_nodes
    results = await asyncio.gather(*((a if i % 2 else b).insert_entity(ent(f"l{i:02d}"), limit=4)
                                     for i in range(24)), return_exceptions=True)
    assert results.count(None) == 4
    assert all(isinstance(x, LimitExceeded) for x in results if x is not None), results


async def test_concurrent_read_modify_writes_lose_nothing(two_nodes):
    """What attaching policies on two nodes at once does: read, add, write at the revision read,
    and read again on refusal. Every addition survives."""
    a, b = two_nodes
    e = ent("many", data={"attached": []})
    await a.insert_entity(e)

    async def attach(node: Store, arn: str) -> None:
        for _ in range(200):
            cur = await node.get_entity_by_id(e.id)
            if await node.update_entity(cur.evolve(data={"attached": [*cur.data["attached"], arn]})):
                return
        raise AssertionError("never got through")

    await asyncio.gather(*(attach(a if i % 2 else b, f"arn:{i:02d}") for i in range(16)))
    got = await b.get_entity_by_id(e.id)
    assert sorted(got.data["attached"]) == [f"arn:{i:02d}" for i in range(16)]
