"""The signaling channel as every plane sees it: its message TTL, its defaults, and the one rule
for "this caller may use this channel".

The control plane, the WSS handshake, GetIceServerConfig, SendAlexaOfferToMaster and the admin
API all look channels up by ARN; they all answer the same ResourceNotFoundException for a
channel that does not exist, is not ACTIVE, or belongs to another account or region (resources
are namespaced by the credential scope, as on AWS). That rule lives here, once.
"""

from __future__ import annotations

from typing import Any

from .aws import arn as arns
from .aws.errors import ServiceError
from .store import Resource, Store

KIND = "channel"
DEFAULT_TTL = 60
"""MessageTtlSeconds of a channel created without SingleMasterConfiguration (AWS's default)."""
DEFAULT_TYPE = "SINGLE_MASTER"
NOT_FOUND = "The requested channel is not found or not active."


def not_found() -> ServiceError:
    return ServiceError("ResourceNotFoundException", NOT_FOUND)


def message_ttl(channel: Resource) -> int:
    """Seconds a message for a recipient who is not connected is kept for it."""
    return int(channel.attrs.get("MessageTtlSeconds", DEFAULT_TTL))


def media_storage(attrs: dict[str, Any]) -> dict[str, Any]:
    """The channel's MediaStorageConfiguration, as DescribeMediaStorageConfiguration answers it."""
    stored = attrs.get("MediaStorage") or {}
    if stored.get("Status") == "ENABLED" and stored.get("StreamARN"):
        return {"Status": "ENABLED", "StreamARN": stored["StreamARN"]}
    return {"Status": "DISABLED"}


def usable(resource: Resource | None, account: str, region: str) -> bool:
    """Whether ``resource`` is an ACTIVE signaling channel of ``account`` in ``region``."""
    return (resource is not None and resource.kind == KIND and resource.status == "ACTIVE"
            and resource.account == account and resource.region == region)


async def lookup(store: Store, arn: str, account: str, region: str) -> Resource | None:
    """The caller's channel ``arn``, or None when :func:`usable` says no."""
    resource = await store.get_by_arn(arn)
    return resource if usable(resource, account, region) else None


async def get(store: Store, arn: str, account: str, region: str, member: str = "ChannelARN") -> Resource:
    """The caller's channel named by the request member ``member``: InvalidArgumentException for
    a malformed or non-channel ARN, else ResourceNotFoundException when :func:`usable` says no."""
    parsed = arns.require(arn, KIND, member)
    if parsed.account != account or parsed.region != region:
        raise not_found()
    resource = await lookup(store, str(parsed), account, region)
    if resource is None:
        raise not_found()
    return resource
