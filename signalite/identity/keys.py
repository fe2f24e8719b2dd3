"""Signing keys: from an access key id (and session token) to the secret and the caller behind it.

The edge asks :meth:`AccessKeys.resolve` before it verifies a signature (REST, admin and the WSS
handshake alike). Four kinds of key answer:

* the server's root key (``SIGNALITE_ACCESS_KEY_ID``), from memory;
* long-term keys in the store — IAM users' keys and the root keys of accounts made with
  ``signalite admin create-account`` — whose secrets are kept sealed (:mod:`.crypto`); only an
  ``Active`` one signs: an ``Inactive`` or deleted one answers ``InvalidClientTokenId``;
* temporary keys (``ASIA…``), only with their session token, which carries them (:mod:`.tokens`):
  after its expiry ``ExpiredTokenException``; an altered or foreign token, or a token sent with a
  long-term key, the service's "invalid token" error (``UnrecognizedClientException`` on the
  JSON services, ``InvalidClientTokenId`` on IAM and STS, as AWS answers).

Long-term keys from the store are cached per node for at most ``--identity-cache-seconds``
(default :data:`CACHE_SECONDS`). The cache is
safe on the node that changes a key: an update or delete drops the key from it before the
operation answers, and a lookup that raced with the change does not put the old record back (an
invalidation counter). Other nodes hear of the change over the bus (one control message on
:data:`TOPIC`) and drop it as soon as it arrives; if that message were lost (the cluster bus
drops only after a long outage), the entry would still expire within that bound.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..aws.keys import RootCredentials
from ..aws.principal import LONG_TERM, ROOT, USER, Caller
from ..aws.sigv4 import AuthError, Credential, SigningKey
from ..bus.base import CTL, Bus, Control, Message
from ..clock import Clock
from ..config import ConfigError
from ..store import Entity, NameInUse, Store
from . import names, tokens
from .crypto import SECRETS, ServerKey, Unsealed

log = logging.getLogger("signalite.identity")

KIND = "access-key"
ACTIVE, INACTIVE, DELETED = "Active", "Inactive", "Deleted"
CACHE_SECONDS = 5.0
"""Longest a node trusts a cached long-term key record without reading the store again."""
TOPIC = "signalite/identity"
"""The bus topic on which nodes tell each other that a key changed."""
KEY_CHANGED = "key"

_INVALID = "The security token included in the request is invalid."
_EXPIRED = "The security token included in the request is expired"
_QUERY_SERVICES = frozenset(("iam", "sts"))


def invalid_token(service: str) -> AuthError:
    """AWS's answer to a key or token it does not recognise, in the words of ``service``."""
    code = "InvalidClientTokenId" if service in _QUERY_SERVICES else "UnrecognizedClientException"
    return AuthError(code, _INVALID, 403)


def _not_active() -> AuthError:
    return AuthError("InvalidClientTokenId", _INVALID, 403)


@dataclass(frozen=True)
class _Cached:
    until: float
    key: SigningKey | None
    """None: the key exists but may not sign (Inactive, or deleted)."""


def _user(caller: Caller) -> str:
    """``Principal.user``: ``root`` for a root, the ARN otherwise, so that an IAM user named
    ``root`` can never pass for one."""
    return "root" if caller.kind == ROOT else caller.arn


def key_caller(entity: Entity) -> Caller:
    """Who a long-term key record signs for: its user, or its account's root."""
    data = entity.data
    if data.get("user") is None:
        return Caller.root(entity.account)
    arn, user_id = data["arn"], data["user_id"]
    return Caller(entity.account, USER, data["user"], arn, user_id, LONG_TERM, arn, user_id)


