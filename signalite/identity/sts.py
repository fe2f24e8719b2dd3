"""The STS operations Signalite serves: GetCallerIdentity, GetSessionToken, GetFederationToken and
AssumeRole.

Temporary credentials are minted as self-contained session tokens (:mod:`.tokens`) that carry
the caller they stand for, with AWS's durations and limits: GetSessionToken and
GetFederationToken 900..129600 seconds (default 43200), capped at 3600 for a root; AssumeRole
900..the role's MaxSessionDuration (default 3600), and at most 3600 when a role session assumes
a role (role chaining); the root may not AssumeRole; session credentials may not call
GetSessionToken or GetFederationToken; federated users may not assume roles. Whether a role's
trust policy (and, where AWS needs it, the caller's own policies) lets the caller in is
:func:`.trust.trust_allows`'s to say.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Awaitable, Callable

from ..aws.errors import ServiceError
from ..aws.principal import ASSUME_ROLE, ASSUMED_ROLE, FEDERATED_USER, FEDERATION_TOKEN, ROOT, SESSION_TOKEN, Caller
from ..context import OpContext
from . import documents, names, tokens
from .documents import validate_document
from .service import IDENTITY
from .trust import trust_allows

DEFAULT_TOKEN_SECONDS = 43200
ROOT_MAX_SECONDS = 3600
DEFAULT_ROLE_SECONDS = 3600
CHAINED_MAX_SECONDS = 3600
MAX_POLICY_ARNS = 10
PACKED_LIMIT = 2048
"""Characters of session policy (whitespace not counted) and policy ARNs a session may carry."""


def _denied(message: str) -> ServiceError:
    return ServiceError("AccessDenied", message, 403)


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationError", message, 400)


def _credentials(temporary: tokens.Temporary) -> dict[str, Any]:
    return {"AccessKeyId": temporary.access_key_id, "SecretAccessKey": temporary.secret_access_key,
            "SessionToken": temporary.session_token, "Expiration": temporary.expires}


def _session_policies(p: dict[str, Any]) -> tuple[str | None, tuple[str, ...], dict[str, Any]]:
    """``Policy`` and ``PolicyArns`` checked (document, ARNs, packed size); and the
    ``PackedPolicySize`` member of the answer when any were passed."""
    policy: str | None = p.get("Policy")
    arns = tuple(d["arn"] for d in p.get("PolicyArns", []))
    if policy is not None:
        validate_document(policy, documents.SESSION)
    if len(arns) > MAX_POLICY_ARNS:
        raise _validation(f"1 validation error detected: Value at 'policyArns' failed to satisfy constraint: "
                          f"Member must have length less than or equal to {MAX_POLICY_ARNS}")
    for arn in arns:
        if names.parse_iam_arn(arn, "policy") is None:
            raise _validation(f"Invalid policy ARN {arn}")
    if policy is None and not arns:
        return None, (), {}
    used = documents.size(policy or "") + sum(len(a) for a in arns)
    percent = math.ceil(used * 100 / PACKED_LIMIT)
    if percent > 100:
        raise ServiceError("PackedPolicyTooLarge", f"Packed policy consumes {percent}% of allotted space, "
                           "please use smaller policy for session.")
    return policy, arns, {"PackedPolicySize": percent}


def _expiry(ctx: OpContext, seconds: int) -> float:
    return float(math.floor(ctx.clock.now()) + seconds)


async def get_caller_identity(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    who = ctx.principal.who
    return {"UserId": who.user_id, "Account": who.account_id, "Arn": who.arn}


def _token_duration(who: Caller, p: dict[str, Any]) -> int:
    seconds: int = p.get("DurationSeconds", DEFAULT_TOKEN_SECONDS)
    return min(seconds, ROOT_MAX_SECONDS) if who.kind == ROOT else seconds


async def get_session_token(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    who = ctx.principal.who
    if who.temporary:
        raise _denied("Cannot call GetSessionToken with session credentials")
    if p.get("SerialNumber") or p.get("TokenCode"):
        raise _denied("Signalite does not support MFA devices: call GetSessionToken without SerialNumber and TokenCode.")
    caller = dataclasses.replace(who, source=SESSION_TOKEN, expires=_expiry(ctx, _token_duration(who, p)))
    temporary = tokens.mint(ctx.resource(IDENTITY).server_key, caller)
    return {"Credentials": _credentials(temporary)}


async def get_federation_token(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    who = ctx.principal.who
    if who.temporary:
        raise _denied("Cannot call GetFederationToken with session credentials")
    name = p["Name"]
    policy, arns, packed = _session_policies(p)
    account = who.account_id
    caller = Caller(account, FEDERATED_USER, name, names.federated_user_arn(account, name), f"{account}:{name}",
                    FEDERATION_TOKEN, who.identity_arn, who.identity_id, None, policy, arns,
                    _expiry(ctx, _token_duration(who, p)))
    temporary = tokens.mint(ctx.resource(IDENTITY).server_key, caller)
    return {"Credentials": _credentials(temporary),
            "FederatedUser": {"FederatedUserId": caller.user_id, "Arn": caller.arn}, **packed}


async def assume_role(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    principal = ctx.principal
    who = principal.who
    role_arn, session = p["RoleArn"], p["RoleSessionName"]
    refused = _denied(f"User: {who.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
    if who.kind == ROOT:
        raise _denied("Roles may not be assumed by root accounts.")
    if who.kind == FEDERATED_USER:
        raise refused
    parsed = names.parse_iam_arn(role_arn, "role")
    if parsed is None:
        raise _validation(f"{role_arn} is invalid")
    role = await ctx.store.get_entity(parsed.account, "role", parsed.name)
    if role is None or role.data["arn"] != role_arn or not await trust_allows(ctx, principal, role.data["trust"], role_arn):
        raise refused  # the same answer whether the role exists or not: nothing leaks across accounts
    seconds: int = p.get("DurationSeconds", DEFAULT_ROLE_SECONDS)
    if who.kind == ASSUMED_ROLE and seconds > CHAINED_MAX_SECONDS:
        raise _validation("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by "
                          "role chaining.")
    if seconds > role.data["max_session"]:
        raise _validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    policy, arns, packed = _session_policies(p)
    caller = Caller(role.account, ASSUMED_ROLE, role.name, names.assumed_role_arn(role.account, role.name, session),
                    f"{role.id}:{session}", ASSUME_ROLE, role_arn, role.id, session, policy, arns,
                    _expiry(ctx, seconds))
    temporary = tokens.mint(ctx.resource(IDENTITY).server_key, caller)
    out: dict[str, Any] = {"Credentials": _credentials(temporary),
                           "AssumedRoleUser": {"AssumedRoleId": caller.user_id, "Arn": caller.arn}, **packed}
    if p.get("SourceIdentity"):
        out["SourceIdentity"] = p["SourceIdentity"]
    return out


OPERATIONS: dict[str, Callable[[OpContext, dict[str, Any]], Awaitable[Any]]] = {
    "GetCallerIdentity": get_caller_identity, "GetSessionToken": get_session_token,
    "GetFederationToken": get_federation_token, "AssumeRole": assume_role,
}
