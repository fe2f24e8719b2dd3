"""The WSS signaling plane: frames → router (sans-I/O) → bus → sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from ..aws.sigv4 import SigV4Verifier
    from ..services import Services


def setup(app: "web.Application", services: "Services", verifier: "SigV4Verifier") -> None:
    """Register the WebSocket endpoint and the hub's lifecycle on ``app``. (Placeholder until the
    signaling issue lands: nothing is registered, so GET / answers the REST edge's 404.)"""
