"""``kinesis-video-webrtc-storage``: JoinStorageSession and JoinStorageSessionAsViewer.

JoinStorageSession (``POST /joinStorageSession``, ``{"channelArn"}``) on the WEBRTC endpoint of a
channel whose media storage is ENABLED starts a storage session (``signalite.media``): a peer that
joins the channel as a viewer, sends the master an SDP offer for H.264 video and Opus audio, and
records what the master streams into ``DATA_DIR/media/<stream name>/``. The call answers 200 as
soon as the session's task exists (the C SDK only checks for 200; the session's own failures are
logged); a newer call for the same channel replaces the running session, on whichever node of a
cluster it runs, as on AWS ("the most recent client request takes precedence";
``media.sessions``: the sessions' cluster-wide claim). Errors: an unknown channel (or another account's or
region's) → ResourceNotFoundException (404); a channel without media storage →
InvalidArgumentException, as GetSignalingChannelEndpoint answers for its WEBRTC endpoint.

JoinStorageSessionAsViewer (``POST /joinStorageSessionAsViewer``, ``{"channelArn", "clientId"}``):
the viewer connected to the channel's WSS endpoint as ``clientId`` is taken into the channel's
storage session, which sends it an SDP_OFFER as if from the master; its answer and candidates go
to the session, not to the master (``signalite.media.viewers``). A node that runs no session of the
channel sends the join to the node that does (through the bus). With no session running
anywhere, one is started that offers to the master and waits for it, as AWS does ("both a video producing device
and viewers can join a session first and wait for other participants"); the call answers 200 at
once either way. Errors as for JoinStorageSession, and ClientLimitExceededException when the
session already has its maximum of viewers (3, as on AWS; the KVS JS SDK's sample does not retry
on that message).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from aiohttp import web

from .. import channel as channels
from ..aws.errors import ServiceError, invalid
from ..context import CLOCK, HUB, SETTINGS, STORE, OpContext
from ..media.library import media_root
from ..media.sessions import MAX_VIEWERS, StorageSessions, TooManyViewers
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
    channel, stream_arn = await _storage_channel(ctx, p["channelArn"])
    try:
        await ctx.resource(SESSIONS).join_viewer(channel, stream_arn, p["clientId"])
    except TooManyViewers:
        raise ServiceError("ClientLimitExceededException",
                           f"The storage session of channel {channel.name} already has the maximum number of "
                           f"viewers connected to the session ({MAX_VIEWERS}).") from None
    except RuntimeError:
        raise ServiceError("ClientLimitExceededException",
                           "The server is shutting down and starts no storage session; try again later.") from None
    return {}


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
