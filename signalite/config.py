"""One Settings object for the whole server, built from one table of options.

Each option is declared once, as metadata on a field of :class:`Settings` or :class:`Quotas`
(:func:`option`): its flag, its environment variable ``SIGNALITE_<NAME>``, its default (the
field's default), its type (the field's annotation) and its help. The argparse arguments
(:func:`add_serve_arguments`), the parsing of the environment and the ``Settings`` object
(:func:`settings_from`) are all derived from that table (:data:`OPTIONS`), so an option cannot
exist in one of them and be missing from another. A flag given on the command line wins over
the environment, which wins over the default. Nothing else in the code reads ``os.environ`` for
configuration, so a test can build any server from a plain ``Settings(...)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import ipaddress
import os
import re
import socket
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

QUOTA_PROFILES = ("aws", "relaxed")
ENV_PREFIX = "SIGNALITE_"
_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}
_META = "signalite.option"


class ConfigError(Exception):
    """A configuration the server cannot run with. ``cli.main`` prints the message (which names
    the flag or variable and what to do) and exits 1, without a traceback."""


# --- value parsers: a string from a flag or the environment to a typed value --------------------
# Each raises ValueError with a message that completes "--flag: ..." / "SIGNALITE_X: ...".

def _int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not an integer") from None


def _float(raw: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not a number") from None


def _port(raw: str) -> int:
    value = _int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(f"{value} is not a port number (0-65535)")
    return value


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def _list(raw: str) -> tuple[str, ...]:
    """A comma-separated list; blanks around items and empty items are dropped."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _count(raw: str) -> int:
    value = _int(raw)
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


def _limit(raw: str) -> float | None:
    """A rate or a duration where 0 means "no limit" (returned as ``None``)."""
    value = _float(raw)
    if value < 0:
        raise ValueError(f"{raw.strip()} is negative (0 means no limit)")
    return value or None


def _seconds(raw: str) -> float:
    value = _float(raw)
    if value < 0:
        raise ValueError(f"{raw.strip()} is negative")
    return value


def _positive(raw: str) -> float:
    value = _float(raw)
    if not value > 0:
        raise ValueError(f"{raw.strip()} is not a positive number of seconds")
    return value


def _backlog(raw: str) -> int:
    value = _int(raw)
    if value < 1:
        raise ValueError(f"{value} is not a positive backlog")
    return value


def _count_limit(raw: str) -> int | None:
    """A count where 0 means "no limit" (returned as ``None``)."""
    return _count(raw) or None


def _account_id(raw: str) -> str:
    value = raw.strip()
    if not (len(value) == 12 and value.isdigit()):
        raise ValueError("must be exactly 12 digits")
    return value


def without_default_port(url: str) -> str:
    """``url`` without its scheme's default port (``https://h:443/p`` → ``https://h/p``) and
    without a trailing slash; anything else is kept as given. The KVS C SDK refuses any URL that
    carries a port, and a client signs the Host it derives from the URL, so every URL Signalite
    advertises, saves or calls goes through here."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if parts.port is not None and parts.port == _DEFAULT_PORTS.get(scheme):
        netloc = netloc[: netloc.rfind(":")]
    return urlunsplit((scheme, netloc, parts.path.rstrip("/"), parts.query, parts.fragment))


def _public_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    try:
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise ValueError(f"{raw!r} has an invalid port") from None
    if parts.scheme.lower() not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{raw!r} is not an https:// (or http://) URL with a host name, "
                         "like https://signalite.example")
    if parts.query or parts.fragment:
        raise ValueError(f"{raw!r} has a query or fragment; give a base URL")
    return raw.strip()


_DNS_NAME = re.compile(r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                       r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$")


def _san_names(raw: str) -> tuple[str, ...]:
    names = _list(raw)
    for name in names:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            if len(name) > 253 or not _DNS_NAME.match(name):
                raise ValueError(f"{name!r} is neither a DNS name nor an IP address") from None
    return names


def _server_key(raw: str) -> str:
    value = raw.strip()
    if len(value) < 16:
        raise ValueError("must be at least 16 characters (e.g. 32 random bytes in base64)")
    return value


def _lower(raw: str) -> str:
    return raw.strip().lower()


# --- the declaration -----------------------------------------------------------------------------

@dataclass(frozen=True)
class _Decl:
    """What :func:`option` records on a field; :class:`Option` adds what the field itself says."""

    help: str
    flag: str | None
    env: str | None
    parse: Callable[[str], Any] | None
    metavar: str | None
    choices: tuple[str, ...] | None
    shown: str | None
    env_only: bool
    profiles: Mapping[str, Any]


def option(default: Any, help: str, *, flag: str | None = None, env: str | None = None,
           parse: Callable[[str], Any] | None = None, metavar: str | None = None,
           choices: Sequence[str] | None = None, shown: str | None = None, env_only: bool = False,
           secret: bool = False, relaxed: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that is also a configuration option.

    ``flag`` and ``env`` default to the field name (``http_port`` → ``--http-port``,
    ``SIGNALITE_HTTP_PORT``); ``parse`` defaults to one derived from the field's type; ``shown``
    describes a default that is computed (``None`` meaning "the --port number"); ``relaxed`` is
    the value under ``--quotas relaxed`` when it differs from the default (quota fields only);
    ``env_only`` options (secrets) have no flag, so they never appear in a process listing; a
    ``secret`` stays out of the ``repr`` (and so out of logs and test failure output)."""
    profiles = {} if relaxed is dataclasses.MISSING else {"relaxed": relaxed}
    decl = _Decl(help=help, flag=flag, env=env, parse=parse, metavar=metavar,
                 choices=tuple(choices) if choices else None, shown=shown, env_only=env_only,
                 profiles=profiles)
    return field(default=default, repr=not secret, metadata={_META: decl})


