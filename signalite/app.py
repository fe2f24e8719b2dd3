"""Builds the aiohttp application: settings, clock, keys, store, bus, hub, ICE, identity, and the
routes.

One ``web.Application`` per server; every resource lives in it under its typed key
(``signalite.context``) and is opened and closed by its own cleanup context, in dependency
order (store, bus, hub, ICE, identity), so tests can build as many servers as they like.
"""

from __future__ import annotations

import json
from typing import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web

from . import console, controlplane, dataplane, metrics, operator, signaling
from .aws.keys import KeyRing, RootCredentials
from .aws.sigv4 import SigV4Verifier
from .aws.wire import Wire
from .clock import Clock, SystemClock
from .config import Settings
from .context import BUS, CLOCK, HUB, KEYS, SETTINGS, STORE
from .edge.auth import Authenticator
from .edge.guard import Guard, install
from .edge.rest import RestEdge, operation_table
from .identity import iam, service, sts
from .identity.authorize import AUTHORIZER, Authorizer
from .identity.crypto import ServerKey
from .identity.keys import AccessKeys
from .operator import trace
from .store import open_store
from .store.cache import CachingStore


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _ready(request: web.Request) -> web.Response:
    app = request.app
    checks: dict[str, str] = {}
    try:
        await app[STORE].ping()
        checks["store"] = "ok"
    except Exception as exc:  # readiness reports, it does not raise
        checks["store"] = f"error: {exc}"
    try:
        await app[BUS].ping()
        checks["bus"] = "ok"
    except Exception as exc:
        checks["bus"] = f"error: {exc}"
    if app[HUB].draining:
        checks["node"] = "draining"
    ok = all(v == "ok" for v in checks.values())
    return web.Response(status=200 if ok else 503, content_type="application/json",
                        text=json.dumps({"status": "ready" if ok else "not ready", **checks}))


async def drain(app: web.Application) -> None:
    """SIGTERM: stop taking connections (``/ready`` 503, WSS connects 503) and close this node's
    sockets over at most ``--drain-timeout`` seconds, before the listeners close."""
    await app[HUB].drain(app[SETTINGS].drain_timeout)


def build_app(settings: Settings, root: RootCredentials, clock: Clock | None = None) -> web.Application:
    """The server for ``settings``, its root key ``root``, on ``clock`` (default: the system's)."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    clock = clock or SystemClock()
    keys = KeyRing(root)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[KEYS] = keys
    # A malformed --store URL fails here, before any I/O; the cache is kept right by the bus.
    store = CachingStore(open_store(settings.store_url))

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        app[STORE] = store
        yield
        await store.close()

    app.cleanup_ctx.append(store_ctx)

    registry, edge_stats = metrics.new_registry(), metrics.EdgeStats()
    registry.register(metrics.EdgeCollector(edge_stats))
    app[metrics.REGISTRY] = registry
    app[metrics.EDGE_STATS] = edge_stats

    wire = Wire(extra=(operator.service_model(),))
    access_keys = AccessKeys(root, ServerKey.from_settings(settings.server_key, root.secret_access_key), clock,
                             cache_seconds=settings.identity_cache_seconds)
    app[AUTHORIZER] = Authorizer(store, clock, cache_seconds=settings.identity_cache_seconds)
    auth = Authenticator(SigV4Verifier(skew_seconds=settings.clock_skew_seconds, clock=clock), access_keys)
    install(app, Guard(settings, wire))  # timeouts and per-address limits (edge/guard.py)
    operations = operation_table(*controlplane.MODULES, *dataplane.MODULES, operator)
    edge = RestEdge(wire, auth, operations, settings.max_body_bytes, edge_stats,
                    query_operations={"iam": iam.OPERATIONS, "sts": sts.OPERATIONS})
    app.router.add_get("/health", _health)
    app.router.add_get("/ready", _ready)
    if settings.metrics:
        app.router.add_get("/metrics", metrics.handle_metrics)

    signaling.setup(app, auth, wire.control_plane)  # the bus and the hub, after the store
    trace.setup(app, auth, wire.control_plane)
    dataplane.setup(app)
    console.setup(app)  # /console and its assets (the landing page of GET / is the hub's)
    service.setup(app, access_keys)  # identity, after the store and the bus

    # IAM and STS (the query protocol) at POST / (and at the --public-url path); GET / stays the
    # WSS upgrade.
    public_path = urlsplit(settings.advertised_url).path.rstrip("/")
    for path in ("/", *((public_path, public_path + "/") if public_path else ())):
        app.router.add_route("POST", path, edge.handle_query)

    # Every operation path as an exact route (found by a dict lookup in aiohttp's resource index
    # instead of a regex match), after the signaling routes so a --public-url path that equals one
    # still reaches the hub on GET; the catch-all keeps answering every other path in AWS form.
    for path in wire.routes:
        app.router.add_route("OPTIONS", path, edge.preflight)
        app.router.add_route("*", path, edge.handle)
    app.router.add_route("OPTIONS", "/{tail:.*}", edge.preflight)
    app.router.add_route("*", "/{tail:.*}", edge.handle)
    return app
