"""One live socket: moves bytes between an aiohttp ``WebSocketResponse`` and the hub. No decisions.

Outbound frames are written straight to the connection's transport as unmasked RFC 6455 text
frames (per-message deflate is not negotiated), from plain code: relaying a message costs no
coroutine, no task and no drain wait. aiohttp's own writer only sends pongs and the close frame,
each as one ``transport.write`` too, so frames never interleave. A peer that stops reading is
closed once its unsent backlog passes :data:`MAX_BACKLOG` instead of growing server memory.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

log = logging.getLogger("signalite.signaling")

MAX_BACKLOG = 8 * 1024 * 1024
"""Bytes queued in the kernel/transport for one socket before it is closed as a slow consumer."""

_closers: set[asyncio.Task[Any]] = set()


def text_frame(data: bytes) -> bytes:
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + data
    return b"\x81\x7f" + n.to_bytes(8, "big") + data


class Session:
    """The handle the router's :class:`~signalite.signaling.router.Conn` points at."""

    __slots__ = ("ws", "transport", "closing", "reason")

    def __init__(self) -> None:
        self.ws: web.WebSocketResponse | None = None
        self.transport: asyncio.Transport | None = None
        self.closing = False
        self.reason = ""
        """Why the server closed it (empty when the client did)."""

    def attach(self, ws: web.WebSocketResponse, transport: Any) -> None:
        self.ws = ws
        self.transport = transport

    def send(self, text: str) -> bool:
        """Write one text frame; False when the socket is closing or gone (nothing was written)."""
        transport = self.transport
        if transport is None or self.closing or transport.is_closing():
            return False
        ws = self.ws
        if ws is not None and ws.closed:
            return False
        transport.write(text_frame(text.encode("utf-8")))
        if transport.get_write_buffer_size() > MAX_BACKLOG:
            log.warning("closing a signaling socket that does not read its messages (slow consumer)")
            self.close(1008, "slow consumer: too many unread messages")
        return True

    def close(self, code: int, reason: str) -> None:
        if self.closing or self.ws is None:
            return
        self.closing = True
        self.reason = reason
        task = asyncio.get_running_loop().create_task(self._close(code, reason))
        _closers.add(task)
        task.add_done_callback(_closers.discard)

    async def _close(self, code: int, reason: str) -> None:
        assert self.ws is not None
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode("utf-8")[:120]), 5)
        except Exception:  # the peer vanished mid-close: drop the transport
            if self.transport is not None:
                self.transport.abort()
