"""Authorization: may this principal perform this action on this resource? The step after
authentication, at every entry point (REST operations of every model, the WSS handshake).

Roots are allowed everything (AWS's own limits on roots are the operations' business, e.g. no
AssumeRole). Everyone else is evaluated as AWS does (:func:`~signalite.identity.policy.decide`):
the identity-based policies of the IAM identity behind the credentials (a user's, or a role's for
a role session, or those of the user that called GetFederationToken), intersected with the
session policies of temporary credentials.

Compiled policies are cached per identity, so that a request does not read and parse its
principal's policies every time. The cache is kept right the way the key cache of
:mod:`.keys` and the record cache of :mod:`signalite.store.cache` are: any IAM change (a policy
put or deleted, attached or detached, a new default version, a key's status, a user or role
deleted) empties it on the node that made the change before the operation answers, and on every
other node as soon as the bus delivers one control message on :data:`TOPIC`. A read that raced
with an invalidation does not store what it read (a generation counter); while this node's bus
feed is down nothing is cached, and when it comes back (a new feed epoch) the cache starts over.
The expiry (``--identity-cache-seconds``, default :data:`CACHE_SECONDS`) only bounds a message
that was lost anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from aiohttp import web

from ..aws.errors import ServiceError
from ..aws.principal import FEDERATED_USER, FEDERATION_TOKEN, SESSION_TOKEN, USER, Principal
from ..bus.base import CTL, Bus, Control, Message
from ..clock import Clock
from ..store import Store
from .policy import Decision, Policy, RequestContext, decide, parse_policy

CACHE_SECONDS = 5.0
"""Longest a node keeps an identity's compiled policies without hearing of a change (the backstop
of the bus's invalidations; ``Settings.identity_cache_seconds``)."""
TOPIC = "signalite/identity/policies"
"""The bus topic on which nodes tell each other that IAM changed (their cached policies are stale)."""
CHANGED = "changed"
ALLOW_ALL = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
"""What a root's identity policies amount to (a federated user minted by a root gets this,
narrowed by its session policy)."""


DECISIONS_PER_GRANTS = 1024
"""Decisions remembered per cached policy set (beyond it they start over)."""
_TIME_KEYS = ("currenttime", "epochtime")
"""Condition keys (or policy variables) whose value changes with the clock alone."""

_DecisionKey = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Grants:
    identity: tuple[Policy, ...]
    session: tuple[Policy, ...] | None
    uses_resource_tags: bool
    """Whether any of the policies reads aws:ResourceTag (only then are the resource's tags read)."""
    uses_time: bool = False
    """Whether any of the policies reads aws:CurrentTime or aws:EpochTime: then no decision is
    remembered, because the same request may be decided otherwise a second later."""
    decisions: dict[_DecisionKey, Decision] = field(default_factory=dict, compare=False)
    """Decisions already taken under these policies, by everything a decision depends on (the
    evaluation is a pure function of the request context and the policies): a principal that
    repeats a request — a viewer reconnecting, a backend polling an endpoint — is decided by one
    dict lookup. Lives and dies with this cache entry, so every invalidation drops it too."""


