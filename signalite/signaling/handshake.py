"""The WSS handshake decision, without sockets: who may connect to which channel, as what.

The hub authenticates the presigned URL, looks the channel up, and asks :func:`admit`; it only
carries out the answer (upgrade, or an HTTP error in AWS form). The limits that depend on who
else is connected (viewers per channel, connects per second) are the router's, at
:meth:`~signalite.signaling.router.Router.connect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

from .. import channel as channels
from ..aws.principal import Principal
from ..aws.sigv4 import AuthError
from ..store import Resource
from . import frames

CHANNEL_ARN = "X-Amz-ChannelARN"
CLIENT_ID = "X-Amz-ClientId"


@dataclass(frozen=True, slots=True)
class Accept:
    arn: str
    client_id: str | None
    """None for ConnectAsMaster (the presigned URL has no X-Amz-ClientId)."""
    ttl: int
    """The channel's MessageTtlSeconds."""

    @property
    def is_master(self) -> bool:
        return self.client_id is None


@dataclass(frozen=True, slots=True)
class Refuse:
    status: int
    code: str
    message: str


Decision = Union[Accept, Refuse]


def channel_arn(query: Mapping[str, str]) -> str | None:
    """The ARN the client asks for (what the hub looks up before :func:`admit`)."""
    return query.get(CHANNEL_ARN) or None


def admit(query: Mapping[str, str], principal: Principal, channel: Resource | None, now: float) -> Decision:
    """Whether ``principal`` may connect as the presigned ``query`` asks.

    ``channel`` is the store's record for :func:`channel_arn` (None if there is none); ``now`` is
    the request time, for decisions that depend on it (time-bound credentials).
    """
    arn = channel_arn(query)
    if arn is None:
        return Refuse(400, "InvalidArgumentException", f"{CHANNEL_ARN} is required.")
    client_id = query.get(CLIENT_ID)
    if client_id is not None and not frames.valid_client_id(client_id):
        return Refuse(400, "InvalidArgumentException",
                      f"{CLIENT_ID} must be 1 to 256 characters of [a-zA-Z0-9_.-] and must not start with AWS_.")
    if channel is None or channel.arn != arn or not channels.usable(channel, principal.account_id, principal.region):
        return Refuse(404, "ResourceNotFoundException", channels.NOT_FOUND)
    return Accept(arn, client_id, channels.message_ttl(channel))


def refuse_auth(exc: AuthError) -> Refuse:
    """A failed presigned-URL check, as the handshake answers it: 403 AccessDeniedException for a
    bad or unknown signature (what the KVS SDKs see from AWS), 400 for a malformed query."""
    if exc.status == 403:
        return Refuse(403, "AccessDeniedException", exc.message)
    return Refuse(exc.status, "InvalidArgumentException", exc.message)
