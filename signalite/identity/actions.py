"""Which IAM action and resource a request is: what the authorizer evaluates.

``kinesisvideo:<Operation>`` for every control-plane, data-plane and storage operation, on the
channel or stream ARN it names (by ARN, or by name: then looked up), the ARN a create would give,
or ``*`` for the List operations; ``iam:<Action>`` and ``sts:<Action>`` on the user, role,
policy or federated user they name. The WSS handshake's actions are ``kinesisvideo:ConnectAsMaster``
and ``kinesisvideo:ConnectAsViewer`` on the channel ARN (see the hub).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping

from botocore.model import OperationModel

from ..aws import arn as arns
from ..store import Store

ALWAYS_ALLOWED = frozenset({"sts:GetCallerIdentity", "sts:GetSessionToken"})
"""AWS answers these for any valid credentials, whatever the policies say."""


@dataclass(frozen=True, slots=True)
class Target:
    action: str
    resource: str
    tags: Mapping[str, str] | None = None
    """The resource's tags, when it was read (for aws:ResourceTag conditions)."""


@functools.lru_cache(maxsize=1024)
def denial_code(service: str, op: OperationModel) -> tuple[str, int | None]:
    """The modeled authorization error of ``op`` and, for the query protocol, its status
    (worked out once per operation: the models never change while the server runs)."""
    if service in ("iam", "sts"):
        return "AccessDenied", 403
    codes = {shape.name for shape in op.error_shapes}
    for code in ("AccessDeniedException", "NotAuthorizedException"):
        if code in codes:
            return code, None
    return "AccessDeniedException", 403


def target_now(service: str, op: OperationModel, params: Mapping[str, Any], account: str, region: str,
               now: float, *, with_tags: bool, caller_user_arn: str | None = None) -> Target | None:
    """:func:`target` when it needs no store read (the request names its resource by ARN and no
    policy reads resource tags, or the action is not on a KVS resource); None otherwise."""
    action = f"{service}:{op.name}"
    if service == "iam":
        iam_resource = _iam_resource(op.name, params, account)
        if iam_resource == "*" and caller_user_arn is not None and op.name in _OWN_USER_OPERATIONS:
            return Target(action, caller_user_arn)
        return Target(action, iam_resource)
    if service == "sts":
        return Target(action, _sts_resource(op.name, params, account))
    resource, by_name = _kvs_resource(op.name, params, account, region, now)
    if by_name is not None or (with_tags and resource != "*" and op.name not in _CREATES):
        return None
    return Target(action, resource or "*")


async def target(service: str, op: OperationModel, params: Mapping[str, Any], account: str, region: str,
                 store: Store, now: float, *, with_tags: bool, caller_user_arn: str | None = None) -> Target:
    """``caller_user_arn``: the caller's own user ARN when it is an IAM user (IAM operations on
    a user that name none act on the caller)."""
    quick = target_now(service, op, params, account, region, now, with_tags=with_tags, caller_user_arn=caller_user_arn)
    if quick is not None:
        return quick
    action = f"{service}:{op.name}"
    resource, by_name = _kvs_resource(op.name, params, account, region, now)
    tags = None
    if by_name is not None:
        kind, name = by_name
        found = await store.get_by_name(account, region, kind, name)
        resource = found.arn if found is not None else f"arn:aws:kinesisvideo:{region}:{account}:{kind}/{name}/*"
    else:
        found = await store.get_by_arn(resource) if resource is not None and arns.parse(resource) else None
    if found is not None:
        tags = found.tags
    return Target(action, resource or "*", tags)


def _kvs_resource(operation: str, p: Mapping[str, Any], account: str, region: str,
                  now: float) -> tuple[str | None, tuple[str, str] | None]:
    """``(arn, None)`` when the request gives the ARN (or makes it, or acts on ``*``: the List
    operations), else ``(None, (kind, name))`` to look it up by."""
    if operation.startswith("List") and operation not in ("ListTagsForResource", "ListTagsForStream"):
        return "*", None
    if operation == "CreateSignalingChannel":
        return arns.make(region, account, "channel", str(p.get("ChannelName", "")), int(now * 1000)), None
    if operation == "CreateStream":
        return arns.make(region, account, "stream", str(p.get("StreamName", "")), int(now * 1000)), None
    for member in ("ChannelARN", "channelArn", "StreamARN", "ResourceARN"):
        value = p.get(member)
        if isinstance(value, str) and value:
            return value, None
    if isinstance(p.get("ChannelName"), str):
        return None, ("channel", p["ChannelName"])
    if isinstance(p.get("StreamName"), str):
        return None, ("stream", p["StreamName"])
    return "*", None


_CREATES = frozenset({"CreateSignalingChannel", "CreateStream"})
"""Operations whose resource does not exist yet (nothing to read tags from)."""

_OWN_USER_OPERATIONS = frozenset({"GetUser", "CreateAccessKey", "ListAccessKeys", "UpdateAccessKey",
                                  "DeleteAccessKey"})
"""IAM operations whose UserName defaults to the caller's."""


def _iam_resource(action: str, p: Mapping[str, Any], account: str) -> str:
    if isinstance(p.get("PolicyArn"), str):
        return str(p["PolicyArn"])
    if isinstance(p.get("RoleName"), str):
        return f"arn:aws:iam::{account}:role/{p['RoleName']}"
    if isinstance(p.get("UserName"), str):
        return f"arn:aws:iam::{account}:user/{p['UserName']}"
    if action == "CreatePolicy" and isinstance(p.get("PolicyName"), str):
        return f"arn:aws:iam::{account}:policy{p.get('Path', '/')}{p['PolicyName']}"
    return "*"


def _sts_resource(action: str, p: Mapping[str, Any], account: str) -> str:
    if action == "AssumeRole" and isinstance(p.get("RoleArn"), str):
        return str(p["RoleArn"])
    if action == "GetFederationToken" and isinstance(p.get("Name"), str):
        return f"arn:aws:sts::{account}:federated-user/{p['Name']}"
    return "*"
