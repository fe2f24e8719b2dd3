"""Accounts: the server's root account, and the ones ``signalite admin create-account`` makes.

An account is a record of its own (kind ``account``, its id the account id) holding the ids of
its root keys; its root key is a long-term key like an IAM user's, with no user. Every identity
record, channel and stream carries its account, and every operation works in the caller's: an
account is the boundary nothing crosses (an AssumeRole into a role of another account is the one
way in, and only when that role's trust policy names the caller).
"""

from __future__ import annotations

from ..store import Entity, NameInUse, Store
from . import names
from .keys import AccessKeys
from .service import ACCOUNT


class AccountExists(Exception):
    """The account id asked for is taken."""


async def create(store: Store, keys: AccessKeys, now: float, account_id: str | None = None) -> tuple[str, str, str]:
    """A new account (``account_id``, or a fresh one) with one root key: (account id, access key
    id, secret access key). The secret is returned once and kept only sealed."""
    while True:
        chosen = account_id or names.account_id()
        try:
            await store.insert_entity(Entity(chosen, ACCOUNT, chosen, chosen, "/", now, {"keys": []}))
            break
        except NameInUse:
            if account_id is not None:
                raise AccountExists(account_id) from None
    record, secret = await keys.create(store, chosen, None, now)
    account = await store.get_entity_by_id(chosen)
    assert account is not None  # made above; accounts are never deleted
    await store.update_entity(account.evolve(data={**account.data, "keys": [record.id]}))
    return chosen, record.id, secret
