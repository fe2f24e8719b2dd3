"""IAM policy evaluation, pure and sans-I/O: parse a policy document once (validated as IAM
validates it, wildcards compiled), then decide requests against it in microseconds.

Evaluation follows AWS's order for one account: an explicit ``Deny`` in any applicable policy
wins; otherwise the request needs an ``Allow`` from an identity-based policy and, when the
credentials carry session policies (AssumeRole/GetFederationToken ``Policy``/``PolicyArns``),
an ``Allow`` from those too (the intersection); anything else is an implicit deny. A role's
trust policy is a resource-based policy evaluated for ``sts:AssumeRole`` (:func:`decide_trust`,
:func:`decide_assume_role`). The account root is never evaluated here: the caller allows it.

A statement applies when its action, resource (or principal, in a trust policy) and every
condition match. A statement that uses a policy variable the request cannot resolve, and gives
it no default (``${aws:username}`` for a role session), does not apply at all — it neither
allows nor denies — as AWS documents ("causes the statement to be invalid").
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from signalite.identity.policy_conditions import Condition
from signalite.identity.policy_context import Request, RequestContext
from signalite.identity.policy_glob import Lit, Matcher, Mode, Template, compile_pattern, match_dynamic
from signalite.identity.policy_grammar import Kind, MalformedPolicy, RawStatement, read_document

__all__ = [
    "Decision",
    "MalformedPolicy",
    "Outcome",
    "Policy",
    "RequestContext",
    "Statement",
    "decide",
    "decide_assume_role",
    "decide_trust",
    "parse_policy",
]

Source = Literal["identity", "session", "trust"]
Grant = Literal["direct", "role", "account"]


class Outcome(enum.Enum):
    ALLOW = "Allow"
    EXPLICIT_DENY = "ExplicitDeny"
    IMPLICIT_DENY = "ImplicitDeny"


@dataclass(frozen=True, slots=True)
class _Names:
    """Action patterns (lower-cased: actions compare without case): the literal ones in a set,
    the wildcard ones in one compiled matcher each."""

    everything: bool
    exact: frozenset[str]
    patterns: tuple[Matcher, ...]

    @classmethod
    def build(cls, actions: Sequence[str]) -> _Names:
        lowered = [a.lower() for a in actions]
        wild = [a for a in lowered if "*" in a or "?" in a]
        return cls("*" in lowered, frozenset(a for a in lowered if a not in wild),
                   tuple(compile_pattern([Lit(a)], Mode.GLOB) for a in wild if a != "*"))

    def hit(self, action: str) -> bool:
        if self.everything or action in self.exact:
            return True
        return any(match(action) is not None for match in self.patterns)


@dataclass(frozen=True, slots=True)
class _Resources:
    """Resource patterns (case-sensitive): literal ARNs in a set, static wildcard patterns
    compiled, patterns with policy variables kept as templates and matched per request."""

    everything: bool
    exact: frozenset[str]
    patterns: tuple[Matcher, ...]
    templates: tuple[Template, ...]

    @classmethod
    def build(cls, resources: Sequence[str], *, variables: bool) -> _Resources:
        exact: set[str] = set()
        patterns: list[Matcher] = []
        templates: list[Template] = []
        for resource in resources:
            template = Template.parse(resource, variables=variables)
            if not template.static:
                templates.append(template)
                continue
            literals = [p for p in template.parts if isinstance(p, Lit)]
            if template.has_wildcards:
                patterns.append(compile_pattern(literals, Mode.RESOURCE))
            else:
                exact.add("".join(p.text for p in literals))
        return cls("*" in resources, frozenset(exact), tuple(patterns), tuple(templates))

    def hit(self, resource: str, request: Request) -> bool:
        if self.everything or resource in self.exact:
            return True
        if any(match(resource) is not None for match in self.patterns):
            return True
        for template in self.templates:
            literals = template.literals(request.variable)
            if literals is not None and match_dynamic(literals, Mode.RESOURCE, resource):
                return True
        return False


@dataclass(frozen=True, slots=True)
class _Principals:
    """The ``AWS`` principals a trust statement names. ``Service``, ``Federated`` and
    ``CanonicalUser`` principals are kept in the statement but never match a Signalite
    principal."""

    everyone: bool
    accounts: frozenset[str]
    arns: frozenset[str]
    roles: frozenset[tuple[str, str]]  # (account, role name): every session of that role

    @classmethod
    def build(cls, principals: Sequence[tuple[str, Sequence[str]]]) -> _Principals:
        everyone = False
        accounts: set[str] = set()
        arns: set[str] = set()
        roles: set[tuple[str, str]] = set()
        for kind, names in principals:
            if kind != "AWS":
                continue
            for name in names:
                if name == "*":
                    everyone = True
                elif name.isdigit():
                    accounts.add(name)
                else:
                    _, _, service, _, account, resource = name.split(":", 5)
                    if service == "iam" and resource == "root":
                        accounts.add(account)
                        continue
                    arns.add(name)
                    if service == "iam" and resource.startswith("role/"):
                        roles.add((account, resource.rsplit("/", 1)[-1]))
        return cls(everyone, frozenset(accounts), frozenset(arns), frozenset(roles))

    def levels(self, ctx: RequestContext) -> tuple[bool, bool, bool]:
        """Whether the statement names (the account, the principal itself, the role behind a
        role session — true when there is no such role)."""
        if self.everyone:
            return True, True, True
        role = True
        resource = ctx.principal_arn.split(":", 5)[-1]
        if resource.startswith("assumed-role/"):
            role = (ctx.account, resource.split("/", 2)[1]) in self.roles
        elif resource == "root":
            return ctx.account in self.accounts, ctx.account in self.accounts, True
        return ctx.account in self.accounts, ctx.principal_arn in self.arns, role

    def match(self, ctx: RequestContext) -> tuple[bool, Grant]:
        """Whether the statement's Principal covers this principal, and how: ``direct`` (``*``
        or the principal's own ARN: the session or user itself), ``role`` (the role behind a
        role session) or ``account`` (every principal of an account)."""
        if self.everyone:
            return True, "direct"
        account, itself, role = self.levels(ctx)
        if itself:
            return True, "direct"
        if role and ctx.principal_arn.split(":", 5)[-1].startswith("assumed-role/"):
            return True, "role"
        return account, "account"


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a parsed policy, with its matchers compiled."""

    sid: str | None
    effect: str
    policy_name: str
    index: int = 0
    actions: tuple[str, ...] = ()
    not_action: bool = False
    resources: tuple[str, ...] | None = None
    not_resource: bool = False
    principals: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    not_principal: bool = False
    conditions: tuple[Condition, ...] = field(default=(), compare=False)
    _actions: _Names = field(default=_Names(False, frozenset(), ()), repr=False, compare=False)
    _resources: _Resources | None = field(default=None, repr=False, compare=False)
    _principals: _Principals | None = field(default=None, repr=False, compare=False)
    _needs: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def _compile(cls, raw: RawStatement, policy_name: str, *, variables: bool) -> Statement:
        needs: set[str] = set()
        resources = None
        if raw.resources is not None:
            resources = _Resources.build(raw.resources, variables=variables)
            for template in resources.templates:
                needs |= template.variables
        for condition in raw.conditions:
            needs |= condition.variables
        return cls(raw.sid, raw.effect, policy_name, raw.index, raw.actions, raw.not_action, raw.resources,
                   raw.not_resource, raw.principals, raw.not_principal, raw.conditions, _Names.build(raw.actions),
                   resources, _Principals.build(raw.principals) if raw.principals is not None else None,
                   tuple(sorted(needs)))

    @property
    def is_deny(self) -> bool:
        return self.effect == "Deny"

    def _applies(self, request: Request) -> bool:
        """Action, resource and conditions (not the principal) all match ``request``."""
        if self._actions.hit(request.action) is self.not_action:
            return False
        resources = self._resources
        if resources is not None and resources.hit(request.ctx.resource, request) is self.not_resource:
            return False
        for name in self._needs:
            if request.variable(name) is None:
                return False
        for condition in self.conditions:
            if not condition.holds(request):
                return False
        return True

    def _principal_match(self, ctx: RequestContext) -> tuple[bool, Grant]:
        """Whether Principal/NotPrincipal covers the caller of a trust statement, and how."""
        principals = self._principals
        if principals is None:
            return False, "account"
        if self.not_principal:
            # excluded only when every level of the caller (account, itself, its role) is named
            return not all(principals.levels(ctx)), "account"
        return principals.match(ctx)


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed, validated, compiled policy document."""

    name: str
    statements: tuple[Statement, ...]
    document: str
    kind: Kind = "identity"
    version: str | None = None
    _allows: tuple[Statement, ...] = field(default=(), repr=False, compare=False)
    _denies: tuple[Statement, ...] = field(default=(), repr=False, compare=False)


def parse_policy(text: str, *, kind: Kind = "identity", name: str = "", managed: bool = False) -> Policy:
    """Validate ``text`` as IAM does for a policy of ``kind`` and compile it.

    ``identity``: PutUserPolicy/PutRolePolicy/CreatePolicy documents (no Principal);
    ``trust``: a role's AssumeRolePolicyDocument (Principal required, no Resource, only
    ``sts:AssumeRole``-family actions); ``session``: STS session policies. ``managed`` applies
    CreatePolicy's extra rule that Version must be 2012-10-17. ``document`` is the canonical
    JSON (compact, sorted keys) for storage and comparison. Raises :class:`MalformedPolicy`.
    """
    doc = read_document(text, kind, managed=managed)
    statements = tuple(Statement._compile(raw, name, variables=doc.variables) for raw in doc.statements)
    return Policy(name, statements, doc.canonical, kind, doc.version,
                  tuple(s for s in statements if not s.is_deny), tuple(s for s in statements if s.is_deny))


_WHERE = {"identity": "an identity-based policy", "session": "a session policy", "trust": "a resource-based policy"}
_NONE_ALLOWS = {"identity": "no identity-based policy", "session": "no session policy"}


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome, the statement that decided it (``None`` for an implicit deny), and which
    policies decided: ``identity``, ``session`` or ``trust``."""

    outcome: Outcome
    statement: Statement | None
    source: Source = "identity"

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    def message(self, principal_arn: str, action: str, resource: str) -> str:
        """AWS's AccessDenied wording for this decision."""
        head = f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
        if self.outcome is Outcome.EXPLICIT_DENY:
            return f"{head} with an explicit deny in {_WHERE[self.source]}"
        if self.outcome is Outcome.IMPLICIT_DENY:
            if self.source == "trust":
                return head  # AssumeRole refused by the trust policy: AWS says no more
            return f"{head} because {_NONE_ALLOWS[self.source]} allows the {action} action"
        return f"User: {principal_arn} is authorized to perform: {action} on resource: {resource}"


