"""Pieces every control-plane operation shares: finding a resource in the caller's account and
region, versions, opaque pagination tokens and tag limits."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import string
from typing import Any, Callable

from .. import channel as channels
from ..aws import arn as arns
from ..aws.errors import ServiceError, invalid
from ..context import OpContext
from ..store import Resource

MAX_TAGS = 50
_VERSION_ALPHABET = string.ascii_letters + string.digits


def new_version() -> str:
    return "".join(secrets.choice(_VERSION_ALPHABET) for _ in range(20))


def now_ms(ctx: OpContext) -> int:
    return int(ctx.clock.now() * 1000)


def not_found(kind: str) -> ServiceError:
    if kind == channels.KIND:
        return channels.not_found()
    return ServiceError("ResourceNotFoundException", "The requested stream is not found or not active.")


async def find(ctx: OpContext, kind: str, *, name: str | None = None, arn: str | None = None,
               name_member: str = "ChannelName", arn_member: str = "ChannelARN") -> Resource:
    """The caller's resource named by ``name`` or ``arn`` (404 otherwise, as AWS does for another
    account's or region's ARN: resources are namespaced by the credential scope)."""
    if arn:
        _check_arn(ctx, kind, arn, arn_member)
        found = await ctx.store.get_by_arn(arn)  # parse() matched it whole, so it is canonical
        if found is None or (name and found.name != name):
            raise not_found(kind)
        return found
    if name:
        found = await ctx.store.get_by_name(ctx.account, ctx.region, kind, name)
        if found is None:
            raise not_found(kind)
        return found
    raise invalid(f"Either {name_member} or {arn_member} must be specified.")


def _check_arn(ctx: OpContext, kind: str, arn: str, arn_member: str) -> None:
    parsed = arns.require(arn, kind, arn_member)
    if parsed.account != ctx.account or parsed.region != ctx.region:
        raise not_found(kind)


async def find_attrs(ctx: OpContext, kind: str, arn: str, arn_member: str = "ChannelARN") -> dict[str, Any]:
    """``(await find(ctx, kind, arn=arn)).attrs`` with the same errors, reading only the attrs
    column: for hot reads that need only the resource's existence and settings."""
    _check_arn(ctx, kind, arn, arn_member)
    attrs = await ctx.store.get_attrs_by_arn(arn)
    if attrs is None:
        raise not_found(kind)
    return attrs


def encode_token(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def decode_token(token: str | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        value = json.loads(base64.b64decode(token, validate=True))
        if isinstance(value, dict) and all(isinstance(value.get(k, ""), str) for k in ("a", "p")):
            return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise invalid("The NextToken is not valid; pass the NextToken of a previous response.")


async def page(ctx: OpContext, kind: str, max_results: int | None, token: str | None,
               prefix: str) -> tuple[list[Resource], str | None]:
    """One page of resources by name; the token also pins the prefix it was issued for."""
    state = decode_token(token)
    if state and state.get("p", "") != prefix:
        raise invalid("The NextToken was issued for a different name condition.")
    limit = max_results or 500
    rows = await ctx.store.list(ctx.account, ctx.region, kind, prefix=prefix, after=state.get("a", ""),
                                limit=limit + 1)
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_token({"a": rows[-1].name, "p": prefix})
    return rows, None


def tags_from_list(items: list[dict[str, str]] | None, member: str = "Tags") -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items or []:
        if item["Key"] in tags:
            raise invalid(f"{member} contains the key '{item['Key']}' more than once.")
        tags[item["Key"]] = item["Value"]
    return tags


def check_tag_count(tags: dict[str, str]) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise ServiceError("TagsPerResourceExceededLimitException",
                           f"The resource would have {len(tags)} tags; a resource can have at most {MAX_TAGS}.")
    return tags


async def delete(ctx: OpContext, r: Resource, expected_version: str | None) -> None:
    """Delete ``r``, only at the client's CurrentVersion when it gave one."""
    if expected_version is not None and expected_version != r.version:
        raise version_mismatch(r)
    if not await ctx.store.delete(r.arn, expected_version):
        raise version_mismatch(r) if expected_version else not_found(r.kind)


async def tag(ctx: OpContext, r: Resource, incoming: dict[str, str]) -> None:
    """Add or overwrite tags (at most :data:`MAX_TAGS` in all)."""
    await save_tags(ctx, r, lambda tags: check_tag_count({**tags, **incoming}))


async def untag(ctx: OpContext, r: Resource, keys: list[str]) -> None:
    """Remove tags by key; unknown keys are ignored, as on AWS."""
    drop = set(keys)
    await save_tags(ctx, r, lambda tags: {k: v for k, v in tags.items() if k not in drop})


def version_mismatch(r: Resource) -> ServiceError:
    return ServiceError("VersionMismatchException",
                        f"The CurrentVersion does not match the latest version of the {r.kind} {r.name}.")


async def update(ctx: OpContext, r: Resource, change: Callable[[Resource], Resource], *,
                 bump_version: bool = True, expected_version: str | None = None, attempts: int = 5) -> Resource:
    """Apply ``change`` to the stored resource under optimistic locking and return the result.

    If another writer got in between (a tag write, say), the resource is read again and
    ``change`` re-applied to the fresh copy, so a caller never sees a VersionMismatch it did not
    ask for; with ``expected_version`` (the client's CurrentVersion) only a different Version is a
    mismatch. ``change`` may raise a ServiceError.
    """
    for _ in range(attempts):
        if expected_version is not None and r.version != expected_version:
            raise version_mismatch(r)
        updated = change(r)
        if bump_version:
            updated = updated.evolve(version=new_version())
        if await ctx.store.replace(updated, r.version):
            return updated
        again = await ctx.store.get_by_arn(r.arn)
        if again is None:
            raise not_found(r.kind)
        r = again
    raise ServiceError("ClientLimitExceededException",
                       f"The {r.kind} is being changed by other requests; try again.")


async def save_tags(ctx: OpContext, r: Resource,
                    change: Callable[[dict[str, str]], dict[str, str]]) -> Resource:
    """Replace the tags with ``change(current tags)``. Tags are not part of the resource's
    configuration, so its Version (the CurrentVersion clients send) stays the same."""
    return await update(ctx, r, lambda cur: cur.evolve(tags=dict(change(dict(cur.tags)))), bump_version=False)


def tags_from_map(tags: dict[str, str] | None) -> dict[str, str]:
    return dict(tags or {})
