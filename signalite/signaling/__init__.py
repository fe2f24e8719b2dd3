"""The WSS signaling plane: frames → router (sans-I/O) → bus → sessions.

``frames``    parse both key casings, serialize compact lowercase frames
``router``    pure routing/retention/limits/STATUS_RESPONSE decisions (events in, actions out)
``handshake`` the pure connect decision (who may connect to which channel, as what)
``quotas``    rate limiters as plain objects
``session``   one socket: bytes in and out
``hub``       this node's sockets, the handshake's I/O, the sweep, router ↔ bus ↔ sessions
"""

from __future__ import annotations

import gc
from typing import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from .. import metrics
from ..aws.wire import ServiceWire
from ..bus import open_bus
from ..context import BUS, CLOCK, HUB, SETTINGS, STORE
from ..edge.auth import Authenticator
from ..identity.authorize import AUTHORIZER
from ..store.cache import CachingStore
from .hub import Hub, _NotStarted


def setup(app: web.Application, auth: Authenticator, errors: ServiceWire) -> None:
    """Route the WebSocket upgrade on ``GET /`` (and on the path of ``--public-url`` if it has
    one), and open the bus (``app[BUS]``) and the hub (``app[HUB]``) with the application."""
    settings = app[SETTINGS]
    hub = Hub(settings, auth, app[CLOCK], errors, app[metrics.EDGE_STATS], app[AUTHORIZER])
    app[metrics.REGISTRY].register(metrics.RouterCollector(
        lambda: hub.router, lambda: None if isinstance(hub.bus, _NotStarted) else hub.bus.retained_count()))
    connect = hub.handle_connect
    app.router.add_get("/", connect)
    path = urlsplit(settings.advertised_url).path.rstrip("/")
    if path:
        app.router.add_get(path, connect)
        app.router.add_get(path + "/", connect)

    async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
        bus = open_bus(settings.bus_url, app[CLOCK], settings.node_id)
        await bus.open()
        app[BUS] = bus
        store = app[STORE]
        if isinstance(store, CachingStore):
            store.attach(bus)  # channel records cached per node, invalidated over the bus
        yield
        await bus.close()

    async def hub_ctx(app: web.Application) -> AsyncIterator[None]:
        await hub.start(app[STORE], app[BUS])
        app[HUB] = hub
        # The service models and everything else loaded at start (~65k objects) never die; moving
        # them out of the collector's reach turns a ~16 ms full collection, which would stall every
        # socket of the node at random, into a sub-millisecond one.
        gc.collect()
        gc.freeze()
        yield
        await hub.shutdown()

    app.cleanup_ctx.append(bus_ctx)
    app.cleanup_ctx.append(hub_ctx)
    app.on_shutdown.append(hub.shutdown)