class Authorizer:
    def __init__(self, store: Store, clock: Clock, cache_seconds: float = CACHE_SECONDS) -> None:
        self.store = store
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str | None, tuple[str, ...]], tuple[float, Grants]] = {}
        self._generation = 0
        self._bus: Bus | None = None
        self._epoch: int | None = 0

    # --- the bus: hearing and telling of changes ----------------------------------------------
    def attach(self, bus: Bus | None) -> None:
        """Hear of IAM changes made on other nodes (and tell them of this node's) over ``bus``."""
        self._bus = bus
        if bus is not None:
            self._epoch = None
            bus.subscribe(TOPIC, self._on_bus)

    def detach(self) -> None:
        if self._bus is not None:
            self._bus.unsubscribe(TOPIC)
        self._bus = None

    def _on_bus(self, topic: str, message: Message) -> None:
        if isinstance(message, Control) and message.verb == CHANGED:
            self.forget()

    def changed(self) -> None:
        """An IAM change on this node: forget every cached policy set here at once, and on every
        node of the cluster when the bus delivers the news."""
        self.forget()
        if self._bus is not None:
            self._bus.publish(TOPIC, Control(CTL, CHANGED, ""))

    def forget(self) -> None:
        """Every cached policy set is re-read on next use."""
        self._generation += 1
        self._cache.clear()

    def _usable(self) -> bool:
        """Whether the cache may be used now: not while the bus feed may be missing
        invalidations, and emptied when it comes back after it may have missed some."""
        if self._bus is None:
            return True
        epoch = self._bus.feed_epoch(TOPIC)
        if epoch is None:
            return False
        if epoch != self._epoch:
            self.forget()
            self._epoch = epoch
        return True

    # --- grants ------------------------------------------------------------------------------
    def cached(self, principal: Principal) -> Grants | None:
        """The principal's policies if this node holds them (and may trust them) now: the
        request path's fast case, without a coroutine."""
        if not self._usable():
            return None
        who = principal.who
        hit = self._cache.get((who.identity_arn, who.session_policy, who.session_policy_arns))
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        return None

    async def grants(self, principal: Principal) -> Grants:
        """The principal's policies, compiled: from the cache, else read and cached."""
        hit = self.cached(principal)
        if hit is not None:
            return hit
        who = principal.who
        key = (who.identity_arn, who.session_policy, who.session_policy_arns)
        now = time.monotonic()
        usable = self._usable()
        generation = self._generation
        identity = await self._identity_policies(principal)
        session = await self._session_policies(principal)
        texts = [p.document.lower() for p in (*identity, *(session or ()))]
        grants = Grants(identity, session, any("resourcetag" in t for t in texts),
                        any(k in t for t in texts for k in _TIME_KEYS))
        if usable and generation == self._generation and self._usable():  # no change heard meanwhile
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self.cache_seconds, grants)
        return grants

    async def _identity_policies(self, principal: Principal) -> tuple[Policy, ...]:
        who = principal.who
        arn = who.identity_arn
        if arn.endswith(":root"):
            return (parse_policy(ALLOW_ALL, name="root"),)
        kind = "role" if ":role/" in arn else USER
        name = arn.rsplit("/", 1)[-1]
        entity = await self.store.get_entity(who.account_id, kind, name)
        if entity is None:
            return ()
        out = [parse_policy(p["document"], name=p["name"])
               for p in entity.data.get("policies", {}).values()]
        for policy_arn in entity.data.get("attached", []):
            out.extend(await self._managed(who.account_id, policy_arn))
        return tuple(out)

    async def _managed(self, account: str, arn: str) -> list[Policy]:
        name = arn.rsplit("/", 1)[-1]
        entity = await self.store.get_entity(account, "policy", name)
        if entity is None or entity.data.get("arn") != arn:
            return []
        version = entity.data["versions"][entity.data["default"]]
        return [parse_policy(version["document"], name=name)]

    async def _session_policies(self, principal: Principal) -> tuple[Policy, ...] | None:
        who = principal.who
        if not who.temporary or who.source == SESSION_TOKEN:
            return None  # long-term keys, and GetSessionToken's credentials: the identity's own rights
        if who.session_policy is None and not who.session_policy_arns:
            # AWS: a federated user without a session policy has no permissions; a role session
            # without one has its role's.
            return () if who.kind == FEDERATED_USER else None
        out: list[Policy] = []
        if who.session_policy is not None:
            out.append(parse_policy(who.session_policy, kind="session", name="session policy"))
        for arn in who.session_policy_arns:
            out.extend(await self._managed(who.account_id, arn))
        return tuple(out)

    async def decide(self, principal: Principal, action: str, resource: str, *,
                     source_ip: str | None, secure: bool,
                     resource_tags: Mapping[str, str] | None = None,
                     request_tags: Mapping[str, str] | None = None) -> Decision | None:
        """None for a root (allowed everything), else the policy decision."""
        if principal.is_root:
            return None
        return self.evaluate(principal, await self.grants(principal), action, resource, source_ip=source_ip,
                             secure=secure, resource_tags=resource_tags, request_tags=request_tags)

    def evaluate(self, principal: Principal, grants: Grants, action: str, resource: str, *,
                 source_ip: str | None, secure: bool, resource_tags: Mapping[str, str] | None = None,
                 request_tags: Mapping[str, str] | None = None) -> Decision:
        """The decision under ``grants`` (the principal's): remembered, or evaluated and remembered."""
        who = principal.who
        tags = dict(request_tags or {})
        key: _DecisionKey | None = None
        if not grants.uses_time:
            key = (action, resource, who.arn, principal.username, who.user_id, source_ip, secure,
                   tuple(resource_tags.items()) if resource_tags else (), tuple(tags.items()))
            known = grants.decisions.get(key)
            if known is not None:
                return known
        context = RequestContext(
            action=action, resource=resource, principal_arn=who.arn, account=who.account_id,
            username=principal.username, userid=who.user_id, source_ip=source_ip, secure_transport=secure,
            current_time=self.clock.now(), resource_tags=dict(resource_tags or {}), request_tags=tags,
            tag_keys=tuple(tags))
        decision = decide(context, grants.identity, grants.session)
        if key is not None:
            if len(grants.decisions) >= DECISIONS_PER_GRANTS:
                grants.decisions.clear()
            grants.decisions[key] = decision
        return decision

    async def check(self, principal: Principal, action: str, resource: str, *, code: str,
                    source_ip: str | None, secure: bool, resource_tags: Mapping[str, str] | None = None,
                    request_tags: Mapping[str, str] | None = None) -> None:
        """Raise ``code`` (the operation's modeled authorization error) unless allowed."""
        grants = None
        if not principal.is_root:
            grants = self.cached(principal) or await self.grants(principal)
        self.enforce(principal, grants, action, resource, code=code, source_ip=source_ip, secure=secure,
                     resource_tags=resource_tags, request_tags=request_tags)

    def enforce(self, principal: Principal, grants: Grants | None, action: str, resource: str, *, code: str,
                source_ip: str | None, secure: bool, resource_tags: Mapping[str, str] | None = None,
                request_tags: Mapping[str, str] | None = None) -> None:
        """:meth:`check` with the principal's ``grants`` in hand (None only for a root)."""
        who = principal.who
        if action.startswith("iam:") and who.source in (SESSION_TOKEN, FEDERATION_TOKEN):
            # AWS: credentials from GetSessionToken (without MFA) and GetFederationToken cannot
            # call IAM at all, whatever their policies say.
            raise ServiceError(code, f"User: {who.arn} is not authorized to perform: {action} on resource: "
                                     f"{resource} with temporary credentials from "
                                     f"{'GetFederationToken' if who.source == FEDERATION_TOKEN else 'GetSessionToken'}")
        if principal.is_root:
            return
        assert grants is not None, "a principal other than a root is enforced with its grants"
        decision = self.evaluate(principal, grants, action, resource, source_ip=source_ip, secure=secure,
                                 resource_tags=resource_tags, request_tags=request_tags)
        if not decision.allowed:
            raise ServiceError(code, decision.message(who.arn, action, resource))


AUTHORIZER = web.AppKey("authorizer", Authorizer)


def request_tags(params: Mapping[str, Any]) -> dict[str, str]:
    """``aws:RequestTag``: the tags a create or tag request carries (list or map form)."""
    tags = params.get("Tags")
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    if isinstance(tags, list):
        return {str(t.get("Key")): str(t.get("Value")) for t in tags if isinstance(t, dict)}
    return {}
