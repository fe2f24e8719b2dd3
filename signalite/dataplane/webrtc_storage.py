"""``kinesis-video-webrtc-storage``: JoinStorageSession (and JoinStorageSessionAsViewer, not yet).

JoinStorageSession (``POST /joinStorageSession``, ``{"channelArn"}``) on the WEBRTC endpoint of a
channel whose media storage is ENABLED starts a storage session (``signalite.media``): a peer that
joins the channel as a viewer, sends the master an SDP offer for H.264 video and Opus audio, and
records what the master streams into ``DATA_DIR/media/<stream name>/``. The call answers 200 as
soon as the session's task exists (the C SDK only checks for 200; the session's own failures are
logged); a newer call for the same channel replaces the running session, as on AWS ("the most
recent client request takes precedence"). Errors: an unknown channel (or another account's or
region's) → ResourceNotFoundException (404); a channel without media storage →
InvalidArgumentException, as GetSignalingChannelEndpoint answers for its WEBRTC endpoint.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from aiohttp import web

from .. import channel as channels
from ..aws.errors import ServiceError, invalid
from ..context import CLOCK, HUB, SETTINGS, STORE, OpContext
from ..media.library import media_root
from ..media.sessions import StorageSessions
from ..store import Resource

SESSIONS = web.AppKey("storage_sessions", StorageSessions)


async def _storage_channel(ctx: OpContext, arn: str) -> tuple[Resource, str]:
    channel = await channels.get(ctx.store, arn, ctx.account, ctx.region, member="channelArn")
    config = channels.media_storage(channel.attrs)
    if config["Status"] != "ENABLED":
        raise invalid(f"The signaling channel {channel.name} has no media storage configured: enable it with "
                      "UpdateMediaStorageConfiguration (Status ENABLED and a StreamARN) first.")
    return channel, str(config["StreamARN"])


async def join_storage_session(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    channel, stream_arn = await _storage_channel(ctx, p["channelArn"])
    try:
        ctx.resource(SESSIONS).start(channel, stream_arn)
    except RuntimeError:
        raise ServiceError("ClientLimitExceededException",
                           "The server is shutting down and starts no storage session; try again later.") from None
    return {}


async def join_storage_session_as_viewer(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    channel, _ = await _storage_channel(ctx, p["channelArn"])
    raise invalid(f"Signalite does not support JoinStorageSessionAsViewer yet: a viewer ({p['clientId']}) cannot "
                  f"join the storage session of channel {channel.name}, because the storage peer cannot yet "
                  "address viewers through the signaling router. JoinStorageSession (the master's media) works.")


OPERATIONS = {
    "JoinStorageSession": join_storage_session,
    "JoinStorageSessionAsViewer": join_storage_session_as_viewer,
}


def setup(app: web.Application) -> None:
    """``app[SESSIONS]``: the storage sessions, from start to shutdown (each one stopped and its
    recording finished), with the once-a-minute upkeep (retention, storage disabled) in between.
    Needs ``app[STORE]`` and ``app[HUB]``, so it is set up after them."""

    async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        sessions = StorageSessions(app[STORE], app[HUB], app[CLOCK], media_root(settings.data_dir).resolve())
        app[SESSIONS] = sessions
        upkeep = asyncio.get_running_loop().create_task(sessions.run_upkeep())
        try:
            yield
        finally:
            upkeep.cancel()
            await sessions.close()

    app.cleanup_ctx.append(storage_ctx)