_IMPLICIT: dict[Source, Decision] = {
    "identity": Decision(Outcome.IMPLICIT_DENY, None, "identity"),
    "session": Decision(Outcome.IMPLICIT_DENY, None, "session"),
    "trust": Decision(Outcome.IMPLICIT_DENY, None, "trust"),
}


def _explicit_deny(request: Request, identity: Sequence[Policy], session: Sequence[Policy] | None) -> Decision | None:
    for policy in identity:
        for statement in policy._denies:
            if statement._applies(request):
                return Decision(Outcome.EXPLICIT_DENY, statement, "identity")
    if session is not None:
        for policy in session:
            for statement in policy._denies:
                if statement._applies(request):
                    return Decision(Outcome.EXPLICIT_DENY, statement, "session")
    return None


def _first_allow(request: Request, policies: Sequence[Policy]) -> Statement | None:
    for policy in policies:
        for statement in policy._allows:
            if statement._applies(request):
                return statement
    return None


def _allow(request: Request, identity: Sequence[Policy], session: Sequence[Policy] | None) -> Decision:
    allowing = _first_allow(request, identity)
    if allowing is None:
        return _IMPLICIT["identity"]
    if session is not None and _first_allow(request, session) is None:
        return _IMPLICIT["session"]
    return Decision(Outcome.ALLOW, allowing, "identity")


