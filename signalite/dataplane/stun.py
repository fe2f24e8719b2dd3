"""The embedded STUN responder (RFC 5389 Binding over UDP), built on aioice's STUN message code.

GetIceServerConfig must never return an empty list (the KVS C SDK fails on one), so when no TURN
server is configured Signalite answers Binding requests itself and returns a ``stun:`` URI. The
responder is stateless: every Binding request gets a success response with XOR-MAPPED-ADDRESS (and
MAPPED-ADDRESS for RFC 3489 clients) and FINGERPRINT; other STUN requests get 400 and everything
that is not STUN is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from aioice import stun

log = logging.getLogger("signalite.stun")
SOFTWARE = "signalite"


def _is_ipv6(addr: tuple[Any, ...]) -> bool:
    return ":" in addr[0]


class StunResponder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        response = self.respond(data, addr)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)

    def respond(self, data: bytes, addr: tuple[Any, ...]) -> bytes | None:
        # RFC 5389 §6: the two top bits of a STUN message are zero; the magic cookie is checked by
        # the length/format checks of parse_message (a message without it is not ours to answer).
        if len(data) < stun.HEADER_LENGTH or data[0] & 0xC0 or data[4:8] != stun.COOKIE.to_bytes(4, "big"):
            return None
        try:
            request = stun.parse_message(data)
        except ValueError:
            return None
        if request.message_class != stun.Class.REQUEST:
            return None  # indications and responses are never answered
        mapped = (addr[0], addr[1])
        if request.message_method == stun.Method.BINDING:
            response = stun.Message(stun.Method.BINDING, stun.Class.RESPONSE, request.transaction_id)
            response.attributes["XOR-MAPPED-ADDRESS"] = mapped
            response.attributes["MAPPED-ADDRESS"] = mapped
        else:
            response = stun.Message(request.message_method, stun.Class.ERROR, request.transaction_id)
            response.attributes["ERROR-CODE"] = (400, "Bad Request: this server answers Binding only")
        response.attributes["SOFTWARE"] = SOFTWARE
        response.add_fingerprint()
        self.answered += 1
        return bytes(response)

    def error_received(self, exc: Exception) -> None:  # ICMP errors from unreachable clients
        log.debug("STUN socket error: %s", exc)


async def start_responder(host: str, port: int) -> tuple[asyncio.DatagramTransport, StunResponder]:
    """Bind the responder on ``host:port`` (``port`` 0 picks a free one)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    transport, protocol = await loop.create_datagram_endpoint(
        StunResponder, local_addr=(host, port), family=family)
    return transport, protocol


class _Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.responses: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.responses.put_nowait(data)


async def binding_request(host: str, port: int, timeout: float = 1.0) -> tuple[str, int] | None:
    """Send one Binding request to ``host:port``; the XOR-MAPPED-ADDRESS, or None on no answer.
    Used to wait for a local TURN server (coturn answers Binding without credentials)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    transport, client = await loop.create_datagram_endpoint(_Client, remote_addr=(host, port), family=family)
    try:
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        request.add_fingerprint()
        transport.sendto(bytes(request))
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                data = await asyncio.wait_for(client.responses.get(), remaining)
            except TimeoutError:
                return None
            try:
                response = stun.parse_message(data)
            except ValueError:
                continue
            if response.transaction_id == request.transaction_id and response.message_class == stun.Class.RESPONSE:
                return response.attributes.get("XOR-MAPPED-ADDRESS")
    finally:
        transport.close()
