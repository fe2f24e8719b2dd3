"""The operator's API (``signalite admin …``): an operation module like the AWS planes'.

Its wire form is a service model of our own in botocore's format (``signalite-admin-*.json``
beside this file), so the REST edge parses, validates, serializes and renders its errors exactly
as it does for the AWS services. Requests are SigV4-signed with the signing name
``kinesisvideo``; only the server's root key may use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.model import ServiceModel

from .. import channel as channels
from ..aws.errors import ServiceError
from ..context import KEYS, OpContext
from ..identity import accounts
from ..identity.service import IDENTITY

SERVICE = "signalite-admin"
MODEL_FILE = Path(__file__).with_name("signalite-admin-2026-12-01.json")


def service_model() -> ServiceModel:
    return ServiceModel(json.loads(MODEL_FILE.read_text()), service_name=SERVICE)


def require_root(ctx: OpContext) -> None:
    root = ctx.resource(KEYS).root
    if not ctx.principal.is_root or ctx.principal.account_id != root.account_id:
        raise ServiceError("AccessDeniedException", "Only the root key may use the admin API.")


async def _channel(ctx: OpContext, arn: str) -> None:
    """The channel must exist (in any account: the root key operates the whole server)."""
    resource = await ctx.store.get_by_arn(arn)
    if resource is None or resource.kind != channels.KIND:
        raise channels.not_found()


async def send_go_away(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    require_root(ctx)
    arn = p["ChannelARN"]
    await _channel(ctx, arn)
    kind = p.get("Type", "GO_AWAY")
    count = ctx.signaling.go_away(arn, reconnect_ice_server=kind == "RECONNECT_ICE_SERVER")
    return {"ChannelARN": arn, "Type": kind, "Connections": count}


async def disconnect_client(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    require_root(ctx)
    arn = p["ChannelARN"]
    await _channel(ctx, arn)
    here = ctx.signaling.disconnect_client(arn, p.get("ClientId"))
    return {"ChannelARN": arn, "ClientId": p.get("ClientId"), "ConnectedHere": here}


async def create_account(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    """A new account and its root key (``signalite admin create-account``)."""
    require_root(ctx)
    try:
        account, key_id, secret = await accounts.create(ctx.store, ctx.resource(IDENTITY), float(int(ctx.clock.now())),
                                                        p.get("AccountId"))
    except accounts.AccountExists:
        raise ServiceError("ResourceInUseException", f"The account {p.get('AccountId')} already exists.") from None
    return {"AccountId": account, "AccessKeyId": key_id, "SecretAccessKey": secret}


async def list_live_channels(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    require_root(ctx)
    return {"Channels": await ctx.signaling.live_channels()}


async def list_clients(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    require_root(ctx)
    await _channel(ctx, p["ChannelARN"])
    return {"Clients": await ctx.signaling.clients(p["ChannelARN"])}


OPERATIONS = {"SendGoAway": send_go_away, "DisconnectClient": disconnect_client,
              "ListLiveChannels": list_live_channels, "ListClients": list_clients, "CreateAccount": create_account}