def decide(ctx: RequestContext, identity: Sequence[Policy], session: Sequence[Policy] | None = None) -> Decision:
    """Evaluate a request against the principal's identity-based policies and, for temporary
    credentials that carry them, its session policies (``None``: no session policies; an empty
    list: session policies that allow nothing, as for GetFederationToken without ``Policy``)."""
    request = Request(ctx)
    denied = _explicit_deny(request, identity, session)
    if denied is not None:
        return denied
    return _allow(request, identity, session)


def _trust(request: Request, trust: Policy) -> tuple[Decision, Grant]:
    ctx = request.ctx
    for statement in trust._denies:
        if statement._principal_match(ctx)[0] and statement._applies(request):
            return Decision(Outcome.EXPLICIT_DENY, statement, "trust"), "account"
    for statement in trust._allows:
        covered, grant = statement._principal_match(ctx)
        if covered and statement._applies(request):
            return Decision(Outcome.ALLOW, statement, "trust"), grant
    return _IMPLICIT["trust"], "account"


def decide_trust(ctx: RequestContext, trust: Policy) -> Decision:
    """Evaluate a role's trust policy alone (a resource-based policy): does it let this
    principal perform ``ctx.action`` (``sts:AssumeRole``) under its conditions?

    ``"AWS"`` principals match as AWS matches them: ``"*"`` everyone; an account id or
    ``arn:aws:iam::ACCOUNT:root`` every principal of that account; a user, federated-user or
    role-session ARN that principal; a role ARN every session of that role.
    """
    return _trust(Request(ctx), trust)[0]


def decide_assume_role(ctx: RequestContext, identity: Sequence[Policy], trust: Policy,
                       session: Sequence[Policy] | None = None) -> Decision:
    """The whole AssumeRole decision (``ctx.resource`` is the role's ARN).

    An explicit deny in the caller's policies or in the trust policy wins, and the trust policy
    must allow. Then, as AWS evaluates a resource-based policy in the role's own account: a
    statement naming the caller itself (or ``*``) is enough; one naming the caller's role (for
    a role session) is still limited by the caller's session policies; one that only names the
    caller's account — and any cross-account request — needs the caller's identity-based (and
    session) policies to allow ``sts:AssumeRole`` on the role as well.
    """
    request = Request(ctx)
    denied = _explicit_deny(request, identity, session)
    if denied is not None:
        return denied
    decision, grant = _trust(request, trust)
    if decision.outcome is not Outcome.ALLOW:
        return decision
    parts = ctx.resource.split(":", 5)
    if len(parts) == 6 and parts[4] == ctx.account:
        if grant == "direct":
            return decision
        if grant == "role":
            if session is not None and _first_allow(request, session) is None:
                return _IMPLICIT["session"]
            return decision
    return _allow(request, identity, session)
