"""Signing-key resolution (``identity.keys.AccessKeys``) on a real store, both backends.

What the edge gets for each kind of key, and the per-node cache's guarantees: a change made on
this node counts at once; one made by another node that could not tell this one (no bus)
counts once the cache entry expires, on the node's own clock.
"""

from __future__ import annotations

import dataclasses

import pytest

from signalite.aws.keys import RootCredentials
from signalite.aws.principal import SESSION_TOKEN, USER, Caller
from signalite.aws.sigv4 import AuthError, Credential
from signalite.clock import ManualClock
from signalite.identity import tokens
from signalite.identity.crypto import ServerKey
from signalite.identity.keys import CACHE_SECONDS, AccessKeys
from signalite.store import Entity, Store

ROOT = RootCredentials("AKIDROOTOFTHETEST001", "root-secret-0000000000000000000000000000", "111122223333")
SERVER_KEY = ServerKey.from_settings(None, ROOT.secret_access_key)


async def node(store: Store, clock: ManualClock) -> AccessKeys:
    keys = AccessKeys(ROOT, SERVER_KEY, clock)
    await keys.attach(store, None)
    return keys


def cred(key_id: str, token: str | None = None) -> Credential:
    return Credential(key_id, "us-west-2", "kinesisvideo", token)


async def refusal(keys: AccessKeys, c: Credential, service: str = "kinesisvideo") -> tuple[str, int]:
    with pytest.raises(AuthError) as exc:
        await keys.resolve(c, service)
    return exc.value.code, exc.value.status


def alice() -> Entity:
    return Entity(ROOT.account_id, "user", "alice", "AIDAALICE000000000000", "/", 0.0,
                  {"arn": "arn:aws:iam::111122223333:user/alice"})


async def test_each_kind_of_key_resolves_to_its_caller(store):
    clock = ManualClock(1_800_000_000.0)
    keys = await node(store, clock)
    root = await keys.resolve(cred(ROOT.access_key_id), "kinesisvideo")
    assert (root.secret, root.caller.arn) == (ROOT.secret_access_key, "arn:aws:iam::111122223333:root")

    record, secret = await keys.create(store, ROOT.account_id, alice(), clock.now())
    assert record.data["secret"] != secret and secret not in str(record.data)
    user = await keys.resolve(cred(record.id), "kinesisvideo")
    assert (user.secret, user.caller.kind, user.caller.name, user.caller.user_id) == \
        (secret, USER, "alice", "AIDAALICE000000000000")

    account_root, account_secret = await keys.create(store, "444455556666", None, clock.now())
    other = await keys.resolve(cred(account_root.id), "sts")
    assert (other.secret, other.account_id, other.caller.arn) == \
        (account_secret, "444455556666", "arn:aws:iam::444455556666:root")

    temporary = tokens.mint(SERVER_KEY, dataclasses.replace(user.caller, source=SESSION_TOKEN,
                                                            expires=clock.now() + 900))
    resolved = await keys.resolve(cred(temporary.access_key_id, temporary.session_token), "kinesisvideo")
    assert (resolved.secret, resolved.caller.source) == (temporary.secret_access_key, SESSION_TOKEN)
    clock.advance(900)
    assert await refusal(keys, cred(temporary.access_key_id, temporary.session_token)) == ("ExpiredTokenException", 403)


async def test_unknown_keys_and_bad_tokens_answer_in_each_services_words(store):
    keys = await node(store, ManualClock())
    assert await refusal(keys, cred("AKIANOBODY0000000000")) == ("UnrecognizedClientException", 403)
    assert await refusal(keys, cred("AKIANOBODY0000000000"), "sts") == ("InvalidClientTokenId", 403)
    assert await refusal(keys, cred(ROOT.access_key_id, "made-up")) == ("UnrecognizedClientException", 403)
    assert await refusal(keys, cred(ROOT.access_key_id, "made-up"), "iam") == ("InvalidClientTokenId", 403)
    assert await refusal(keys, cred("ASIANOTOKEN000000000")) == ("UnrecognizedClientException", 403)
    temporary = tokens.mint(SERVER_KEY, Caller(ROOT.account_id, expires=2e9))
    assert await refusal(keys, cred("ASIAOTHERKEY00000000", temporary.session_token)) == \
        ("UnrecognizedClientException", 403)
    foreign = tokens.mint(ServerKey(b"another server's key material"), Caller(ROOT.account_id, expires=2e9))
    assert await refusal(keys, cred(foreign.access_key_id, foreign.session_token)) == \
        ("UnrecognizedClientException", 403)


async def test_a_change_counts_at_once_here_and_within_the_cache_lifetime_elsewhere(store):
    clock = ManualClock(1_800_000_000.0)
    here, elsewhere = await node(store, clock), await node(store, clock)
    record, _ = await here.create(store, ROOT.account_id, alice(), clock.now())
    assert await elsewhere.resolve(cred(record.id), "sts")  # now cached there

    current = await store.get_entity_by_id(record.id)
    assert await store.update_entity(current.evolve(data={**current.data, "status": "Inactive"}))
    here.changed(record.id)  # what UpdateAccessKey does; without a bus, only this node hears of it
    assert await refusal(here, cred(record.id), "sts") == ("InvalidClientTokenId", 403)
    assert await elsewhere.resolve(cred(record.id), "sts")  # still cached ...
    clock.advance(CACHE_SECONDS)
    assert await refusal(elsewhere, cred(record.id), "sts") == ("InvalidClientTokenId", 403)  # ... until it expires


async def test_a_store_sealed_under_another_key_is_refused_at_start(store):
    from signalite.config import ConfigError

    keys = await node(store, ManualClock())
    await keys.create(store, ROOT.account_id, None, 0.0)  # records the fingerprint
    stranger = AccessKeys(ROOT, ServerKey(b"another server's key material"), ManualClock())
    with pytest.raises(ConfigError):
        await stranger.attach(store, None)
