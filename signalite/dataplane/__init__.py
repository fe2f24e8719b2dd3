"""Operations of the HTTPS data plane (``kinesis-video-signaling``, ``kinesis-video-webrtc-storage``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from ..services import Services

MODULES: list = []


def setup(app: "web.Application", services: "Services") -> None:
    """Attach data-plane lifecycles (ICE provider, embedded STUN, supervised coturn) to ``app``."""
