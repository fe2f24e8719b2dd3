"""SendAlexaOfferToMaster (``POST /v1/send-alexa-offer-to-master``).

The offer is delivered to the channel's master as an ``SDP_OFFER`` whose ``senderClientId`` is the
request's ``SenderClientId`` (through a *virtual viewer* of the signaling hub, so routing, TTL
retention for an offline master and replacement of an older viewer with the same id are exactly
those of a WebSocket viewer), and the call blocks until the master sends an ``SDP_ANSWER`` to that
client id; the answer's ``messagePayload`` is returned as ``Answer``. ICE candidates the master
trickles to the virtual viewer are dropped (Alexa's offers and answers carry their candidates).

Bounded wait: ``min(channel MessageTtlSeconds, 30 s)``. The TTL is how long the offer stays
deliverable to a master that is offline (AWS: "redelivery requests are made until the message
expires"), so waiting longer could only wait for an answer to an offer that was dropped; 30 s keeps
the call well inside the 60 s read timeout of botocore and the AWS CLI, whose retry on a timeout
would otherwise send the offer again.

No answer in time → ``ClientLimitExceededException`` (400) with a message naming the channel, the
sender and the wait. Of the four modeled errors it is the only one whose documented advice ("try
making the call later") is what the caller can do: the request itself was valid (not
InvalidArgument), the channel exists (a ResourceNotFound would make SDKs drop or re-create it) and
the caller is authorised (not NotAuthorized). botocore does not retry it automatically, so the
offer is not re-sent behind the caller's back.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import channel as channels
from ..aws.errors import ServiceError
from ..context import SETTINGS, OpContext
from ..signaling.quotas import TokenBucket

MAX_WAIT_SECONDS = 30.0
CHANNEL_TPS = 5.0
ACCOUNT_TPS = 100.0
"""AWS quotas of SendAlexaOfferToMaster (per channel, per account and region); ``--quotas aws``
only, counted per node."""


class AlexaLimits:
    """The per-channel and per-account call rates of SendAlexaOfferToMaster (``None``: no limit)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, account: str, region: str, arn: str, now: float) -> None:
        if not self.enabled:
            return
        buckets = self._buckets
        if len(buckets) > 10_000:  # forget idle channels
            for key in [k for k, b in buckets.items() if now - b.stamp > 60]:
                del buckets[key]
        for key, rate, what in ((f"account:{account}:{region}", ACCOUNT_TPS, "this account and region"),
                                (f"channel:{arn}", CHANNEL_TPS, "this channel")):
            bucket = buckets.get(key)
            if bucket is None:
                bucket = buckets[key] = TokenBucket(rate, now)
            if not bucket.take(now):
                raise ServiceError("ClientLimitExceededException",
                                   f"SendAlexaOfferToMaster is limited to {rate:g} calls per second for {what}; "
                                   "try again later.")


LIMITS = web.AppKey("alexa_limits", AlexaLimits)


def setup(app: web.Application) -> None:
    app[LIMITS] = AlexaLimits(app[SETTINGS].quotas_profile == "aws")


def answer_wait(ttl_seconds: int) -> float:
    return float(min(ttl_seconds, MAX_WAIT_SECONDS))


def _get(frame: dict[str, Any], key: str) -> Any:
    """Hub frames use lowercase keys; tolerate the capitalised form too."""
    return frame.get(key, frame.get(key[:1].upper() + key[1:]))


async def send_alexa_offer_to_master(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    channel = await channels.get(ctx.store, p["ChannelARN"], ctx.account, ctx.region)
    sender = p["SenderClientId"]
    wait = answer_wait(channels.message_ttl(channel))
    clock = ctx.clock
    deadline = clock.now() + wait
    ctx.resource(LIMITS).check(ctx.account, ctx.region, channel.arn, clock.now())
    try:
        peer = await ctx.signaling.open_virtual_viewer(channel, sender)
    except LookupError:  # deleted between the lookup and the connect
        raise channels.not_found() from None
    try:
        await peer.send("SDP_OFFER", p["MessagePayload"])
        while True:
            remaining = deadline - clock.now()
            if remaining <= 0:
                break
            frame = await peer.receive(remaining)
            if frame is None:
                break
            kind = _get(frame, "messageType")
            if kind == "SDP_ANSWER" and _get(frame, "messagePayload"):
                return {"Answer": _get(frame, "messagePayload")}
            if kind == "GO_AWAY":
                break
            if kind == "STATUS_RESPONSE":
                status = _get(frame, "statusResponse") or {}
                code = status.get("errorType")
                raise ServiceError(
                    code if code in ("InvalidArgumentException", "ClientLimitExceededException")
                    else "ClientLimitExceededException",
                    f"The offer could not be delivered to the master of channel {channel.name}: "
                    f"{status.get('description') or status.get('errorType') or 'refused'}.")
            # ICE_CANDIDATE, SDP_OFFER from the master, unknown types: not an answer; keep waiting.
    finally:
        await peer.close()
    raise ServiceError(
        "ClientLimitExceededException",
        f"The master of channel {channel.name} did not answer the offer from {sender} within {wait:g} s "
        f"(the wait is min(MessageTtlSeconds, {MAX_WAIT_SECONDS:g} s)); it is not connected or sent no "
        "SDP_ANSWER. Try again later.")


OPERATIONS = {"SendAlexaOfferToMaster": send_alexa_offer_to_master}