@dataclass(frozen=True)
class Quotas:
    """Signaling limits. ``None`` means unlimited. The ``aws`` profile (the defaults) mirrors the AWS
    service quotas page; ``relaxed`` lifts the limits users hit when testing or self-hosting."""

    max_viewers_per_channel: int | None = option(
        10, "viewers per channel", flag="max-viewers", env="MAX_VIEWERS", parse=_count, metavar="N",
        relaxed=100_000)
    connects_per_second_per_channel: float | None = option(
        3.0, "connects per second per channel (0 = no limit)", flag="connects-per-second",
        env="CONNECTS_PER_SECOND", parse=_limit, metavar="RATE", relaxed=None)
    sdp_messages_per_second: float | None = option(
        5.0, "SDP offers+answers per second per connection (0 = no limit)", flag="sdp-rate", env="SDP_RATE",
        parse=_limit, metavar="RATE", relaxed=None)
    ice_messages_per_second: float | None = option(
        20.0, "ICE candidates per second per connection (0 = no limit)", flag="ice-rate", env="ICE_RATE",
        parse=_limit, metavar="RATE", relaxed=None)
    max_payload_bytes: int = option(
        10 * 1024, "largest decoded messagePayload in bytes (real clients send 10,000 raw bytes, "
        "~13.4K base64)", flag="max-payload", env="MAX_PAYLOAD", parse=_count, metavar="BYTES")
    idle_timeout_seconds: float | None = option(
        600.0, "seconds without a message before the server ends a connection (0 = none; WebSocket "
        "pings are not activity)", flag="idle-timeout", env="IDLE_TIMEOUT", parse=_limit, metavar="SECONDS",
        relaxed=None)
    max_connection_seconds: float | None = option(
        3600.0, "longest connection lifetime in seconds (0 = none)", flag="max-connection-seconds",
        env="MAX_CONNECTION_SECONDS", parse=_limit, metavar="SECONDS", relaxed=None)
    go_away_grace_seconds: float = option(
        60.0, "seconds between GO_AWAY and close", flag="go-away-grace", env="GO_AWAY_GRACE", parse=_seconds,
        metavar="SECONDS")
    max_frame_bytes: int = 64 * 1024
    max_unauthenticated_per_ip: int | None = option(
        256, "connections from one client address (an IPv6 /64) that have not yet had a request "
        "authenticated; past it a connection is answered ClientLimitExceededException and closed (0 = no "
        "limit; behind a proxy every client has the proxy's address)", flag="max-unauthenticated-per-ip",
        env="MAX_UNAUTHENTICATED_PER_IP", parse=_count_limit, metavar="N", relaxed=None)
    handshakes_per_ip_per_second: float | None = option(
        50.0, "WebSocket upgrade attempts per second from one client address (an IPv6 /64), signed or "
        "not, with a burst of as many (0 = no limit)", flag="handshakes-per-ip", env="HANDSHAKES_PER_IP",
        parse=_limit, metavar="RATE", relaxed=None)
    channels_per_account: int = option(
        10_000, "channels per account and region", flag="channels-per-account", env="CHANNELS_PER_ACCOUNT",
        parse=_count, metavar="N")

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> "Quotas":
        """The quotas of profile ``name`` with ``overrides`` (field name → value; ``None`` lifts a
        limit) applied on top. The profile values are declared on the fields themselves."""
        if name not in QUOTA_PROFILES:
            raise ValueError(f"unknown quota profile {name!r}; choose one of {QUOTA_PROFILES}")
        values = {f.name: f.metadata[_META].profiles[name] for f in dataclasses.fields(cls)
                  if _META in f.metadata and name in f.metadata[_META].profiles}
        return cls(**{**values, **overrides})


