"""Tagging by ARN (``TagResource`` / ``UntagResource`` / ``ListTagsForResource``).

These take any kinesisvideo ARN, channel or stream: tags are a list of ``{Key, Value}`` going
in and a map coming out. Existing keys are overwritten, unknown keys are ignored on untag, and
a resource holds at most 50 tags.
"""

from __future__ import annotations

from typing import Any

from ..aws import arn as arns
from ..aws.errors import invalid
from ..context import OpContext
from ..store import Resource
from .common import decode_token, find, tag, tags_from_list, untag

_KINDS = ("channel", "stream")


async def _resource(ctx: OpContext, arn: str) -> Resource:
    parsed = arns.parse(arn)
    if parsed is None or parsed.kind not in _KINDS:
        raise invalid(f"ResourceARN '{arn}' is not the ARN of a signaling channel or a stream.")
    return await find(ctx, parsed.kind, arn=arn, arn_member="ResourceARN")


async def tag_resource(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    await tag(ctx, await _resource(ctx, p["ResourceARN"]), tags_from_list(p["Tags"]))
    return {}


async def untag_resource(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    await untag(ctx, await _resource(ctx, p["ResourceARN"]), p["TagKeyList"])
    return {}


async def list_tags_for_resource(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    decode_token(p.get("NextToken"))  # at most 50 tags: always one page, but a bad token is an error
    r = await _resource(ctx, p["ResourceARN"])
    return {"Tags": dict(r.tags)}


OPERATIONS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
