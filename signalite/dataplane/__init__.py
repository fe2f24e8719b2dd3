"""Operations of the HTTPS data plane (``kinesis-video-signaling``, ``kinesis-video-webrtc-storage``)
and the ICE services behind GetIceServerConfig (embedded STUN responder, supervised coturn)."""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator

from aiohttp import web

from ..config import ConfigError
from ..context import CLOCK, ICE, SETTINGS
from . import alexa, ice, webrtc_storage
from .coturn import INSTALL_HINT, Coturn, CoturnUnavailable, find_turnserver, load_or_create_secret
from .ice import IceProvider
from .stun import start_responder
from .turn import MAX_SERVERS, MAX_TTL, MIN_TTL, IceServerGroup, group_uris

if TYPE_CHECKING:  # pragma: no cover
    from ..config import Settings

log = logging.getLogger("signalite.ice")
MODULES = [ice, alexa, webrtc_storage]


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _tls_files(settings: "Settings") -> tuple[Path, Path] | None:
    """The HTTPS certificate and key, which coturn reuses for turns: (same host name)."""
    if settings.tls_cert and settings.tls_key:
        pair = (settings.tls_cert, settings.tls_key)
    else:
        pair = (settings.data_dir / "tls" / "server.pem", settings.data_dir / "tls" / "server.key")
    return (pair[0].resolve(), pair[1].resolve()) if pair[0].exists() and pair[1].exists() else None


def check_ice_settings(settings: "Settings") -> None:
    """Refuse a configuration that could only fail later, with a message that says what to do
    (:class:`ConfigError`, which ``signalite serve`` reports without a traceback)."""
    if not MIN_TTL <= settings.turn_ttl <= MAX_TTL:
        raise ConfigError(f"signalite: --turn-ttl must be between {MIN_TTL} and {MAX_TTL} seconds "
                          f"(the KVS C SDK needs more than 30), not {settings.turn_ttl}")
    if settings.turn_uris and not settings.turn_secret:
        raise ConfigError("signalite: --turn-uri needs --turn-secret, the static-auth-secret of the TURN "
                          "server(s) (coturn --use-auth-secret)")
    try:
        group_uris(settings.turn_uris, settings.turn_secret)
    except ValueError as exc:
        raise ConfigError(f"signalite: --turn-uri: {exc}") from None
    if settings.run_turn and find_turnserver(settings.turnserver) is None:
        where = f"{settings.turnserver} is not an executable" if settings.turnserver else "it is not installed"
        raise ConfigError(f"signalite: --turn needs coturn's turnserver, but {where}; {INSTALL_HINT}")


def setup(app: web.Application) -> None:
    """Attach data-plane lifecycles (ICE provider ``app[ICE]``, embedded STUN, supervised coturn,
    storage sessions) and the Alexa rate limits to ``app``."""
    settings = app[SETTINGS]
    check_ice_settings(settings)
    alexa.setup(app)

    async def ice_ctx(app: web.Application) -> AsyncIterator[None]:
        groups: list[IceServerGroup] = []
        coturn: Coturn | None = None
        stun_transport = None
        try:
            if settings.run_turn:
                binary = find_turnserver(settings.turnserver)
                assert binary is not None  # checked above
                directory = settings.data_dir / "turn"
                secret = settings.turn_secret or load_or_create_secret(directory)
                tls = _tls_files(settings)
                coturn = Coturn(binary, directory, secret, settings.host, settings.turn_port, tls=tls)
                try:
                    await coturn.start()
                except CoturnUnavailable as exc:
                    coturn = None
                    raise ConfigError(f"signalite: --turn: {exc}") from None
                host = _uri_host(settings.advertised_host)
                base = f"{host}:{settings.turn_port}"
                uris = [f"turn:{base}?transport=udp", f"turn:{base}?transport=tcp"]
                if tls:  # AWS's three (turn udp, turns udp, turns tcp) plus plain TCP
                    uris = [uris[0], f"turns:{base}?transport=udp", f"turns:{base}?transport=tcp", uris[1]]
                groups += group_uris(uris, secret)
            groups += group_uris(settings.turn_uris, settings.turn_secret)
            if len(groups) > MAX_SERVERS:
                log.warning("%d ICE server entries configured; GetIceServerConfig returns the first %d "
                            "(clients use at most %d)", len(groups), MAX_SERVERS, MAX_SERVERS)
            if not groups:
                port = settings.stun_port if settings.stun_port is not None else settings.port
                try:
                    stun_transport, _ = await start_responder(settings.host, port)
                except OSError as exc:
                    why = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc  # uvloop wraps the bind error
                    if settings.stun_port is not None or why.errno != errno.EADDRINUSE:
                        hint = (" (ports below 1024 need root or CAP_NET_BIND_SERVICE: see \"Port 443\" in "
                                "docs/devices.md)" if why.errno == errno.EACCES else "")
                        raise ConfigError(f"signalite: the STUN responder cannot listen on UDP "
                                          f"{settings.host}:{port}: {why.strerror or why}{hint}; "
                                          f"choose another --stun-port") from None
                    log.warning("UDP port %d is in use; the STUN responder takes a free port instead", port)
                    stun_transport, _ = await start_responder(settings.host, 0)
                bound = stun_transport.get_extra_info("sockname")[1]
                groups.append(IceServerGroup((f"stun:{_uri_host(settings.advertised_host)}:{bound}",)))
                log.info("STUN responder on udp %s:%d", settings.host, bound)
            app[ICE] = IceProvider(groups, settings.turn_ttl, app[CLOCK])
            yield
        finally:
            if stun_transport is not None:
                stun_transport.close()
            if coturn is not None:
                await coturn.stop()

    app.cleanup_ctx.append(ice_ctx)
    webrtc_storage.setup(app)