@dataclass(frozen=True)
class Settings:
    host: str = option("127.0.0.1", "interface to listen on")
    port: int = option(8443, "TLS listener port (0: a free port, advertised and written to endpoint.json)",
                       parse=_port, metavar="PORT")
    http_port: int | None = option(None, "optional plain-HTTP listener port (behind a TLS proxy; 0: a free port)",
                                   parse=_port,
                                   metavar="PORT", shown="none")
    data_dir: Path = option(Path(".signalite"), "state directory (credentials, local CA, SQLite, endpoint.json)",
                            metavar="DIR")
    public_url: str | None = option(
        None, "base URL advertised in returned endpoints, as given less a default port "
        "(https://x.example:443/p advertises https://x.example/p)", parse=_public_url, metavar="URL",
        shown="https://HOST:PORT, no port on 443")
    tls_cert: Path | None = option(None, "PEM certificate chain", metavar="FILE",
                                   shown="a leaf generated from a local CA in DATA_DIR/tls")
    tls_key: Path | None = option(None, "PEM private key for --tls-cert", metavar="FILE", shown="none")
    tls_san: tuple[str, ...] = option(
        (), "extra DNS names / IP addresses in the generated leaf certificate (it always covers localhost, "
        "127.0.0.1, ::1, --host and the advertised host)", parse=_san_names, metavar="NAME[,NAME...]",
        shown="none")
    store: str | None = option(None, "metadata store URL: sqlite:///path or postgresql://...", metavar="URL",
                               shown="sqlite:///DATA_DIR/signalite.db")
    bus: str | None = option(None, "message bus URL: local:// or redis://...", metavar="URL", shown="local://")
    quotas_profile: str = option("aws", "quota profile; the per-limit flags below override it", flag="quotas",
                                 env="QUOTAS", parse=_lower, choices=QUOTA_PROFILES)
    quotas: Quotas = field(default_factory=Quotas)
    access_key_id: str | None = option(None, "root access key id (with SIGNALITE_SECRET_ACCESS_KEY)",
                                       env_only=True, shown="generated once into DATA_DIR/credentials.json")
    secret_access_key: str | None = option(None, "root secret access key", env_only=True, secret=True,
                                           shown="generated once")
    account_id: str | None = option(None, "12-digit root account id", env_only=True, parse=_account_id,
                                    shown="generated once")
    server_key: str | None = option(
        None, "key that seals stored IAM secrets and session tokens (16+ characters, the same on every node "
        "of a cluster; see docs/security.md)", env_only=True, secret=True, parse=_server_key,
        shown="derived from the root secret")
    identity_cache_seconds: float = option(
        5.0, "longest a node trusts an access key or an identity's compiled policies it has cached without "
        "reading the store again (a change on any node reaches every node over the bus at once; this only "
        "bounds one whose bus message was lost; 0 = no cache)", parse=_seconds, metavar="SECONDS")
    default_region: str = "us-west-2"
    turn_uris: tuple[str, ...] = option(
        (), "TURN URI(s) of your own coturn, comma separated (turn:host:port?transport=udp)", flag="turn-uri",
        env="TURN_URIS", metavar="URI[,URI...]", shown="none")
    turn_secret: str | None = option(None, "coturn use-auth-secret shared secret for --turn-uri",
                                     metavar="SECRET", secret=True, shown="none")
    turn_ttl: int = option(300, "lifetime of TURN credentials in seconds", parse=_int, metavar="SECONDS")
    run_turn: bool = option(False, "start and supervise a local coturn (needs turnserver installed)", flag="turn",
                            env="TURN")
    turn_port: int = option(3478, "port of the coturn started by --turn (UDP and TCP)", parse=_port,
                            metavar="PORT")
    turnserver: str | None = option(None, "coturn's turnserver binary for --turn", metavar="PATH",
                                    shown="found on PATH")
    stun_port: int | None = option(None, "UDP port of the embedded STUN responder", parse=_port, metavar="PORT",
                                   shown="the --port number")
    go_away_frames: bool = option(
        False, "on server-initiated ends (idle, max duration, delete, disconnect, drain, shutdown) send a "
        "GO_AWAY frame first and close after --go-away-grace; off: close (1001) without a frame, because "
        "the KVS C SDK v1.14.0 and earlier deadlocks on GO_AWAY")
    drain_timeout: float = option(30.0, "on SIGTERM, spread the closing of this node's clients over at most "
                                  "this many seconds", parse=_seconds, metavar="SECONDS")
    metrics: bool = option(True, "serve Prometheus metrics at GET /metrics on every listener")
    metrics_token: str | None = option(None, "require `Authorization: Bearer TOKEN` on GET /metrics",
                                       metavar="TOKEN", secret=True, shown="none")
    log_format: str = option("text", "log line format", choices=("text", "json"))
    log_payloads: bool = option(False, "include SDP and ICE payloads in logs (off: they never appear)")
    backlog: int = option(4096, "listen backlog: connections the kernel queues for each listener before "
                          "they are accepted (capped by net.core.somaxconn)", parse=_backlog, metavar="N")
    header_timeout: float = option(
        20.0, "seconds a connection has to deliver a complete request head, from its opening and from the "
        "end of its previous response (closes silent sockets, slow headers and idle keep-alive)",
        parse=_positive, metavar="SECONDS")
    body_timeout: float = option(
        10.0, "seconds a request body may take, plus one second per --body-min-rate bytes received",
        parse=_positive, metavar="SECONDS")
    body_min_rate: float | None = option(
        1024.0, "slowest request body accepted, in bytes per second past --body-timeout (0 = no body "
        "timeout)", parse=_limit, metavar="BYTES/S")
    tls_handshake_timeout: float = option(
        10.0, "seconds a connection has to complete its TLS handshake", parse=_positive, metavar="SECONDS")
    node_name: str | None = option(None, "name of this node in a cluster", flag="node-id", env="NODE_ID",
                                   metavar="NAME", shown="HOST:PORT, the machine's name standing in for a wildcard --host")
    max_body_bytes: int = 1024 * 1024
    log_level: str = option("info", "log level", parse=_lower, choices=("debug", "info", "warning", "error"))
    clock_skew_seconds: int = 300

    # --- derived values -------------------------------------------------------------------
    @functools.cached_property
    def advertised_url(self) -> str:
        """Base URL put into returned endpoints, no trailing slash and never the scheme's default
        port (``https://host``, not ``https://host:443``): the KVS C SDK refuses URLs with a port.
        Worked out once (settings never change; every GetSignalingChannelEndpoint reads it)."""
        if self.public_url:
            return without_default_port(self.public_url)
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return without_default_port(f"https://{host}:{self.port}")

    @property
    def advertised_host(self) -> str:
        return urlsplit(self.advertised_url).hostname or "127.0.0.1"

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{(self.data_dir / 'signalite.db').resolve()}"

    @property
    def bus_url(self) -> str:
        return self.bus or "local://"

    @property
    def node_id(self) -> str:
        """``--node-id``, else ``host:port`` (the machine's name stands in for a wildcard host, so that
        nodes started with the same flags on different machines still differ)."""
        if self.node_name:
            return self.node_name
        host = self.host if self.host not in ("0.0.0.0", "", "::") else socket.gethostname()
        return f"{host}:{self.port}"


