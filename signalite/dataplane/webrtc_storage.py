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
from typing import TYPE_CHECKING, Any, AsyncIterator

from ..aws.errors import ServiceError, invalid
from ..controlplane.common import find
from ..media.library import media_root
from ..media.sessions import StorageSessions, storage_target
from ..services import OpContext

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from ..services import Services
    from ..store import Resource


async def _storage_channel(ctx: OpContext, arn: str) -> tuple["Resource", str]:
    channel = await find(ctx, "channel", arn=arn, arn_member="channelArn")
    stream_arn = storage_target(channel)
    if stream_arn is None:
        raise invalid(f"The signaling channel {channel.name} has no media storage configured: enable it with "
                      "UpdateMediaStorageConfiguration (Status ENABLED and a StreamARN) first.")
    return channel, stream_arn


async def join_storage_session(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    channel, stream_arn = await _storage_channel(ctx, p["channelArn"])
    sessions: StorageSessions | None = ctx.services.extras.get(StorageSessions.KEY)
    if sessions is None:
        raise ServiceError("ClientLimitExceededException",
                           "The storage service of this server is not running; try again later.")
    try:
        sessions.start(channel, stream_arn)
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


def setup(app: "web.Application", services: "Services") -> None:
    """The storage sessions' lifecycle: created at start, all stopped (recordings finished) at
    shutdown, with the once-a-minute upkeep (retention, storage disabled) in between."""

    async def storage_ctx(_app: "web.Application") -> AsyncIterator[None]:
        sessions = StorageSessions(services, media_root(services.settings.data_dir).resolve())
        services.extras[StorageSessions.KEY] = sessions
        upkeep = asyncio.get_running_loop().create_task(sessions.run_upkeep())
        try:
            yield
        finally:
            upkeep.cancel()
            services.extras.pop(StorageSessions.KEY, None)
            await sessions.close()

    app.cleanup_ctx.append(storage_ctx)
