"""Signaling-channel operations of ``kinesisvideo`` (2017-09-30), with AWS semantics.

Each operation receives values the wire layer already validated against the model, and returns
plain values for the model's output shape.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .. import channel as channels
from ..aws import arn as arns
from ..aws.errors import ServiceError, invalid
from ..context import OpContext
from ..store import LimitExceeded, NameInUse, Resource
from .common import check_tag_count, delete, find, find_attrs, new_version, now_ms, page, tags_from_list, update

DEFAULT_TTL = channels.DEFAULT_TTL
KIND = channels.KIND


def channel_info(r: Resource) -> dict[str, Any]:
    return {
        "ChannelName": r.name,
        "ChannelARN": r.arn,
        "ChannelType": r.attrs.get("ChannelType", channels.DEFAULT_TYPE),
        "ChannelStatus": r.status,
        "CreationTime": r.created,
        "SingleMasterConfiguration": {"MessageTtlSeconds": r.attrs.get("MessageTtlSeconds", DEFAULT_TTL)},
        "Version": r.version,
    }


async def create_signaling_channel(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    channel_type = p.get("ChannelType", channels.DEFAULT_TYPE)
    if channel_type != channels.DEFAULT_TYPE:
        raise invalid(f"ChannelType {channel_type} is not supported; only SINGLE_MASTER channels exist.")
    tags = tags_from_list(p.get("Tags"))
    check_tag_count(tags)
    limit = ctx.settings.quotas.channels_per_account
    created = now_ms(ctx)
    resource = Resource(
        account=ctx.account, region=ctx.region, kind=KIND, name=p["ChannelName"],
        arn=arns.make(ctx.region, ctx.account, KIND, p["ChannelName"], created),
        created=created / 1000, version=new_version(), status="ACTIVE",
        attrs={"ChannelType": channel_type,
               "MessageTtlSeconds": p.get("SingleMasterConfiguration", {}).get("MessageTtlSeconds", DEFAULT_TTL)},
        tags=tags,
    )
    try:
        await ctx.store.insert(resource, limit=limit)  # the limit holds atomically, also across nodes
    except LimitExceeded:
        raise ServiceError("AccountChannelLimitExceededException",
                           f"You have reached the maximum limit of {limit} active signaling channels for this account.") from None
    except NameInUse:
        raise ServiceError("ResourceInUseException",
                           f"The signaling channel {p['ChannelName']} already exists.") from None
    return {"ChannelARN": resource.arn}


async def describe_signaling_channel(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    r = await find(ctx, KIND, name=p.get("ChannelName"), arn=p.get("ChannelARN"))
    return {"ChannelInfo": channel_info(r)}


async def list_signaling_channels(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    condition = p.get("ChannelNameCondition") or {}
    rows, token = await page(ctx, KIND, p.get("MaxResults"), p.get("NextToken"), condition.get("ComparisonValue", ""))
    return {"ChannelInfoList": [channel_info(r) for r in rows], "NextToken": token}


async def update_signaling_channel(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    r = await find(ctx, KIND, arn=p["ChannelARN"])

    def change(cur: Resource) -> Resource:
        attrs = dict(cur.attrs)
        if "SingleMasterConfiguration" in p:
            attrs["MessageTtlSeconds"] = p["SingleMasterConfiguration"].get("MessageTtlSeconds", DEFAULT_TTL)
        return cur.evolve(attrs=attrs)

    updated = await update(ctx, r, change, expected_version=p["CurrentVersion"])
    ctx.signaling.channel_updated(updated)
    return {}


async def delete_signaling_channel(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    r = await find(ctx, KIND, arn=p["ChannelARN"])
    await delete(ctx, r, p.get("CurrentVersion"))
    ctx.signaling.channel_deleted(r.arn)
    return {}


@lru_cache(maxsize=8)
def endpoint_urls(base: str) -> dict[str, str]:
    """The endpoints advertised for the base URL ``base`` (worked out once: settings do not change)."""
    scheme, rest = base.split("://", 1)
    return {"WSS": ("wss://" if scheme == "https" else "ws://") + rest, "HTTPS": base, "WEBRTC": base}


async def get_signaling_channel_endpoint(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    attrs = await find_attrs(ctx, KIND, p["ChannelARN"])  # only the column this needs, no full record
    config = p.get("SingleMasterChannelEndpointConfiguration") or {}
    protocols = list(dict.fromkeys(config.get("Protocols") or ["WSS", "HTTPS"]))
    if "WEBRTC" in protocols and attrs.get("MediaStorage", {}).get("Status") != "ENABLED":
        raise invalid("The WEBRTC protocol is only available for a channel whose media storage "
                      "configuration is ENABLED.")
    urls = endpoint_urls(ctx.settings.advertised_url)
    return {"ResourceEndpointList": [{"Protocol": proto, "ResourceEndpoint": urls[proto]} for proto in protocols]}


OPERATIONS = {
    "CreateSignalingChannel": create_signaling_channel,
    "DescribeSignalingChannel": describe_signaling_channel,
    "ListSignalingChannels": list_signaling_channels,
    "UpdateSignalingChannel": update_signaling_channel,
    "DeleteSignalingChannel": delete_signaling_channel,
    "GetSignalingChannelEndpoint": get_signaling_channel_endpoint,
}
