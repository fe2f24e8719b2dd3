"""Start the real ``signalite serve`` process for a test and hand out clients pointed at it.

No part of the server is mocked: the process is the one users run, with its own data dir, TLS
certificate and SQLite file, on free loopback ports.

Ports. The server binds ``--port 0 --http-port 0`` itself (the kernel picks, with no race between
choosing a port and binding it) and writes the result into ``endpoint.json`` in *its own* data dir
once every listener is bound; the helper reads its ports from there. So it also never mistakes a
foreign server for its own.

Two cases still need a port number before the start, which the helper picks with
:func:`free_port`: a TLS port the test writes into a value (:data:`TLS_PORT`, e.g. in a public
URL; with ``--public-url`` the advertised URL does not tell the bound port either), and ports the
server passes on to others (:data:`PICK_PORT`, e.g. coturn's ``--turn-port``). A port picked that
way can be taken by another process before the server binds it, so :meth:`Server.start` treats
"address already in use" as a reason to pick again, not as a failure (a bounded number of times).
A restart keeps the ports the server had (clients hold its URL), unless one was taken meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

ACCESS_KEY = "AKIDSIGNALITETEST001"
SECRET_KEY = "signalite-test-secret-key-0000000000000"
ACCOUNT = "111122223333"
REGION = "us-west-2"

PICK_PORT = "<free port>"
"""An ``args`` placeholder where the server takes a port number (``"--turn-port", PICK_PORT``): each
start puts a free port there, and a new one if it was taken in between; :meth:`Server.option`
tells which one the running server got."""

TLS_PORT = "<tls port>"
"""Replaced, inside ``args`` and ``env`` values, by the TLS port of the start
(``SIGNALITE_PUBLIC_URL=f"https://localhost:{TLS_PORT}"``), which a retry may change."""

START_ATTEMPTS = 5
"""Starts with fresh ports before giving up; each further attempt needs another process to have
taken a just-picked port again."""

ENDPOINT_FILE = "endpoint.json"
"""Written by ``signalite serve`` into its data dir once every listener is bound (cli.py)."""

_PORT_TAKEN = re.compile(r"address already in use|cannot bind", re.IGNORECASE)
"""How the server's log says a port was taken: the OSError of a listener, or coturn's own words."""

_STUN_MOVED = "the STUN responder takes a free port instead"
"""The server's warning when the UDP port of the TLS port's number was taken: it still runs, but its
STUN port no longer equals ``port``, which tests rely on; with picked ports, start over instead."""


def free_port() -> int:
    """A loopback port number that is free for TCP and UDP right now (the server uses the TLS port's
    number for both). Free *now* only: another process may take it before it is used. Servers the
    helper starts cope with that (see :meth:`Server.start`); for a port that must refuse
    connections, use :func:`refused_port`."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port


@contextmanager
def refused_port() -> Iterator[int]:
    """A loopback TCP port that refuses connections for as long as the block runs.

    The socket is bound but never listens: the kernel answers a connect with a reset, and nobody
    else can bind the port meanwhile (a closed ``free_port()`` could start listening any time).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def _read_endpoint(path: Path) -> dict[str, Any] | None:
    """``endpoint.json`` once the server has written it completely, else None."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):  # not there yet, or being written
        return None
    return saved if isinstance(saved, dict) and isinstance(saved.get("http_port"), int) else None


class PortTaken(RuntimeError):
    """The server exited because a port the helper picked was taken in between."""


