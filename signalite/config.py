"""One Settings object for the whole server.

Every option has a command-line flag and an environment variable ``SIGNALITE_<NAME>``; a flag
given on the command line wins over the environment, which wins over the default. Nothing else
in the code reads ``os.environ`` for configuration, so a test can build any server from a plain
``Settings(...)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

QUOTA_PROFILES = ("aws", "relaxed")


@dataclass(frozen=True)
class Quotas:
    """Signaling limits. ``None`` means unlimited. The ``aws`` profile mirrors the AWS service
    quotas page; ``relaxed`` lifts the limits users hit when testing or self-hosting."""

    max_viewers_per_channel: int | None = 10
    connects_per_second_per_channel: float | None = 3.0
    sdp_messages_per_second: float | None = 5.0
    ice_messages_per_second: float | None = 20.0
    max_payload_bytes: int = 10 * 1024
    """Limit on the *decoded* message payload. Real clients send 10,000 raw bytes (~13.4K base64)."""
    idle_timeout_seconds: float | None = 600.0
    max_connection_seconds: float | None = 3600.0
    go_away_grace_seconds: float = 60.0
    max_frame_bytes: int = 64 * 1024
    channels_per_account: int = 10_000

    @classmethod
    def profile(cls, name: str, **overrides: Any) -> "Quotas":
        if name not in QUOTA_PROFILES:
            raise ValueError(f"unknown quota profile {name!r}; choose one of {QUOTA_PROFILES}")
        base = cls()
        if name == "relaxed":
            base = dataclasses.replace(
                base,
                max_viewers_per_channel=100_000,
                connects_per_second_per_channel=None,
                sdp_messages_per_second=None,
                ice_messages_per_second=None,
                max_connection_seconds=None,
                idle_timeout_seconds=None,
            )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(base, **clean)


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8443
    http_port: int | None = None
    data_dir: Path = Path(".signalite")
    public_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    store: str | None = None
    bus: str | None = None
    quotas_profile: str = "aws"
    quotas: Quotas = field(default_factory=Quotas)
    access_key_id: str | None = None
    secret_access_key: str | None = None
    account_id: str | None = None
    default_region: str = "us-west-2"
    turn_uris: tuple[str, ...] = ()
    turn_secret: str | None = None
    turn_ttl: int = 300
    run_turn: bool = False
    turn_port: int = 3478
    """Port of the coturn that ``--turn`` starts (UDP and TCP)."""
    turnserver: str | None = None
    """coturn's ``turnserver`` binary for ``--turn``; ``None`` looks it up on PATH."""
    stun_port: int | None = None
    """UDP port of the embedded STUN responder; ``None`` picks the TLS port number."""
    max_body_bytes: int = 1024 * 1024
    log_level: str = "info"
    clock_skew_seconds: int = 300
    go_away_frames: bool = False
    drain_timeout: float = 30.0

    # --- derived values -------------------------------------------------------------------
    @property
    def advertised_url(self) -> str:
        """Base URL put into returned endpoints (``https://host:port``), no trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"https://{host}:{self.port}"

    @property
    def advertised_host(self) -> str:
        return urlsplit(self.advertised_url).hostname or "127.0.0.1"

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{(self.data_dir / 'signalite.db').resolve()}"

    @property
    def bus_url(self) -> str:
        return self.bus or "local://"


# (flag, env name, type, help). Bool flags use type=bool.
_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("host", "HOST", str, "interface to listen on (default 127.0.0.1)"),
    ("port", "PORT", int, "TLS listener port (default 8443)"),
    ("http-port", "HTTP_PORT", int, "optional plain-HTTP listener port (behind a TLS proxy)"),
    ("data-dir", "DATA_DIR", Path, "state directory (default ./.signalite)"),
    ("public-url", "PUBLIC_URL", str, "base URL advertised in returned endpoints"),
    ("tls-cert", "TLS_CERT", Path, "PEM certificate chain (default: generated local CA + leaf)"),
    ("tls-key", "TLS_KEY", Path, "PEM private key for --tls-cert"),
    ("store", "STORE", str, "metadata store URL: sqlite:///path (default) or postgresql://..."),
    ("bus", "BUS", str, "message bus URL: local:// (default) or redis://..."),
    ("quotas", "QUOTAS", str, "quota profile: aws (default) or relaxed"),
    ("max-viewers", "MAX_VIEWERS", int, "override: viewers per channel"),
    ("connects-per-second", "CONNECTS_PER_SECOND", float, "override: connects/s per channel"),
    ("sdp-rate", "SDP_RATE", float, "override: SDP offers+answers per second per connection (0 = no limit)"),
    ("ice-rate", "ICE_RATE", float, "override: ICE candidates per second per connection (0 = no limit)"),
    ("max-payload", "MAX_PAYLOAD", int, "override: largest decoded messagePayload in bytes"),
    ("idle-timeout", "IDLE_TIMEOUT", float, "override: idle timeout in seconds"),
    ("max-connection-seconds", "MAX_CONNECTION_SECONDS", float, "override: connection lifetime"),
    ("go-away-grace", "GO_AWAY_GRACE", float, "override: seconds between GO_AWAY and close"),
    ("channels-per-account", "CHANNELS_PER_ACCOUNT", int, "override: channels per account+region"),
    ("turn-uri", "TURN_URIS", str, "TURN URI(s), comma separated (turn:host:port?transport=udp)"),
    ("turn-secret", "TURN_SECRET", str, "coturn use-auth-secret shared secret"),
    ("turn-ttl", "TURN_TTL", int, "lifetime of TURN credentials in seconds (default 300)"),
    ("turn", "TURN", bool, "start and supervise a local coturn (needs turnserver installed)"),
    ("turn-port", "TURN_PORT", int, "port of the coturn started by --turn (default 3478)"),
    ("turnserver", "TURNSERVER", str, "coturn's turnserver binary for --turn (default: found on PATH)"),
    ("stun-port", "STUN_PORT", int, "UDP port of the embedded STUN responder (default: the --port number)"),
    ("go-away-frames", "GO_AWAY_FRAMES", bool, "send GO_AWAY before server-initiated closes (the KVS C SDK hangs on it)"),
    ("drain-timeout", "DRAIN_TIMEOUT", float, "seconds over which SIGTERM closes this node's sockets (default 30)"),
    ("log-level", "LOG_LEVEL", str, "debug, info, warning, error"),
]


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    for flag, _env, typ, help_text in _OPTIONS:
        dest = flag.replace("-", "_")
        if typ is bool:
            parser.add_argument(f"--{flag}", dest=dest, action="store_true", default=None, help=help_text)
        else:
            parser.add_argument(f"--{flag}", dest=dest, type=typ, default=None, help=help_text)


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def settings_from(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge flags over ``SIGNALITE_*`` environment variables over defaults."""
    env = os.environ if environ is None else environ
    given = vars(args) if args is not None else {}
    values: dict[str, Any] = {}
    for flag, env_name, typ, _help in _OPTIONS:
        dest = flag.replace("-", "_")
        value = given.get(dest)
        if value is None and f"SIGNALITE_{env_name}" in env:
            raw = env[f"SIGNALITE_{env_name}"]
            value = _truthy(raw) if typ is bool else typ(raw)
        if value is not None:
            values[dest] = value

    profile = values.pop("quotas", "aws")
    quotas = Quotas.profile(
        profile,
        max_viewers_per_channel=values.pop("max_viewers", None),
        connects_per_second_per_channel=values.pop("connects_per_second", None),
        sdp_messages_per_second=values.pop("sdp_rate", None),
        ice_messages_per_second=values.pop("ice_rate", None),
        max_payload_bytes=values.pop("max_payload", None),
        idle_timeout_seconds=values.pop("idle_timeout", None),
        max_connection_seconds=values.pop("max_connection_seconds", None),
        go_away_grace_seconds=values.pop("go_away_grace", None),
        channels_per_account=values.pop("channels_per_account", None),
    )
    turn = values.pop("turn_uri", None)
    turn_uris = tuple(u.strip() for u in turn.split(",") if u.strip()) if turn else ()
    run_turn = bool(values.pop("turn", False))
    account = env.get("SIGNALITE_ACCOUNT_ID")
    if account is not None and not (len(account) == 12 and account.isdigit()):
        raise ValueError("SIGNALITE_ACCOUNT_ID must be exactly 12 digits")
    return Settings(
        quotas_profile=profile,
        quotas=quotas,
        turn_uris=turn_uris,
        run_turn=run_turn,
        access_key_id=env.get("SIGNALITE_ACCESS_KEY_ID"),
        secret_access_key=env.get("SIGNALITE_SECRET_ACCESS_KEY"),
        account_id=account,
        **values,
    )
