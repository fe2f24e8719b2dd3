"""Media storage configuration: which stream a signaling channel's WebRTC ingestion records to.

The mapping lives on the channel, in two attributes: ``MediaStorage`` = ``{Status, StreamARN}``
(what DescribeMediaStorageConfiguration answers and GetSignalingChannelEndpoint checks before
handing out a WEBRTC endpoint) and the top-level ``MediaStorageStreamARN`` that
``Store.find`` can look up, so "which channel records to this stream" has one source of truth.
"""

from __future__ import annotations

from typing import Any

from .. import channel as channels
from ..aws import arn as arns
from ..aws.errors import ServiceError, invalid
from ..context import OpContext
from ..store import Resource
from .common import decode_token, find, not_found, update
from .streams import MAPPED_CHANNEL, find_stream

CHANNEL = "channel"
MAPPED_TYPE = "SIGNALING_CHANNEL"
"""``MappedResourceConfigurationListItem.Type``: the model and docs leave its values open
("the type of the associated resource"); no published response shows one."""


def _config(channel: Resource) -> dict[str, Any]:
    return channels.media_storage(channel.attrs)


async def describe_media_storage_configuration(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    channel = await find(ctx, CHANNEL, name=p.get("ChannelName"), arn=p.get("ChannelARN"))
    return {"MediaStorageConfiguration": _config(channel)}


async def _stream_for(ctx: OpContext, stream_arn: str) -> Resource:
    parsed = arns.parse(stream_arn)
    if parsed is None or parsed.kind != "stream":
        raise invalid(f"StreamARN '{stream_arn}' is not the ARN of a stream.")
    if parsed.account != ctx.account or parsed.region != ctx.region:
        raise not_found("stream")
    stream = await ctx.store.get_by_arn(str(parsed))
    if stream is None:
        raise not_found("stream")
    return stream


async def update_media_storage_configuration(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    channel = await find(ctx, CHANNEL, arn=p["ChannelARN"])
    wanted = p["MediaStorageConfiguration"]
    if wanted["Status"] == "ENABLED":
        if not wanted.get("StreamARN"):
            raise invalid("MediaStorageConfiguration.StreamARN is required when Status is ENABLED.")
        stream = await _stream_for(ctx, wanted["StreamARN"])
        if int(stream.attrs.get("DataRetentionInHours", 0)) == 0:
            raise ServiceError("NoDataRetentionException",
                               f"The stream {stream.name} has no data retention; "
                               "increase its DataRetentionInHours before using it for media storage.")
        others = [c for c in await ctx.store.find(CHANNEL, MAPPED_CHANNEL, stream.arn) if c.arn != channel.arn]
        if others:
            raise ServiceError("ResourceInUseException",
                               f"The stream {stream.name} is already the media storage of the signaling "
                               f"channel {others[0].name}.")
        attrs_on = {"MediaStorage": {"Status": "ENABLED", "StreamARN": stream.arn}, MAPPED_CHANNEL: stream.arn}

        def change(c: Resource) -> Resource:
            return c.evolve(attrs={**c.attrs, **attrs_on})
    else:
        def change(c: Resource) -> Resource:
            attrs = {k: v for k, v in c.attrs.items() if k != MAPPED_CHANNEL}
            attrs["MediaStorage"] = {"Status": "DISABLED"}
            return c.evolve(attrs=attrs)

    # Like tags, the mapping is not the channel's signaling configuration: Version stays, so a
    # client's CurrentVersion from DescribeSignalingChannel remains valid.
    await update(ctx, channel, change, bump_version=False)
    return {}


async def describe_mapped_resource_configuration(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    decode_token(p.get("NextToken"))  # at most one item: always one page
    stream = await find_stream(ctx, p)
    mapped = await ctx.store.find(CHANNEL, MAPPED_CHANNEL, stream.arn)
    return {"MappedResourceConfigurationList": [{"Type": MAPPED_TYPE, "ARN": c.arn} for c in mapped[:1]]}


OPERATIONS = {
    "DescribeMediaStorageConfiguration": describe_media_storage_configuration,
    "UpdateMediaStorageConfiguration": update_media_storage_configuration,
    "DescribeMappedResourceConfiguration": describe_mapped_resource_configuration,
}
