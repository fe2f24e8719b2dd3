"""The WSS signaling plane: frames → router (sans-I/O) → bus → sessions.

``frames``  parse both key casings, serialize compact lowercase frames
``router``  pure routing/retention/limits/STATUS_RESPONSE decisions (events in, actions out)
``quotas``  rate limiters as plain objects
``session`` one socket: bytes in and out
``hub``     this node's sockets, the handshake, the sweep, router ↔ bus ↔ sessions
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, AsyncIterator
from urllib.parse import urlsplit

if TYPE_CHECKING:  # pragma: no cover
    from aiohttp import web

    from ..aws.sigv4 import SigV4Verifier
    from ..services import Services


def setup(app: "web.Application", services: "Services", verifier: "SigV4Verifier") -> None:
    """Open the bus, build the hub (``services.bus``, ``services.hub``), route the WebSocket upgrade
    on ``GET /`` (and on the path of ``--public-url`` if it has one) and the admin API."""
    from ..bus import open_bus
    from ..admin import ADMIN_PATH
    from .hub import Hub

    bus = open_bus(services.settings.bus_url)
    hub = Hub(services, verifier, bus)
    services.bus = bus
    services.hub = hub

    app.router.add_get("/", hub.handle_connect)
    path = urlsplit(services.settings.advertised_url).path.rstrip("/")
    if path:
        app.router.add_get(path, hub.handle_connect)
        app.router.add_get(path + "/", hub.handle_connect)
    app.router.add_post(ADMIN_PATH, hub.handle_admin)

    async def signaling_ctx(_app: "web.Application") -> AsyncIterator[None]:
        await bus.open()
        await hub.start()
        # The service models and everything else loaded at start (~65k objects) never die; moving
        # them out of the collector's reach turns a ~16 ms full collection, which would stall every
        # socket of the node at random, into a sub-millisecond one.
        gc.collect()
        gc.freeze()
        yield
        await hub.shutdown()
        await bus.close()

    app.cleanup_ctx.append(signaling_ctx)
    app.on_shutdown.append(hub.shutdown)
