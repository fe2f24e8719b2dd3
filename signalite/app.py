"""Builds the aiohttp application: store, keys, SigV4, the REST edge and the signaling plane.

One ``web.Application`` per server; everything mutable lives in it (``app[SERVICES]``) and is
opened and closed by cleanup contexts, so tests can build as many servers as they like.
"""

from __future__ import annotations

import json
from typing import AsyncIterator

from aiohttp import web

from . import controlplane, dataplane
from .aws.keys import KeyRing, RootCredentials
from .aws.sigv4 import SigV4Verifier
from .aws.wire import Wire
from .config import Settings
from .edge.rest import RestEdge, operation_table
from .services import Services
from .store import open_store

SERVICES = web.AppKey("services", Services)
VERIFIER = web.AppKey("verifier", SigV4Verifier)
WIRE = web.AppKey("wire", Wire)


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    checks: dict[str, str] = {}
    try:
        await services.store.ping()
        checks["store"] = "ok"
    except Exception as exc:  # readiness reports, it does not raise
        checks["store"] = f"error: {exc}"
    if services.bus is not None:
        try:
            await services.bus.ping()
            checks["bus"] = "ok"
        except Exception as exc:
            checks["bus"] = f"error: {exc}"
    ok = all(v == "ok" for v in checks.values())
    return web.Response(status=200 if ok else 503, content_type="application/json",
                        text=json.dumps({"status": "ready" if ok else "not ready", **checks}))


def build_app(settings: Settings, root: RootCredentials) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    services = Services(settings=settings, store=open_store(settings.store_url), keys=KeyRing(root))
    wire = Wire()
    verifier = SigV4Verifier(services.keys.lookup, skew_seconds=settings.clock_skew_seconds)
    app[SERVICES] = services
    app[WIRE] = wire
    app[VERIFIER] = verifier

    async def store_ctx(_app: web.Application) -> AsyncIterator[None]:
        await services.store.open()
        yield
        await services.store.close()

    app.cleanup_ctx.append(store_ctx)

    operations = operation_table(*controlplane.MODULES, *dataplane.MODULES)
    edge = RestEdge(services, wire, verifier, operations)
    app.router.add_get("/health", _health)
    app.router.add_get("/ready", _ready)

    # The signaling plane (WSS upgrade on GET /) registers itself here once it exists.
    from .signaling import setup as signaling_setup  # noqa: PLC0415 - keeps the import graph one-way

    signaling_setup(app, services, verifier)
    dataplane.setup(app, services)

    # Every operation path as an exact route (found by a dict lookup in aiohttp's resource index
    # instead of a regex match), after the signaling routes so a --public-url path that equals one
    # still reaches the hub on GET; the catch-all keeps answering every other path in AWS form.
    for path in wire.routes:
        app.router.add_route("OPTIONS", path, edge.preflight)
        app.router.add_route("*", path, edge.handle)
    app.router.add_route("OPTIONS", "/{tail:.*}", edge.preflight)
    app.router.add_route("*", "/{tail:.*}", edge.handle)
    return app
