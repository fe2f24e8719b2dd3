"""GetIceServerConfig (``POST /v1/get-ice-server-config``) and the ICE provider behind it.

Where the servers come from, in this order (at most 5 entries, 1..4 URIs each, never empty):

1. ``--turn``: a coturn started and supervised by Signalite on ``--turn-port``, with
   ``--turn-secret`` or a generated secret. It reuses the HTTPS certificate, so one entry carries
   AWS's three URI forms ``turn:…?transport=udp``, ``turns:…?transport=udp``,
   ``turns:…?transport=tcp`` plus ``turn:…?transport=tcp``, all on that one port (coturn tells
   TLS/DTLS from plain TURN);
2. ``--turn-uri`` (comma-separated) with ``--turn-secret``: external TURN servers in coturn's
   ``use-auth-secret`` mode, grouped into one entry per host;
3. neither: the embedded STUN responder, returned as ``stun:<host>:<stun-port>`` with no
   Username/Password (the model does not require them; the C SDK and browsers ignore credentials
   on ``stun:`` URIs). The KVS C SDK accepts ``stun:`` URIs in IceServerList and fails on an empty
   list, which is why there is always at least this entry.

TURN entries carry TURN REST credentials (see ``turn.py``) that expire after ``--turn-ttl``
seconds (default 300, as AWS; 31..86400), returned as the entry's integer ``Ttl``. The credential
id is the request's ``Username``, else its ``ClientId``, else the channel name: all three already
match ``[a-zA-Z0-9_.-]+``, and coturn logs it, so an allocation can be traced to its client.

The call needs no WebSocket: the C SDK calls it before connecting and the JS examples without a
ClientId. It only checks that the channel exists in the caller's account and region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import channel as channels
from ..clock import Clock
from ..context import OpContext
from .turn import MAX_FIELD, MAX_SERVERS, IceServerGroup

SERVICE = "TURN"


@dataclass
class IceProvider:
    groups: list[IceServerGroup]
    ttl: int
    clock: Clock

    def ice_servers(self, ident: str) -> list[dict[str, Any]]:
        now = self.clock.now()
        room = MAX_FIELD - len(str(int(now) + self.ttl)) - 1
        return [g.entry(ident[:room], self.ttl, now) for g in self.groups[:MAX_SERVERS]]


async def get_ice_server_config(ctx: OpContext, p: dict[str, Any]) -> dict[str, Any]:
    channel = await channels.get(ctx.store, p["ChannelARN"], ctx.account, ctx.region)
    ident = p.get("Username") or p.get("ClientId") or channel.name
    return {"IceServerList": ctx.ice.ice_servers(ident)}


OPERATIONS = {"GetIceServerConfig": get_ice_server_config}
