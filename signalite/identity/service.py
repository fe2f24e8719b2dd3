"""The identity plane in the application: its typed key, and its start after the store and bus.

``app[IDENTITY]`` is the node's :class:`~signalite.identity.keys.AccessKeys`: the edge resolves
signing keys through it, the IAM, STS and account operations create and change keys through it.
It starts once the store and the bus are open: it checks that the store's secrets were sealed
under this server's key, records the root account, and listens for key changes of other nodes;
the node's :class:`~signalite.identity.authorize.Authorizer` starts listening for their policy
changes at the same moment.
"""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from ..context import BUS, CLOCK, STORE
from ..store import Entity, NameInUse, Store
from .authorize import AUTHORIZER
from .keys import AccessKeys

IDENTITY = web.AppKey("identity", AccessKeys)
ACCOUNT = "account"


async def ensure_account(store: Store, account_id: str, now: float) -> None:
    """The record of ``account_id`` (the server's root account), made on its first start."""
    if await store.get_entity_by_id(account_id) is None:
        try:
            await store.insert_entity(Entity(account_id, ACCOUNT, account_id, account_id, "/", now, {"keys": []}))
        except NameInUse:  # another node made it at the same moment
            pass


def setup(app: web.Application, keys: AccessKeys) -> None:
    """Keep ``keys`` in ``app[IDENTITY]`` and start it after the store and the bus (append this
    after the signaling plane's set-up, which opens the bus)."""
    app[IDENTITY] = keys

    async def identity_ctx(app: web.Application) -> AsyncIterator[None]:
        store = app[STORE]
        bus = app.get(BUS)
        await keys.attach(store, bus)
        authorizer = app.get(AUTHORIZER)
        if authorizer is not None:
            authorizer.attach(bus)
        await ensure_account(store, keys.root.account_id, app[CLOCK].now())
        yield
        if authorizer is not None:
            authorizer.detach()
        keys.detach()

    app.cleanup_ctx.append(identity_ctx)
