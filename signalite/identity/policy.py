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
from signalite.identity.policy_glob import DynamicPattern, Lit, Matcher, Mode, Template, compile_any, literal_prefix
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
    """Action patterns, lower-cased (actions compare without case): literal names in a set,
    ``prefix*`` patterns as a ``startswith`` tuple, any other wildcard pattern in one compiled
    alternation."""

    everything: bool
    exact: frozenset[str]
    prefixes: tuple[str, ...]
    pattern: Matcher | None

    @classmethod
    def build(cls, actions: Sequence[str]) -> _Names:
        exact: set[str] = set()
        prefixes: list[str] = []
        patterns: list[list[Lit]] = []
        for action in actions:
            parts = [Lit(action.lower())]
            if "*" not in action and "?" not in action:
                exact.add(action.lower())
            elif (prefix := literal_prefix(parts)) is not None:
                prefixes.append(prefix)
            else:
                patterns.append(parts)
        return cls("" in prefixes, frozenset(exact), tuple(prefixes), compile_any(patterns, Mode.GLOB))

    def hit(self, action: str) -> bool:
        if self.everything or action in self.exact or action.startswith(self.prefixes):
            return True
        pattern = self.pattern
        return pattern is not None and pattern(action) is not None


@dataclass(frozen=True, slots=True)
class _Resources:
    """Resource patterns (case-sensitive): literal ARNs in a set, ``prefix*`` patterns as a
    ``startswith`` tuple, other static wildcard patterns in one compiled alternation, and
    patterns with policy variables kept as templates and matched per request."""

    everything: bool
    exact: frozenset[str]
    prefixes: tuple[str, ...]
    pattern: Matcher | None
    templates: tuple[DynamicPattern, ...]
    variables: frozenset[str]

    @classmethod
    def build(cls, resources: Sequence[str], *, variables: bool) -> _Resources:
        exact: set[str] = set()
        prefixes: list[str] = []
        patterns: list[list[Lit]] = []
        templates: list[Template] = []
        for resource in resources:
            template = Template.parse(resource, variables=variables)
            if not template.static:
                templates.append(template)
                continue
            literals = [p for p in template.parts if isinstance(p, Lit)]
            if not template.has_wildcards:
                exact.add("".join(p.text for p in literals))
            elif (prefix := literal_prefix(literals)) is not None:
                prefixes.append(prefix)
            else:
                patterns.append(literals)
        return cls("" in prefixes, frozenset(exact), tuple(prefixes), compile_any(patterns, Mode.RESOURCE),
                   tuple(DynamicPattern(t, Mode.RESOURCE) for t in templates),
                   frozenset().union(*(t.variables for t in templates)))

    def hit(self, resource: str, request: Request) -> bool:
        if self.everything or resource in self.exact or resource.startswith(self.prefixes):
            return True
        pattern = self.pattern
        if pattern is not None and pattern(resource) is not None:
            return True
        for template in self.templates:
            if template.match(request.variable, resource):
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
    _actions: _Names = field(default=_Names(False, frozenset(), (), None), repr=False, compare=False)
    _resources: _Resources | None = field(default=None, repr=False, compare=False)
    _principals: _Principals | None = field(default=None, repr=False, compare=False)
    _needs: tuple[str, ...] = field(default=(), repr=False, compare=False)
    # the Decisions this statement can make, built once (see _VERDICT_*)
    _verdicts: tuple[Decision, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def _compile(cls, raw: RawStatement, policy_name: str, *, variables: bool) -> Statement:
        needs: set[str] = set()
        resources = None
        if raw.resources is not None:
            resources = _Resources.build(raw.resources, variables=variables)
            needs |= resources.variables
        for condition in raw.conditions:
            needs |= condition.variables
        return cls(raw.sid, raw.effect, policy_name, raw.index, raw.actions, raw.not_action, raw.resources,
                   raw.not_resource, raw.principals, raw.not_principal, raw.conditions, _Names.build(raw.actions),
                   resources, _Principals.build(raw.principals) if raw.principals is not None else None,
                   tuple(sorted(needs)))

    @property
    def is_deny(self) -> bool:
        return self.effect == "Deny"

    def _covers(self, action: str) -> bool:
        """The Action/NotAction element matches ``action`` (lower-cased)."""
        return self._actions.hit(action) is not self.not_action

    def _applies(self, request: Request) -> bool:
        """Resource and conditions match ``request`` (the action was matched by the policy's
        index, the principal is the trust evaluation's business)."""
        resources = self._resources
        if resources is not None and resources.hit(request.resource, request) is self.not_resource:
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


_INDEX_LIMIT = 1024  # distinct actions remembered per policy (the router's actions are a few dozen)


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed, validated, compiled policy document.

    A policy also remembers, per action it has been asked about, which of its statements cover
    that action: a request then examines only those (a 50-statement policy typically has one or
    two per action), and the action patterns run once per policy and action, not per request.
    """

    name: str
    statements: tuple[Statement, ...]
    document: str
    kind: Kind = "identity"
    version: str | None = None
    _allows: tuple[Statement, ...] = field(default=(), repr=False, compare=False)
    _denies: tuple[Statement, ...] = field(default=(), repr=False, compare=False)
    _index: dict[str, tuple[tuple[Statement, ...], tuple[Statement, ...]]] = field(
        default_factory=dict, repr=False, compare=False)

    def _for_action(self, action: str) -> tuple[tuple[Statement, ...], tuple[Statement, ...]]:
        """(Deny statements, Allow statements) whose action element covers ``action``."""
        found = self._index.get(action)
        if found is None:
            found = (tuple(s for s in self._denies if s._covers(action)),
                     tuple(s for s in self._allows if s._covers(action)))
            if len(self._index) < _INDEX_LIMIT:
                self._index[action] = found
        return found


_VERDICT_ALLOW, _VERDICT_DENY_IDENTITY, _VERDICT_DENY_SESSION, _VERDICT_ALLOW_TRUST, _VERDICT_DENY_TRUST = range(5)


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
    for statement in statements:
        verdicts = (Decision(Outcome.ALLOW, statement, "identity"),
                    Decision(Outcome.EXPLICIT_DENY, statement, "identity"),
                    Decision(Outcome.EXPLICIT_DENY, statement, "session"),
                    Decision(Outcome.ALLOW, statement, "trust"),
                    Decision(Outcome.EXPLICIT_DENY, statement, "trust"))
        object.__setattr__(statement, "_verdicts", verdicts)  # frozen: set once, before anyone sees it
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
    action = request.action
    for policy in identity:
        for statement in policy._for_action(action)[0]:
            if statement._applies(request):
                return statement._verdicts[_VERDICT_DENY_IDENTITY]
    if session is not None:
        for policy in session:
            for statement in policy._for_action(action)[0]:
                if statement._applies(request):
                    return statement._verdicts[_VERDICT_DENY_SESSION]
    return None


def _first_allow(request: Request, policies: Sequence[Policy]) -> Statement | None:
    action = request.action
    for policy in policies:
        for statement in policy._for_action(action)[1]:
            if statement._applies(request):
                return statement
    return None


def _allow(request: Request, identity: Sequence[Policy], session: Sequence[Policy] | None) -> Decision:
    allowing = _first_allow(request, identity)
    if allowing is None:
        return _IMPLICIT["identity"]
    if session is not None and _first_allow(request, session) is None:
        return _IMPLICIT["session"]
    return allowing._verdicts[_VERDICT_ALLOW]


def decide(ctx: RequestContext, identity: Sequence[Policy], session: Sequence[Policy] | None = None) -> Decision:
    """Evaluate a request against the principal's identity-based policies and, for temporary
    credentials that carry them, its session policies (``None``: no session policies; an empty
    list: session policies that allow nothing — AWS's rule for a federated user whose
    GetFederationToken passed no ``Policy``)."""
    request = Request(ctx)
    denied = _explicit_deny(request, identity, session)
    if denied is not None:
        return denied
    return _allow(request, identity, session)


def _trust(request: Request, trust: Policy) -> tuple[Decision, Grant]:
    ctx = request.ctx
    denies, allows = trust._for_action(request.action)
    for statement in denies:
        if statement._principal_match(ctx)[0] and statement._applies(request):
            return statement._verdicts[_VERDICT_DENY_TRUST], "account"
    for statement in allows:
        covered, grant = statement._principal_match(ctx)
        if covered and statement._applies(request):
            return statement._verdicts[_VERDICT_ALLOW_TRUST], grant
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
