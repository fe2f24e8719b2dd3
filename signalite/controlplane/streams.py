"""Stream operations of ``kinesisvideo``: metadata only (Signalite stores no media).

Streams exist so that a signaling channel's media storage configuration can point at one, and so
that stream-centric tooling keeps working. Defaults are AWS's: ACTIVE at once, no data retention,
the account's ``aws/kinesisvideo`` KMS alias. Stream APIs name their authorization error
``NotAuthorizedException`` where the channel APIs say ``AccessDeniedException``.
"""

from __future__ import annotations

from typing import Any

from ..aws import arn as arns
from ..aws.errors import ServiceError, invalid
from ..context import OpContext
from ..store import NameInUse, Resource
from .common import (
    check_tag_count,
    decode_token,
    delete,
    find,
    new_version,
    now_ms,
    page,
    tag,
    tags_from_map,
    untag,
    update,
)

KIND = "stream"
MAPPED_CHANNEL = "MediaStorageStreamARN"
"""Top-level channel attribute naming the stream its media storage is mapped to (see storage.py)."""


def stream_info(r: Resource) -> dict[str, Any]:
    a = r.attrs
    return {
        "DeviceName": a.get("DeviceName"),
        "StreamName": r.name,
        "StreamARN": r.arn,
        "MediaType": a.get("MediaType"),
        "KmsKeyId": a.get("KmsKeyId"),
        "Version": r.version,
        "Status": r.status,
        "CreationTime": r.created,
        "DataRetentionInHours": a.get("DataRetentionInHours", 0),
    }


async def find_stream(ctx: OpContext, p: dict[str, Any]) -> Resource:
    return await find(ctx, KIND, name=p.get("StreamName"), arn=p.get("StreamARN"),
                      name_member="StreamName", arn_member="StreamARN")



async def create_stream(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    tags = check_tag_count(tags_from_map(p.get("Tags")))
    created = now_ms(ctx)
    attrs: dict[str, Any] = {
        "KmsKeyId": p.get("KmsKeyId") or f"arn:aws:kms:{ctx.region}:{ctx.account}:alias/aws/kinesisvideo",
        "DataRetentionInHours": p.get("DataRetentionInHours", 0),
    }
    for member in ("DeviceName", "MediaType", "StreamStorageConfiguration"):
        if member in p:
            attrs[member] = p[member]
    resource = Resource(
        account=ctx.account, region=ctx.region, kind=KIND, name=p["StreamName"],
        arn=arns.make(ctx.region, ctx.account, KIND, p["StreamName"], created),
        created=created / 1000, version=new_version(), status="ACTIVE", attrs=attrs, tags=tags,
    )
    try:
        await ctx.store.insert(resource)
    except NameInUse:
        raise ServiceError("ResourceInUseException",
                           f"The stream {p['StreamName']} already exists.") from None
    return {"StreamARN": resource.arn}


async def describe_stream(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    return {"StreamInfo": stream_info(await find_stream(ctx, p))}


async def list_streams(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    condition = p.get("StreamNameCondition") or {}
    rows, token = await page(ctx, KIND, p.get("MaxResults"), p.get("NextToken"), condition.get("ComparisonValue", ""))
    return {"StreamInfoList": [stream_info(r) for r in rows], "NextToken": token}


async def update_stream(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    r = await find_stream(ctx, p)
    changed = {m: p[m] for m in ("DeviceName", "MediaType") if m in p}
    await update(ctx, r, lambda cur: cur.evolve(attrs={**cur.attrs, **changed}), expected_version=p["CurrentVersion"])
    return {}


async def update_data_retention(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    r = await find_stream(ctx, p)
    delta = int(p["DataRetentionChangeInHours"])
    if p["Operation"] == "DECREASE_DATA_RETENTION":
        delta = -delta

    def change(cur: Resource) -> Resource:
        current = int(cur.attrs.get("DataRetentionInHours", 0))
        if current + delta < 0:
            raise invalid(f"The stream {cur.name} keeps data for {current} hours; "
                          f"it cannot be decreased by {-delta} hours.")
        return cur.evolve(attrs={**cur.attrs, "DataRetentionInHours": current + delta})

    await update(ctx, r, change, expected_version=p["CurrentVersion"])
    return {}


async def delete_stream(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    r = await find(ctx, KIND, arn=p["StreamARN"], name_member="StreamName", arn_member="StreamARN")
    expected = p.get("CurrentVersion")
    if expected is None or expected == r.version:  # a mismatch is answered as such by delete()
        mapped = await ctx.store.find("channel", MAPPED_CHANNEL, r.arn)
        if mapped:
            raise ServiceError("ResourceInUseException",
                               f"The stream {r.name} is the media storage of the signaling channel "
                               f"{mapped[0].name}; disable that channel's media storage first.")
    await delete(ctx, r, expected)
    return {}


async def tag_stream(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    await tag(ctx, await find_stream(ctx, p), tags_from_map(p["Tags"]))
    return {}


async def untag_stream(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    await untag(ctx, await find_stream(ctx, p), p["TagKeyList"])
    return {}


async def list_tags_for_stream(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    decode_token(p.get("NextToken"))
    r = await find_stream(ctx, p)
    return {"Tags": dict(r.tags)}


OPERATIONS = {
    "CreateStream": create_stream,
    "DescribeStream": describe_stream,
    "ListStreams": list_streams,
    "UpdateStream": update_stream,
    "UpdateDataRetention": update_data_retention,
    "DeleteStream": delete_stream,
    "TagStream": tag_stream,
    "UntagStream": untag_stream,
    "ListTagsForStream": list_tags_for_stream,
}