# --- the table -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One configuration option, as the table holds it."""

    owner: type
    """:class:`Settings` or :class:`Quotas`."""
    attr: str
    flag: str | None
    """``--http-port``; ``None`` for an environment-only option."""
    env: str
    """``SIGNALITE_HTTP_PORT``."""
    parse: Callable[[str], Any]
    is_bool: bool
    default: Any
    decl: _Decl

    def convert(self, raw: str, source: str) -> Any:
        """``raw`` (from ``source``, a flag or a variable name) as a typed value, or ConfigError."""
        try:
            value = self.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"signalite: {source}: {exc}") from None
        if self.decl.choices and value not in self.decl.choices:
            raise ConfigError(f"signalite: {source}: {raw!r} is not one of {', '.join(self.decl.choices)}")
        return value

    def describe_default(self) -> str:
        if self.decl.shown is not None:
            base = self.decl.shown
        elif self.is_bool:
            base = "on" if self.default else "off"
        else:
            base = _show(self.default)
        extra = "".join(f", {name}: {_show(value)}" for name, value in self.decl.profiles.items())
        return base + extra

    def help_text(self) -> str:
        text = f"{self.decl.help} (default: {self.describe_default()}; env {self.env})"
        return text.replace("%", "%%")  # argparse %-formats help strings