@dataclass
class Server:
    data_dir: Path
    port: int = 0
    """The TLS port; 0: the server's kernel picks it at the first start (see the module docstring)."""
    http_port: int = 0
    """The plain-HTTP port; 0: picked like ``port``."""
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    """Extra ``serve`` arguments; :data:`PICK_PORT` in them is filled at each start."""
    log_path: Path | None = None
    credentials: bool = True
    """Pass the test root key in the environment; False lets the server generate its own."""
    argv: list[str] = field(default_factory=list)
    """``args`` as the running server got them (placeholders filled)."""
    started_env: dict[str, str] = field(default_factory=dict)
    """``env`` as the running server got it (placeholders filled)."""
    _pick: bool = field(init=False, default=False)
    _log_offset: int = field(init=False, default=0)
    _filled: tuple[Any, ...] | None = field(init=False, default=None)
    """The ``args`` and ``env`` that ``argv`` and ``started_env`` were filled from."""

    def __post_init__(self) -> None:
        if bool(self.port) != bool(self.http_port):
            raise ValueError("give both ports or neither")
        self._pick = not self.port

    @property
    def url(self) -> str:
        """The TLS endpoint (what GetSignalingChannelEndpoint advertises)."""
        return f"https://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ca(self) -> str:
        return str(self.data_dir / "tls" / "ca.pem")

    @property
    def client_env(self) -> dict[str, str]:
        """Environment for AWS CLI / Node clients pointed at this server over TLS."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_KINESIS_VIDEO": self.url,
            "AWS_ENDPOINT_URL_IAM": self.url,
            "AWS_ENDPOINT_URL_STS": self.url,
            "AWS_CA_BUNDLE": self.ca,
            "NODE_EXTRA_CA_CERTS": self.ca,
        })
        return env

    def boto(self, service: str = "kinesisvideo", *, region: str = REGION, endpoint: str | None = None,
             access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, session_token: str | None = None,
             **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service, region_name=region, endpoint_url=endpoint or self.url, verify=self.ca,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, aws_session_token=session_token,
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def option(self, flag: str) -> str:
        """The value the running server got for ``flag`` (e.g. the port filled in for PICK_PORT)."""
        return self.argv[self.argv.index(flag) + 1]

    def start(self) -> "Server":
        """Start the process and return once it serves; a restart keeps its ports if it can.

        Raises RuntimeError (with the log) if the server exits or never answers; with picked ports,
        "address already in use" (or the STUN responder moving off the TLS port's number) makes it
        start over on new ports instead, up to :data:`START_ATTEMPTS` times.
        """
        repick = not self.port  # a first start picks; a restart keeps its ports unless one was taken
        for _ in range(START_ATTEMPTS):
            if repick:  # the kernel picks, unless the port must be known before the start
                self.port = free_port() if self._tls_port_needed() else 0
                self.http_port = 0
            given = (tuple(self.args), tuple(sorted(self.env.items())))
            if repick or self._filled != given:  # first start, new ports, or args/env changed since
                self.argv = [str(free_port()) if a == PICK_PORT else a.replace(TLS_PORT, str(self.port))
                             for a in self.args]
                self.started_env = {k: v.replace(TLS_PORT, str(self.port)) for k, v in self.env.items()}
                self._filled = given
            try:
                return self._start_once()
            except PortTaken:
                if not self._pick:
                    raise
                repick = True
        raise RuntimeError(f"no free ports after {START_ATTEMPTS} attempts:\n{self.log()}")

    def _tls_port_needed(self) -> bool:
        """Whether the TLS port must be chosen before the start: written into a value, or not to be
        read back from the advertised URL (a public URL advertises another address)."""
        values = [*self.args, *self.env.values()]
        return (any(TLS_PORT in v for v in values) or "--public-url" in self.args
                or "SIGNALITE_PUBLIC_URL" in self.env)

    def _start_once(self) -> "Server":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        endpoint = self.data_dir / ENDPOINT_FILE
        endpoint.unlink(missing_ok=True)  # left by an earlier start: only this process may write it
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_"))}
        if self.credentials:
            env.update({
                "SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY,
                "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY,
                "SIGNALITE_ACCOUNT_ID": ACCOUNT,
            })
        env.update(self.started_env)
        self.log_path = self.data_dir / "server.log"
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "signalite", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port), "--http-port", str(self.http_port), *self.argv],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30  # a safety net: a healthy start takes about a second
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if _PORT_TAKEN.search(self.last_log()):
                    raise PortTaken(self.last_log())
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            saved = _read_endpoint(endpoint)
            if saved is not None and self._healthy(saved["http_port"]):
                if self._pick and _STUN_MOVED in self.last_log():
                    self.stop()
                    raise PortTaken(self.last_log())
                self.http_port = saved["http_port"]
                if not self.port:  # bound by the kernel: the advertised URL carries it (443: none)
                    self.port = urlsplit(saved["url"]).port or 443
                return self
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def _healthy(self, http_port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=5) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def restart(self) -> "Server":
        self.stop()
        return self.start()

    def ready(self) -> tuple[int, dict[str, Any]]:
        """``GET /ready``: its status and JSON body (503 is an answer, not an error)."""
        try:
            with urllib.request.urlopen(f"{self.http_url}/ready", timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def log(self) -> str:
        """Everything the server printed, over all its starts."""
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def last_log(self) -> str:
        """What the server printed since its latest start."""
        if not self.log_path or not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")


@contextmanager
def running_server(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = Server(data_dir=data_dir, args=list(args), env=env or {})
    server.start()
    try:
        yield server
    finally:
        server.stop()
