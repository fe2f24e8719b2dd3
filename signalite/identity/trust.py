"""Whether a role's trust policy lets a caller assume it (``sts:AssumeRole``).

:func:`trust_allows` is the one place AssumeRole asks; the policy evaluator's
``decide_trust`` takes its place once it is on main. Until then it answers with a deliberately
small reading of the trust policy: a statement applies when
its action matches ``sts:AssumeRole`` (``*`` and ``?`` wildcards) and its ``Principal`` is
``"*"`` or names, under ``AWS``, the caller's ARN, the ARN of the IAM identity behind it (the
role of a role session), its account id or ``arn:aws:iam::ACCOUNT:root``. An explicit Deny that
applies wins; then an Allow; otherwise no. Statements it cannot judge err on the side of
refusing: an Allow with a ``Condition``, ``NotPrincipal`` or ``NotAction`` never allows, a Deny
with one of them always denies.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..aws.principal import Principal, root_arn

ACTION = "sts:AssumeRole"


def trust_allows(principal: Principal, trust_policy: str, role_arn: str) -> bool:
    """Whether ``trust_policy`` (the role ``role_arn``'s) allows ``principal`` sts:AssumeRole."""
    return _minimal(principal, trust_policy)


def _wildcard(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE) is not None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _names_caller(principal_block: Any, principal: Principal) -> bool:
    if principal_block == "*":
        return True
    if not isinstance(principal_block, dict):
        return False
    who = principal.who
    accepted = {who.arn, who.identity_arn, who.account_id, root_arn(who.account_id)}
    return any(entry == "*" or entry in accepted for entry in _as_list(principal_block.get("AWS", [])))


def _minimal(principal: Principal, trust_policy: str) -> bool:
    try:
        document = json.loads(trust_policy)
        statements = _as_list(document.get("Statement", []))
    except (ValueError, AttributeError):
        return False
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict):
            continue
        effect = statement.get("Effect")
        unjudged = any(k in statement for k in ("Condition", "NotPrincipal", "NotAction"))
        if effect == "Deny":
            if unjudged:
                return False
            if _applies(statement, principal):
                return False
        elif effect == "Allow" and not unjudged and _applies(statement, principal):
            allowed = True
    return allowed


def _applies(statement: dict[str, Any], principal: Principal) -> bool:
    actions = [a for a in _as_list(statement.get("Action", [])) if isinstance(a, str)]
    return any(_wildcard(a, ACTION) for a in actions) and _names_caller(statement.get("Principal"), principal)