def _show(value: Any) -> str:
    if value is None:
        return "no limit"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    return str(value)


def _parser_for(hint: Any) -> tuple[Callable[[str], Any], bool]:
    """The parser implied by a field's annotation (``int | None`` → int, ``tuple[str, ...]`` → a
    comma list), and whether the option is a boolean switch."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        return _bool, True
    if typing.get_origin(hint) is tuple:
        return _list, False
    simple: dict[Any, Callable[[str], Any]] = {int: _int, float: _float, str: str, Path: Path}
    if hint not in simple:
        raise TypeError(f"no option parser for {hint!r}")
    return simple[hint], False


def _collect(owner: type) -> list[Option]:
    hints = typing.get_type_hints(owner)
    out: list[Option] = []
    for f in dataclasses.fields(owner):
        decl = f.metadata.get(_META)
        if decl is None:
            continue
        parse, is_bool = _parser_for(hints[f.name])
        flag = None if decl.env_only else "--" + (decl.flag or f.name.replace("_", "-"))
        env = ENV_PREFIX + (decl.env or f.name.upper())
        out.append(Option(owner, f.name, flag, env, decl.parse or parse, is_bool, f.default, decl))
    return out


OPTIONS: tuple[Option, ...] = (*_collect(Settings), *_collect(Quotas))
"""Every option, in ``--help`` order."""


def _argparse_type(opt: Option) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            return opt.parse(raw)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = opt.attr
    return parse


def add_arguments(parser: "argparse._ActionsContainer", *attrs: str) -> None:
    """Add the flags of the options named ``attrs`` (``Settings``/``Quotas`` field names) to ``parser``
    (or an argument group), e.g. ``--data-dir`` for the admin commands. A flag not given is absent
    from the parsed namespace, so :func:`settings_from` falls back to the environment."""
    by_attr = {o.attr: o for o in OPTIONS}
    for attr in attrs:
        opt = by_attr[attr]
        assert opt.flag is not None, f"{attr} has no flag"
        if opt.is_bool:
            parser.add_argument(opt.flag, dest=opt.attr, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=opt.help_text())
        else:
            parser.add_argument(opt.flag, dest=opt.attr, type=_argparse_type(opt), default=argparse.SUPPRESS,
                                metavar=opt.decl.metavar or "|".join(opt.decl.choices or ()) or opt.attr.upper(), choices=opt.decl.choices,
                                help=opt.help_text())


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Every flag of the table, grouped (server, quotas), with the environment-only variables in the
    epilog: ``signalite serve --help`` lists each option with its variable and default."""
    server = parser.add_argument_group("server options")
    add_arguments(server, *(o.attr for o in OPTIONS if o.owner is Settings and o.flag))
    quotas = parser.add_argument_group("quota overrides (on top of --quotas)")
    add_arguments(quotas, *(o.attr for o in OPTIONS if o.owner is Quotas and o.flag))
    lines = ["environment only (no flag, so that secrets stay out of process listings):"]
    lines += [f"  {o.env:<32} {o.decl.help} (default: {o.describe_default()})"
              for o in OPTIONS if o.flag is None]
    lines.append("every flag is also an environment variable (shown with it); a flag wins over its variable.")
    parser.epilog = "\n".join(lines)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def settings_from(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge flags over ``SIGNALITE_*`` environment variables over defaults. An empty variable
    counts as unset. Raises :class:`ConfigError` for a value that does not parse."""
    env = os.environ if environ is None else environ
    given = vars(args) if args is not None else {}
    values: dict[type, dict[str, Any]] = {Settings: {}, Quotas: {}}
    for opt in OPTIONS:
        if opt.flag is not None and opt.attr in given:
            values[opt.owner][opt.attr] = given[opt.attr]
        elif env.get(opt.env, "").strip():
            values[opt.owner][opt.attr] = opt.convert(env[opt.env], opt.env)
    settings = values[Settings]
    quotas = Quotas.profile(settings.get("quotas_profile", "aws"), **values[Quotas])
    return Settings(quotas=quotas, **settings)
