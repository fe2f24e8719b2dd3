"""The Store contract (signalite/store/base.py), run against SQLite and PostgreSQL alike.

Every test gets a fresh, empty store of each backend (``store_url`` in conftest.py). Nothing is
mocked: SQLite is a file in a temp dir, PostgreSQL a throw-away schema on a real server.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import AsyncIterator

import pytest

from signalite.aws import arn as arns
from signalite.store import LimitExceeded, NameInUse, Resource, Store, open_store
from tests.integration.stores import opened

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "us-west-2"
OTHER_REGION = "eu-central-1"

_millis = itertools.count(1_700_000_000_000)


def res(name: str, *, account: str = ACCOUNT, region: str = REGION, kind: str = "channel",
        version: str = "v1", status: str = "ACTIVE", attrs: dict | None = None,
        tags: dict | None = None) -> Resource:
    """A resource with a fresh ARN (unique creation millis), like the operations mint them."""
    created = next(_millis)
    return Resource(account=account, region=region, kind=kind, name=name,
                    arn=arns.make(region, account, kind, name, created), created=created / 1000,
                    version=version, status=status,
                    attrs={"ChannelType": "SINGLE_MASTER", "MessageTtlSeconds": 60} if attrs is None else attrs,
                    tags={} if tags is None else tags)


async def names(store: Store, **kw) -> list[str]:
    account = kw.pop("account", ACCOUNT)
    region = kw.pop("region", REGION)
    kind = kw.pop("kind", "channel")
    return [r.name for r in await store.list(account, region, kind, **kw)]


# --- insert / get ---------------------------------------------------------------------------

async def test_insert_then_get_by_name_and_by_arn_returns_the_same_record(store):
    r = res("cam-1", attrs={"ChannelType": "SINGLE_MASTER", "MessageTtlSeconds": 120,
                            "MediaStorage": {"Status": "ENABLED", "StreamARN": "arn:s"},
                            "Flags": [1, 2.5, True, None], "Big": 2**53},
            tags={"env": "prod", "ünïcode": "välue ✓", "empty": ""}, status="CREATING", version="abc123")
    await store.insert(r)
    by_name = await store.get_by_name(ACCOUNT, REGION, "channel", "cam-1")
    by_arn = await store.get_by_arn(r.arn)
    assert by_name == r
    assert by_arn == r
    assert type(by_name.attrs["MessageTtlSeconds"]) is int
    assert type(by_name.attrs["Flags"][1]) is float
    assert by_name.created == r.created  # epoch seconds with millisecond precision survive exactly


async def test_missing_records_are_none(store):
    await store.insert(res("here"))
    assert await store.get_by_name(ACCOUNT, REGION, "channel", "not-here") is None
    assert await store.get_by_name(ACCOUNT, REGION, "stream", "here") is None
    assert await store.get_by_name(OTHER_ACCOUNT, REGION, "channel", "here") is None
    assert await store.get_by_name(ACCOUNT, OTHER_REGION, "channel", "here") is None
    assert await store.get_by_arn(arns.make(REGION, ACCOUNT, "channel", "here", 1)) is None


async def test_get_attrs_by_arn_is_the_attrs_of_get_by_arn_and_follows_writes(store):
    r = res("attrs", attrs={"ChannelType": "SINGLE_MASTER", "MessageTtlSeconds": 60,
                            "MediaStorage": {"Status": "DISABLED"}}, tags={"k": "v"})
    await store.insert(r)
    assert await store.get_attrs_by_arn(r.arn) == (await store.get_by_arn(r.arn)).attrs == r.attrs
    enabled = r.evolve(attrs={**r.attrs, "MediaStorage": {"Status": "ENABLED", "StreamARN": "arn:s"}})
    assert await store.replace(enabled, "v1")
    assert await store.get_attrs_by_arn(r.arn) == enabled.attrs
    plain = res("plain", attrs={})
    await store.insert(plain)
    assert await store.get_attrs_by_arn(plain.arn) == {}
    assert await store.delete(r.arn)
    assert await store.get_attrs_by_arn(r.arn) is None
    assert await store.get_attrs_by_arn(arns.make(REGION, ACCOUNT, "channel", "never", 1)) is None


async def test_duplicate_name_is_refused_and_the_first_record_kept(store):
    first = res("dup", version="first")
    await store.insert(first)
    with pytest.raises(NameInUse):
        await store.insert(res("dup", version="second"))
    assert await store.get_by_name(ACCOUNT, REGION, "channel", "dup") == first
    assert await store.count(ACCOUNT, REGION, "channel") == 1


async def test_duplicate_arn_is_refused(store):
    r = res("same-arn")
    await store.insert(r)
    with pytest.raises(NameInUse):
        await store.insert(r.evolve(version="other"))


async def test_same_name_is_free_in_another_region_account_or_kind(store):
    variants = [res("shared"), res("shared", region=OTHER_REGION), res("shared", account=OTHER_ACCOUNT),
                res("shared", kind="stream")]
    for r in variants:
        await store.insert(r)
    for r in variants:
        assert await store.get_by_name(r.account, r.region, r.kind, "shared") == r
        assert await store.get_by_arn(r.arn) == r
        assert await store.count(r.account, r.region, r.kind) == 1


async def test_names_are_case_sensitive(store):
    await store.insert(res("Camera"))
    await store.insert(res("camera"))
    assert (await store.get_by_name(ACCOUNT, REGION, "channel", "Camera")).name == "Camera"
    assert (await store.get_by_name(ACCOUNT, REGION, "channel", "camera")).name == "camera"
    assert await store.get_by_name(ACCOUNT, REGION, "channel", "CAMERA") is None


# --- list -----------------------------------------------------------------------------------

MIXED = ["b", "a_b", "a-b", "a.b", "aXb", "A", "Z", "_x", "ab", "a%b", "a\\b", "0", "é", "a"]


async def test_list_orders_by_code_point_not_by_locale(store):
    for n in MIXED:
        await store.insert(res(n))
    assert await names(store) == sorted(MIXED)


async def test_list_is_scoped_to_account_region_and_kind(store):
    await store.insert(res("mine"))
    await store.insert(res("other-account", account=OTHER_ACCOUNT))
    await store.insert(res("other-region", region=OTHER_REGION))
    await store.insert(res("a-stream", kind="stream"))
    assert await names(store) == ["mine"]
    assert await names(store, kind="stream") == ["a-stream"]
    assert await names(store, account=OTHER_ACCOUNT) == ["other-account"]
    assert await names(store, region=OTHER_REGION) == ["other-region"]
    assert await names(store, region="ap-south-1") == []


async def test_list_prefix_is_literal_and_case_sensitive(store):
    for n in ["a_b", "axb", "a_c", "a%b", "abc", "a\\b", "a\\c", "A_b", "a", "b_a"]:
        await store.insert(res(n))
    assert await names(store, prefix="a_") == ["a_b", "a_c"]          # '_' is not a wildcard
    assert await names(store, prefix="a%") == ["a%b"]                 # '%' is not a wildcard
    assert await names(store, prefix="a\\") == ["a\\b", "a\\c"]        # nor is '\' an escape
    assert await names(store, prefix="A") == ["A_b"]                  # case sensitive
    assert await names(store, prefix="a") == ["a", "a%b", "a\\b", "a\\c", "a_b", "a_c", "abc", "axb"]
    assert await names(store, prefix="a_b") == ["a_b"]                # a whole name is its own prefix
    assert await names(store, prefix="a_bc") == []
    assert await names(store, prefix="zzz") == []
    assert await names(store, prefix="") == sorted(["a_b", "axb", "a_c", "a%b", "abc", "a\\b", "a\\c", "A_b", "a", "b_a"])


async def test_list_after_and_limit(store):
    for n in ["a", "b", "c", "d", "e"]:
        await store.insert(res(n))
    assert await names(store, limit=2) == ["a", "b"]
    assert await names(store, after="b", limit=2) == ["c", "d"]
    assert await names(store, after="bb") == ["c", "d", "e"]      # `after` need not be a stored name
    assert await names(store, after="e") == []
    assert await names(store, after="", limit=100) == ["a", "b", "c", "d", "e"]
    assert await names(store, limit=0) == []


async def test_paging_with_a_prefix_containing_wildcard_characters_visits_each_match_once(store):
    matching = [f"cam_{i:02d}" for i in range(23)] + ["cam_%", "cam__x"]
    others = ["camX01", "cam-01", "cam%", "Cam_01", "cama"]
    for n in matching + others:
        await store.insert(res(n))
    seen: list[str] = []
    after = ""
    while True:
        page = await names(store, prefix="cam_", after=after, limit=4)
        seen += page
        if len(page) < 4:
            break
        after = page[-1]
    assert seen == sorted(matching)


async def test_insert_with_a_limit(store):
    for i in range(3):
        await store.insert(res(f"l{i}"), limit=3)
    with pytest.raises(LimitExceeded):
        await store.insert(res("l3"), limit=3)
    assert await store.get_by_name(ACCOUNT, REGION, "channel", "l3") is None
    await store.insert(res("l3", region=OTHER_REGION), limit=3)  # counted per account, region and kind
    await store.insert(res("l3", account=OTHER_ACCOUNT), limit=3)
    await store.insert(res("l3", kind="stream"), limit=3)
    with pytest.raises(LimitExceeded):  # the limit is checked before the name
        await store.insert(res("l0"), limit=3)
    with pytest.raises(NameInUse):
        await store.insert(res("l0"), limit=4)
    await store.insert(res("l4"), limit=4)
    assert await store.count(ACCOUNT, REGION, "channel") == 4


# --- count ----------------------------------------------------------------------------------

async def test_count(store):
    assert await store.count(ACCOUNT, REGION, "channel") == 0
    for i in range(7):
        await store.insert(res(f"c{i}"))
    await store.insert(res("s", kind="stream"))
    await store.insert(res("elsewhere", region=OTHER_REGION))
    assert await store.count(ACCOUNT, REGION, "channel") == 7
    assert await store.count(ACCOUNT, REGION, "stream") == 1
    assert await store.count(ACCOUNT, OTHER_REGION, "channel") == 1
    assert await store.count(OTHER_ACCOUNT, REGION, "channel") == 0
    await store.delete((await store.get_by_name(ACCOUNT, REGION, "channel", "c3")).arn)
    assert await store.count(ACCOUNT, REGION, "channel") == 6


# --- replace --------------------------------------------------------------------------------

async def test_replace_at_the_current_version_stores_the_new_state(store):
    r = res("upd", version="v1", tags={"a": "1"})
    await store.insert(r)
    new = r.evolve(version="v2", status="UPDATING", attrs={**r.attrs, "MessageTtlSeconds": 30},
                   tags={"a": "1", "b": "2"})
    assert await store.replace(new, "v1") is True
    assert await store.get_by_arn(r.arn) == new
    assert await store.get_by_name(ACCOUNT, REGION, "channel", "upd") == new


async def test_replace_at_a_stale_version_is_refused_and_changes_nothing(store):
    r = res("stale", version="v1")
    await store.insert(r)
    assert await store.replace(r.evolve(version="v2"), "v1") is True
    current = await store.get_by_arn(r.arn)
    assert await store.replace(r.evolve(version="v3", attrs={"x": "y"}, tags={"t": "u"}, status="DELETING"),
                               "v1") is False
    assert await store.get_by_arn(r.arn) == current


async def test_replace_of_a_missing_resource_is_refused(store):
    assert await store.replace(res("ghost", version="v2"), "v1") is False
    assert await store.count(ACCOUNT, REGION, "channel") == 0


async def test_replace_keeps_the_identity_of_the_record(store):
    """Only version, status, attrs and tags change; name, account, region, kind and creation time
    belong to the ARN and stay as inserted."""
    r = res("ident")
    await store.insert(r)
    assert await store.replace(r.evolve(version="v2", name="renamed", created=1.0), "v1") is True
    got = await store.get_by_arn(r.arn)
    assert (got.name, got.created, got.version) == ("ident", r.created, "v2")
    assert await store.get_by_name(ACCOUNT, REGION, "channel", "renamed") is None


async def test_replace_can_empty_attrs_and_tags(store):
    r = res("emptied", tags={"k": "v"})
    await store.insert(r)
    assert await store.replace(r.evolve(version="v2", attrs={}, tags={}), "v1")
    got = await store.get_by_arn(r.arn)
    assert (got.attrs, got.tags) == ({}, {})


async def test_replace_refuses_a_stale_copy_even_when_the_version_did_not_change(store):
    """Tag writes keep the Version (AWS semantics), so the version alone cannot detect a concurrent
    tag write; a record read from the store carries its revision, and a stale one is refused."""
    r = res("tagged", tags={})
    await store.insert(r)
    first = await store.get_by_arn(r.arn)
    second = await store.get_by_arn(r.arn)
    assert first.revision is not None
    assert await store.replace(first.evolve(tags={"a": "1"}), first.version) is True
    assert await store.replace(second.evolve(tags={"b": "2"}), second.version) is False  # no lost update
    current = await store.get_by_arn(r.arn)
    assert current.tags == {"a": "1"} and current.version == r.version
    assert await store.replace(current.evolve(tags={**current.tags, "b": "2"}), current.version) is True
    assert (await store.get_by_arn(r.arn)).tags == {"a": "1", "b": "2"}


async def test_records_from_every_read_carry_the_same_revision(store):
    r = res("rev")
    await store.insert(r)
    reads = [await store.get_by_arn(r.arn), await store.get_by_name(ACCOUNT, REGION, "channel", "rev"),
             (await store.list(ACCOUNT, REGION, "channel"))[0]]
    assert len({x.revision for x in reads}) == 1 and reads[0].revision is not None
    assert await store.replace(reads[1].evolve(version="v2"), "v1")
    again = await store.get_by_arn(r.arn)
    assert again.revision != reads[0].revision
    assert not await store.replace(reads[2].evolve(version="v3"), "v2")  # version right, copy stale


# --- delete ---------------------------------------------------------------------------------

async def test_delete_unconditionally(store):
    r = res("gone")
    await store.insert(r)
    assert await store.delete(r.arn) is True
    assert await store.get_by_arn(r.arn) is None
    assert await store.get_by_name(ACCOUNT, REGION, "channel", "gone") is None
    assert await store.delete(r.arn) is False


async def test_conditional_delete_refuses_a_stale_version_and_keeps_the_record(store):
    r = res("cond", version="v1")
    await store.insert(r)
    assert await store.delete(r.arn, "v0") is False
    assert await store.get_by_arn(r.arn) == r
    assert await store.delete(r.arn, "v1") is True
    assert await store.get_by_arn(r.arn) is None
    assert await store.delete(r.arn, "v1") is False


async def test_a_deleted_name_can_be_used_again(store):
    old = res("reuse")
    await store.insert(old)
    assert await store.delete(old.arn)
    new = res("reuse", version="fresh")
    assert new.arn != old.arn
    await store.insert(new)
    assert await store.get_by_name(ACCOUNT, REGION, "channel", "reuse") == new
    assert await store.get_by_arn(old.arn) is None


async def test_delete_touches_only_its_record(store):
    keep = [res("x"), res("x", region=OTHER_REGION), res("y")]
    target = res("x", kind="stream")
    for r in keep + [target]:
        await store.insert(r)
    assert await store.delete(target.arn)
    for r in keep:
        assert await store.get_by_arn(r.arn) == r


# --- find -----------------------------------------------------------------------------------

async def test_find_by_top_level_attribute(store):
    a = res("s1", kind="stream", attrs={"ChannelARN": "arn:c1"})
    b = res("s2", kind="stream", attrs={"ChannelARN": "arn:c1"}, account=OTHER_ACCOUNT)
    c = res("s3", kind="stream", attrs={"ChannelARN": "arn:c2"})
    d = res("c1", kind="channel", attrs={"ChannelARN": "arn:c1"})
    for r in (a, b, c, d):
        await store.insert(r)
    found = await store.find("stream", "ChannelARN", "arn:c1")
    assert sorted(found, key=lambda r: r.arn) == sorted([a, b], key=lambda r: r.arn)  # any account
    assert await store.find("stream", "ChannelARN", "arn:c2") == [c]
    assert await store.find("channel", "ChannelARN", "arn:c1") == [d]
    assert await store.find("stream", "ChannelARN", "arn:none") == []
    assert await store.find("stream", "Missing", "arn:c1") == []


async def test_find_matches_string_values_exactly(store):
    await store.insert(res("n", attrs={"Ttl": 5}))
    await store.insert(res("l", attrs={"Ttl": ["5"]}))
    await store.insert(res("o", attrs={"Ttl": {"5": "5"}}))
    await store.insert(res("nested", attrs={"Outer": {"Ttl": "5"}}))
    await store.insert(res("prefix", attrs={"Ttl": "55"}))
    await store.insert(res("case", attrs={"ttl": "5"}))
    assert await store.find("channel", "Ttl", "5") == []
    hit = res("s", attrs={"Ttl": "5"})
    await store.insert(hit)
    assert await store.find("channel", "Ttl", "5") == [hit]


async def test_find_sees_replaced_attributes(store):
    r = res("moving", kind="stream", attrs={"ChannelARN": "arn:old"})
    await store.insert(r)
    assert await store.replace(r.evolve(version="v2", attrs={"ChannelARN": "arn:new"}), "v1")
    assert await store.find("stream", "ChannelARN", "arn:old") == []
    assert [x.name for x in await store.find("stream", "ChannelARN", "arn:new")] == ["moving"]


# --- ping, lifecycle ------------------------------------------------------------------------

async def test_ping(store):
    assert await store.ping() is True


async def test_records_persist_across_close_and_open(store_url):
    first = await opened(store_url)
    kept = res("durable", tags={"k": "v"}, attrs={"MediaStorage": {"Status": "ENABLED"}})
    gone = res("deleted")
    await first.insert(kept)
    await first.insert(gone)
    assert await first.replace(kept.evolve(version="v2"), "v1")
    assert await first.delete(gone.arn)
    await first.close()

    second = await opened(store_url)
    try:
        assert await second.get_by_arn(kept.arn) == kept.evolve(version="v2")
        assert await second.get_by_arn(gone.arn) is None
        assert await second.count(ACCOUNT, REGION, "channel") == 1
        with pytest.raises(NameInUse):  # uniqueness survives a reopen too
            await second.insert(res("durable"))
    finally:
        await second.close()


async def test_open_is_idempotent_and_safe_when_many_nodes_start_together(store_url):
    stores = [open_store(store_url) for _ in range(8)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        await stores[0].insert(res("after-race"))
        for s in stores:
            assert (await s.get_by_name(ACCOUNT, REGION, "channel", "after-race")).name == "after-race"
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    again = await opened(store_url)  # opening an existing store keeps its records
    try:
        assert await again.count(ACCOUNT, REGION, "channel") == 1
    finally:
        await again.close()


# --- concurrency (two "nodes" on one database, many writers each) ----------------------------

@pytest.fixture
async def two_nodes(store_url: str) -> AsyncIterator[tuple[Store, Store]]:
    a, b = await opened(store_url), await opened(store_url)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def _outcomes(*calls) -> list[object]:
    return await asyncio.gather(*calls, return_exceptions=True)


async def test_concurrent_inserts_of_one_name_exactly_one_wins(two_nodes):
    a, b = two_nodes
    candidates = [res("contested", version=f"w{i}") for i in range(40)]
    results = await _outcomes(*((a if i % 2 else b).insert(r) for i, r in enumerate(candidates)))
    winners = [r for r, out in zip(candidates, results) if out is None]
    losers = [out for out in results if out is not None]
    assert len(winners) == 1
    assert all(isinstance(e, NameInUse) for e in losers), losers
    assert await a.get_by_name(ACCOUNT, REGION, "channel", "contested") == winners[0]
    assert await b.count(ACCOUNT, REGION, "channel") == 1


async def test_concurrent_conditional_replaces_exactly_one_wins(two_nodes):
    a, b = two_nodes
    r = res("race-update", version="base")
    await a.insert(r)
    updates = [r.evolve(version=f"w{i}", attrs={"winner": i}) for i in range(30)]
    results = await _outcomes(*((a if i % 2 else b).replace(u, "base") for i, u in enumerate(updates)))
    assert all(isinstance(x, bool) for x in results), results
    assert results.count(True) == 1
    winner = updates[results.index(True)]
    assert await b.get_by_arn(r.arn) == winner


async def test_concurrent_conditional_deletes_exactly_one_wins(two_nodes):
    a, b = two_nodes
    r = res("race-delete", version="base")
    await a.insert(r)
    results = await _outcomes(*((a if i % 2 else b).delete(r.arn, "base") for i in range(20)))
    assert results.count(True) == 1 and results.count(False) == 19, results
    assert await a.get_by_arn(r.arn) is None


async def test_concurrent_inserts_of_distinct_names_all_succeed(two_nodes):
    a, b = two_nodes
    results = await _outcomes(*((a if i % 2 else b).insert(res(f"n_{i:03d}")) for i in range(60)))
    assert results == [None] * 60
    assert await a.count(ACCOUNT, REGION, "channel") == 60
    assert await names(b, prefix="n_", limit=1000) == [f"n_{i:03d}" for i in range(60)]


async def test_concurrent_inserts_under_a_limit_never_exceed_it(two_nodes):
    a, b = two_nodes
    results = await _outcomes(*((a if i % 2 else b).insert(res(f"lim_{i:02d}"), limit=5) for i in range(30)))
    assert results.count(None) == 5
    assert all(isinstance(x, LimitExceeded) for x in results if x is not None), results
    assert await a.count(ACCOUNT, REGION, "channel") == 5


async def test_concurrent_read_modify_writes_that_keep_the_version_lose_nothing(two_nodes):
    """What TagResource does on two nodes at once: read, add a tag, replace at the same version,
    and on refusal read again and retry. Every tag must survive."""
    a, b = two_nodes
    r = res("many-tags", tags={})
    await a.insert(r)

    async def add_tag(node: Store, key: str) -> None:
        for _ in range(100):
            cur = await node.get_by_arn(r.arn)
            if await node.replace(cur.evolve(tags={**cur.tags, key: "v"}), cur.version):
                return
        raise AssertionError("never got through")

    await asyncio.gather(*(add_tag(a if i % 2 else b, f"k{i:02d}") for i in range(20)))
    got = await b.get_by_arn(r.arn)
    assert got.tags == {f"k{i:02d}": "v" for i in range(20)}
    assert got.version == r.version
