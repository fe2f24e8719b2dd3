"""What a request tells the policy evaluator about itself, and how condition keys and policy
variables read it.

A :class:`RequestContext` is built once per request by the caller (the request path knows the
principal, the action, the resource and the connection); the evaluator only reads it. Condition
key names are case-insensitive (``AWS:SourceIp`` is ``aws:sourceip``), so every lookup here is
keyed by the lower-cased name, resolved to a getter once when a policy is parsed.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

KeyValue = str | Sequence[str] | None
"""A condition key's value in a request: one string, several (a multivalued key such as
``aws:TagKeys``), or ``None`` when the request does not carry the key at all."""

_NO_TAGS: Mapping[str, str] = MappingProxyType({})
_NO_EXTRA: Mapping[str, str | Sequence[str]] = MappingProxyType({})


def _no_tags() -> Mapping[str, str]:
    return _NO_TAGS


def _no_extra() -> Mapping[str, str | Sequence[str]]:
    return _NO_EXTRA


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The facts of one request that policies can test.

    ``extra`` carries any other condition key (``aws:RequestedRegion``, ``aws:TokenIssueTime``,
    service keys …) under its lower-cased name; the named fields win over ``extra``.
    """

    action: str
    resource: str
    principal_arn: str
    account: str
    username: str | None
    userid: str
    source_ip: str | None
    secure_transport: bool
    current_time: float
    resource_tags: Mapping[str, str] = field(default_factory=_no_tags)
    request_tags: Mapping[str, str] = field(default_factory=_no_tags)
    tag_keys: tuple[str, ...] = ()
    extra: Mapping[str, str | Sequence[str]] = field(default_factory=_no_extra)


def iso_time(epoch: float) -> str:
    """``aws:CurrentTime`` as a string: ISO 8601 in UTC, whole seconds (what AWS substitutes for
    ``${aws:CurrentTime}``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def principal_type(principal_arn: str) -> str:
    """``aws:PrincipalType`` derived from the principal's ARN."""
    resource = principal_arn.split(":", 5)[-1]
    if resource == "root":
        return "Account"
    if resource.startswith("assumed-role/"):
        return "AssumedRole"
    if resource.startswith("federated-user/"):
        return "FederatedUser"
    return "User"


def _tag(tags: Mapping[str, str], name: str) -> str | None:
    """A tag's value; the key compared exactly first, then without case (IAM treats tag keys
    case-insensitively, and a policy may spell the key differently from the request)."""
    value = tags.get(name)
    if value is not None:
        return value
    folded = name.lower()
    for key, value in tags.items():
        if key.lower() == folded:
            return value
    return None


Getter = Callable[[RequestContext], KeyValue]

_GETTERS: dict[str, Getter] = {
    "aws:sourceip": lambda ctx: ctx.source_ip,
    "aws:currenttime": lambda ctx: iso_time(ctx.current_time),
    "aws:epochtime": lambda ctx: str(int(ctx.current_time)),
    "aws:securetransport": lambda ctx: "true" if ctx.secure_transport else "false",
    "aws:principalarn": lambda ctx: ctx.principal_arn,
    "aws:principalaccount": lambda ctx: ctx.account,
    "aws:username": lambda ctx: ctx.username,
    "aws:userid": lambda ctx: ctx.userid,
    "aws:principaltype": lambda ctx: principal_type(ctx.principal_arn),
    "aws:tagkeys": lambda ctx: ctx.tag_keys or None,
}

MULTIVALUED = frozenset({"aws:tagkeys"})
"""Keys whose request value is a set; they cannot serve as policy variables."""


def key_getter(key: str) -> Getter:
    """The function that reads condition key ``key`` (any case) from a request context.

    ``aws:ResourceTag/<k>`` and ``aws:RequestTag/<k>`` keep the tag key's own spelling; every
    other name not modelled by :class:`RequestContext` is looked up in ``extra``.
    """
    lowered = key.lower()
    getter = _GETTERS.get(lowered)
    if getter is not None:
        return getter
    for prefix, attribute in (("aws:resourcetag/", "resource_tags"), ("aws:requesttag/", "request_tags")):
        if lowered.startswith(prefix):
            name = key[len(prefix):]
            if attribute == "resource_tags":
                return lambda ctx: _tag(ctx.resource_tags, name)
            return lambda ctx: _tag(ctx.request_tags, name)

    def from_extra(ctx: RequestContext) -> KeyValue:
        value = ctx.extra.get(lowered)
        if value is None or isinstance(value, str):
            return value
        return value or None  # an empty set is an absent key (ForAllValues true, ForAnyValue false)

    return from_extra


IpAddress = tuple[int, int]
"""An IP address as (version, integer value)."""


def parse_ip(text: str) -> IpAddress | None:
    """``text`` as an IP address, or ``None`` if it is not one (strict dotted-quad IPv4, or
    IPv6). An IPv4-mapped IPv6 address (``::ffff:203.0.113.7``, what a dual-stack socket
    reports) is the IPv4 address it maps."""
    try:
        if ":" not in text:
            return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
        number = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):
        return None
    if number >> 32 == 0xFFFF:
        return 4, number & 0xFFFFFFFF
    return 6, number


class Request:
    """Evaluation-scoped view of one :class:`RequestContext`: the lower-cased action, and the
    values that are costly to derive (policy variables, the parsed source IP), each computed at
    most once per :func:`~signalite.identity.policy.decide` call and only if a policy asks."""

    __slots__ = ("_ip", "_ip_known", "_variables", "action", "ctx", "resource")

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx
        self.action = ctx.action.lower()
        self.resource = ctx.resource
        self._variables: dict[str, str | None] = {}
        self._ip: IpAddress | None = None
        self._ip_known = False

    def variable(self, name: str) -> str | None:
        """The value of policy variable ``${name}`` (``name`` lower-cased), or ``None`` when the
        request has none (a multivalued key never resolves)."""
        cache = self._variables
        if name in cache:
            return cache[name]
        value: str | None = None
        if name not in MULTIVALUED:
            raw = key_getter(name)(self.ctx)
            value = raw if isinstance(raw, str) else None
        cache[name] = value
        return value

    def source_ip(self) -> IpAddress | None:
        if not self._ip_known:
            text = self.ctx.source_ip
            self._ip = parse_ip(text) if text is not None else None
            self._ip_known = True
        return self._ip