class AccessKeys:
    """Resolves signing keys for the edge, seals stored secrets, and keeps the key cache honest."""

    def __init__(self, root: RootCredentials, server_key: ServerKey, clock: Clock,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        self.root = root
        self.server_key = server_key
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._root_key = SigningKey(root.secret_access_key, root.account_id, "root", Caller.root(root.account_id))
        self._cache: dict[str, _Cached] = {}
        self._tokens: dict[str, tuple[tokens.Temporary, SigningKey]] = {}
        self._epoch = 0
        self._store: Store | None = None
        self._bus: Bus | None = None
        self._fingerprint_recorded = False

    # --- lifecycle ---------------------------------------------------------------------------
    async def attach(self, store: Store, bus: Bus | None) -> None:
        """Start resolving from ``store``, and hear (and tell) other nodes of changes on ``bus``.
        Refuses (:class:`ConfigError`) a store whose secrets were sealed under another key."""
        self._fingerprint_recorded = await check_fingerprint(store, self.server_key)
        self._store = store
        self._bus = bus
        if bus is not None:
            bus.subscribe(TOPIC, self._on_bus)

    def detach(self) -> None:
        if self._bus is not None:
            self._bus.unsubscribe(TOPIC)
        self._store = self._bus = None

    def _on_bus(self, topic: str, message: Message) -> None:
        if isinstance(message, Control) and message.verb == KEY_CHANGED:
            self._forget(message.argument)

    # --- long-term keys ----------------------------------------------------------------------
    async def create(self, store: Store, account: str, user: Entity | None, now: float) -> tuple[Entity, str]:
        """A new Active long-term key of ``user`` (None: of ``account``'s root), stored with its
        secret sealed; the record and the secret (to show once, and never log)."""
        if not self._fingerprint_recorded:
            await record_fingerprint(store, self.server_key)
            self._fingerprint_recorded = True
        key_id, secret = names.access_key_id(), names.secret_access_key()
        data = {"status": ACTIVE, "secret": self.seal(key_id, secret),
                "user": user.name if user else None, "user_id": user.id if user else None,
                "arn": user.data["arn"] if user else None}
        entity = Entity(account, KIND, key_id, key_id, "/", now, data)
        await store.insert_entity(entity)
        return entity, secret

    # --- secrets -------------------------------------------------------------------------------
    def seal(self, key_id: str, secret: str) -> str:
        return self.server_key.seal(SECRETS, secret.encode("utf-8"), key_id)

    def open(self, key_id: str, sealed: str) -> str | None:
        try:
            return self.server_key.open(SECRETS, sealed, key_id).decode("utf-8")
        except Unsealed:
            log.error("the secret of access key %s does not open under this server's key "
                      "(SIGNALITE_SERVER_KEY, or the root secret it is derived from, changed?)", key_id)
            return None

    # --- changes -------------------------------------------------------------------------------
    def changed(self, key_id: str) -> None:
        """A key's record changed (status, deletion): forget it here at once, and on every node."""
        self._forget(key_id)
        if self._bus is not None:
            self._bus.publish(TOPIC, Control(CTL, KEY_CHANGED, key_id))

    def _forget(self, key_id: str) -> None:
        self._epoch += 1
        self._cache.pop(key_id, None)

    # --- resolution ----------------------------------------------------------------------------
    async def resolve(self, cred: Credential, service: str) -> SigningKey:
        """The signing key of ``cred``, or the :class:`AuthError` AWS answers for it."""
        key_id, token = cred.access_key_id, cred.session_token
        if key_id == self.root.access_key_id:
            if token is not None:
                raise invalid_token(service)
            return self._root_key
        if key_id.startswith(names.TEMPORARY_KEY):
            return self._temporary(key_id, token, service)
        key = await self._long_term(key_id, service)
        if token is not None:
            raise invalid_token(service)
        return key

    def _temporary(self, key_id: str, token: str | None, service: str) -> SigningKey:
        if not token:
            raise invalid_token(service)
        opened = self._tokens.get(token)
        if opened is None:
            try:
                temporary = tokens.open_token(self.server_key, token)
            except tokens.InvalidToken:
                raise invalid_token(service) from None
            caller = temporary.caller
            opened = (temporary, SigningKey(temporary.secret_access_key, caller.account_id, _user(caller), caller))
            if len(self._tokens) >= 1024:
                self._tokens.clear()
            self._tokens[token] = opened  # opened once: a token is immutable, only its expiry is checked each time
        temporary, key = opened
        if temporary.access_key_id != key_id:
            raise invalid_token(service)
        if self.clock.now() >= temporary.expires:
            raise AuthError("ExpiredTokenException", _EXPIRED, 403)
        return key

    async def _long_term(self, key_id: str, service: str) -> SigningKey:
        now = self.clock.now()
        cached = self._cache.get(key_id)
        if cached is None or cached.until <= now:
            if self._store is None:
                raise invalid_token(service)
            epoch = self._epoch
            entity = await self._store.get_entity_by_id(key_id)
            if entity is None or entity.kind != KIND:
                raise invalid_token(service)
            cached = _Cached(now + self.cache_seconds, self._signing_key(entity))
            if epoch == self._epoch:  # no change was announced while the store answered
                if len(self._cache) >= 4096:
                    self._cache.clear()
                self._cache[key_id] = cached
        if cached.key is None:
            raise _not_active()
        return cached.key

    def _signing_key(self, entity: Entity) -> SigningKey | None:
        data: dict[str, Any] = entity.data
        if data.get("status") != ACTIVE:
            return None
        secret = self.open(entity.id, data.get("secret", ""))
        if secret is None:
            return None
        caller = key_caller(entity)
        return SigningKey(secret, entity.account, _user(caller), caller)


FINGERPRINT_ID = "signalite:server-key"


async def check_fingerprint(store: Store, key: ServerKey) -> bool:
    """Whether ``store`` already records ``key``'s fingerprint; :class:`ConfigError` if it records
    another key's (every stored secret would fail to open: better not to start)."""
    entity = await store.get_entity_by_id(FINGERPRINT_ID)
    if entity is None:
        return False
    if entity.data.get("fingerprint") != key.fingerprint:
        raise ConfigError(
            "signalite: the identity secrets in this store were sealed under another server key: start with "
            "the SIGNALITE_SERVER_KEY (or, without it, the root secret access key) they were created with "
            "(see docs/security.md, Identity)")
    return True


async def record_fingerprint(store: Store, key: ServerKey) -> None:
    """Record ``key``'s fingerprint before the first secret is sealed under it (once per store)."""
    try:
        await store.insert_entity(Entity("", "server-key", "fingerprint", FINGERPRINT_ID, "/", 0.0,
                                         {"fingerprint": key.fingerprint}))
    except NameInUse:  # another node (or an earlier start) recorded it first
        await check_fingerprint(store, key)
