"""``signalite serve | env`` — the command-line interface of the contract in design.md."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import json
import logging
import shlex
import signal
import socket
import sys

from . import __version__
from .admin import ENDPOINT_FILE, CliError, add_admin_commands
from .aws.keys import RootCredentials, load_root_credentials
from .config import ConfigError, Settings, add_serve_arguments, settings_from, without_default_port
from .tls import TlsFiles, ensure_local_ca, ensure_local_tls, server_context

log = logging.getLogger("signalite")


def _tls_files(settings: Settings) -> TlsFiles:
    if settings.tls_cert and settings.tls_key:
        if settings.tls_san:
            log.warning("--tls-san only applies to the generated certificate; %s is used as given",
                        settings.tls_cert)
        return TlsFiles(settings.tls_cert, settings.tls_key, None)
    if settings.tls_cert or settings.tls_key:
        raise ConfigError("signalite: --tls-cert and --tls-key go together")
    return ensure_local_tls(settings.data_dir, [settings.host, settings.advertised_host, *settings.tls_san])


def _root(settings: Settings) -> RootCredentials:
    return load_root_credentials(settings.data_dir, settings.access_key_id, settings.secret_access_key,
                                 settings.account_id)


def _announce_credentials(root: RootCredentials) -> None:
    print("Signalite generated root credentials (saved in the data dir; shown only this once):", flush=True)
    print(f"  account id:        {root.account_id}", flush=True)
    print(f"  access key id:     {root.access_key_id}", flush=True)
    print(f"  secret access key: {root.secret_access_key}", flush=True)
    print('  Use them with:  eval "$(signalite env)"', flush=True)


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: one the kernel picks, with no race
    between choosing it and binding it). Bound before the application is built, so the endpoints
    it advertises carry the real port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG, reuse_port=False)
    except OSError as exc:
        raise ConfigError(_listen_error(host, port, exc)) from None


LISTEN_BACKLOG = 4096
"""Pending connections the kernel queues per listener (capped by net.core.somaxconn)."""


async def _serve(settings: Settings) -> None:
    import ssl as ssl_module

    from .app import build_app
    from .edge import guard

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    root = _root(settings)
    if root.generated:
        _announce_credentials(root)
    listeners = [_listen(settings.host, settings.port)]
    if settings.http_port is not None:
        listeners.append(_listen(settings.host, settings.http_port))
    bound = [s.getsockname()[1] for s in listeners]
    settings = dataclasses.replace(settings, port=bound[0], http_port=bound[1] if len(bound) > 1 else None)
    tls = _tls_files(settings)
    try:
        app = build_app(settings, root)
    except ValueError as exc:  # a malformed --store/--bus URL: say which, no traceback
        raise ConfigError(f"signalite: {exc}") from None
    runner = guard.runner(app)  # the header timeout is aiohttp's keep-alive timer
    try:
        await runner.setup()
    except ConnectionError as exc:  # store (or bus) unreachable at start-up: fail fast and say why
        await runner.cleanup()
        raise ConfigError(f"signalite: {exc}") from None
    except ConfigError:  # e.g. coturn or the STUN responder could not start
        await runner.cleanup()
        raise
    def site(sock: socket.socket, ssl: ssl_module.SSLContext | None) -> guard.GuardedSite:
        return guard.GuardedSite(runner, app[guard.GUARD], sock, ssl_context=ssl, backlog=settings.backlog,
                                 tls_handshake_timeout=settings.tls_handshake_timeout)

    sites = [site(listeners[0], server_context(tls))]
    if len(listeners) > 1:
        sites.append(site(listeners[1], None))
    for listener in sites:
        await listener.start()
    (settings.data_dir / ENDPOINT_FILE).write_text(json.dumps({
        "url": settings.advertised_url,
        "ca": str(tls.ca.resolve()) if tls.ca else None,
        "http_port": settings.http_port,
    }))
    print(f"Signalite {__version__} serving {settings.advertised_url}"
          + (f" (plain HTTP on port {settings.http_port})" if settings.http_port else ""), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    monitor = loop.create_task(_loop_monitor()) if _loop_log.isEnabledFor(logging.DEBUG) else None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: draining")
    from .app import drain  # noqa: PLC0415

    await drain(app)
    if monitor is not None:
        monitor.cancel()
    await runner.cleanup()


_loop_log = logging.getLogger("signalite.loop")


async def _loop_monitor(every: float = 10.0, tick: float = 0.1) -> None:
    """``--log-level debug`` only: one line per ``every`` seconds with the number of asyncio tasks
    and how late the event loop ran a timer due every ``tick`` (its lag: mean and worst), for
    bench/soak.py and for an operator chasing a stall. It costs ten timer wake-ups a second."""
    loop = asyncio.get_running_loop()
    while True:
        worst = total = 0.0
        n = 0
        start = loop.time()
        while loop.time() - start < every:
            due = loop.time() + tick
            await asyncio.sleep(tick)
            late = max(0.0, loop.time() - due)
            worst, total, n = max(worst, late), total + late, n + 1
        _loop_log.debug("loop: tasks=%d lag_mean_ms=%.2f lag_max_ms=%.2f", len(asyncio.all_tasks()),
                        1000 * total / max(n, 1), 1000 * worst)


def _listen_error(host: str, port: int, exc: OSError) -> str:
    message = f"signalite: cannot listen on TCP {host}:{port}: {exc.strerror or exc}"
    if exc.errno == errno.EACCES:
        message += ("; ports below 1024 need root or CAP_NET_BIND_SERVICE (see \"Port 443\" in "
                    "docs/devices.md: setcap, a systemd unit with AmbientCapabilities, or a port redirect)")
    return message


def _run(coro: object) -> None:
    try:
        import uvloop

        uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        asyncio.run(coro)  # type: ignore[arg-type]


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    from .logs import configure

    configure(settings.log_level, settings.log_format)
    _run(_serve(settings))
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    for key, value in env_exports(settings_from(args), vars(args)).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def env_exports(settings: Settings, given: dict[str, object] | None = None) -> dict[str, str]:
    """The variables ``signalite env`` exports for ``settings`` (``given``: the options set on
    the command line; without --port/--public-url/--host the running server's endpoint.json wins)."""
    given = given or {}
    root = _root(settings)
    saved = settings.data_dir / ENDPOINT_FILE
    url, ca = settings.advertised_url, None
    if saved.exists() and not {"port", "public_url", "host"} & given.keys():
        data = json.loads(saved.read_text())
        url, ca = without_default_port(data.get("url") or url), data.get("ca")
    if ca is None and not settings.tls_cert:
        ca = str(ensure_local_ca(settings.data_dir).resolve())
    exports = {
        "AWS_ENDPOINT_URL_KINESIS_VIDEO": url,
        "AWS_ENDPOINT_URL_IAM": url,
        "AWS_ENDPOINT_URL_STS": url,
        "AWS_ACCESS_KEY_ID": root.access_key_id,
        "AWS_SECRET_ACCESS_KEY": root.secret_access_key,
        "AWS_REGION": str(given.get("region") or settings.default_region),
        "AWS_DEFAULT_REGION": str(given.get("region") or settings.default_region),
    }
    if ca:
        exports["AWS_CA_BUNDLE"] = ca
        exports["NODE_EXTRA_CA_CERTS"] = ca
    return exports


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signalite", description=__doc__)
    parser.add_argument("--version", action="version", version=f"signalite {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    add_serve_arguments(serve)
    serve.set_defaults(func=cmd_serve)
    env = sub.add_parser("env", help="print shell exports that point AWS clients at this server")
    add_serve_arguments(env)
    env.add_argument("--region", default=None, help="region to export (default us-west-2)")
    env.set_defaults(func=cmd_env)
    add_admin_commands(sub)
    from .tracing import add_trace_command

    add_trace_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A configuration the server cannot run with (:class:`ConfigError`) or an
    admin command that failed (:class:`CliError`) is reported as its message on stderr with exit
    status 1, without a traceback; this is the only place that turns errors into exit codes."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except CliError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
