"""A real coturn (Debian ``turnserver``) in TURN REST mode for a test, on 127.0.0.1.

Usage, as a context manager (also inside a network namespace, see ``netns.py``)::

    with running_coturn(tmp_path) as turn:
        server = make_server("--turn-uri", turn.uri_list, "--turn-secret", turn.secret)

or as the pytest fixture ``coturn`` (import it into the test module:
``from tests.support.coturn import coturn  # noqa: F401``). coturn starts in about 0.2 s; the
helper waits until it answers a STUN Binding request, so a test can allocate at once.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from signalite.dataplane.turn import uri_address
from tests.support.server import free_port


def stun_address(uri: str) -> tuple[str, int]:
    """``(host, port)`` of a ``stun:``/``turn:`` URI from GetIceServerConfig."""
    host, port, _ = uri_address(uri)
    return host, port


def turn_target(uri: str) -> tuple[tuple[str, int], str]:
    """``((host, port), transport)`` for ``aioice.turn.create_turn_endpoint``."""
    host, port, transport = uri_address(uri)
    return (host, port), transport


def turnserver_path() -> str | None:
    return shutil.which("turnserver") or (
        "/usr/bin/turnserver" if os.access("/usr/bin/turnserver", os.X_OK) else None)


needs_coturn = pytest.mark.skipif(turnserver_path() is None,
                                  reason="coturn (turnserver) is not installed; scripts/test-deps.sh installs it")


@dataclass
class Coturn:
    host: str
    port: int
    secret: str
    realm: str
    log_path: Path
    proc: subprocess.Popen[bytes]

    @property
    def uris(self) -> list[str]:
        return [f"turn:{self.host}:{self.port}?transport=udp", f"turn:{self.host}:{self.port}?transport=tcp"]

    @property
    def uri_list(self) -> str:
        """The value for ``signalite serve --turn-uri``."""
        return ",".join(self.uris)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _binding_answered(host: str, port: int, timeout: float = 0.2) -> bool:
    """One STUN Binding request over UDP (built with aioice's STUN code)."""
    from aioice import stun

    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(bytes(request), (host, port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    try:
        return stun.parse_message(data).transaction_id == request.transaction_id
    except ValueError:
        return False


@contextmanager
def running_coturn(directory: Path, *, host: str = "127.0.0.1", port: int | None = None,
                   secret: str | None = None, realm: str = "kvs.local",
                   extra: tuple[str, ...] = ()) -> Iterator[Coturn]:
    binary = turnserver_path()
    if binary is None:
        raise RuntimeError("coturn (turnserver) is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    secret = secret or secrets.token_hex(16)
    log_path = directory / "turnserver.log"
    # The secret goes on the command line here: a throw-away test secret (Signalite's own --turn
    # passes it through a 0600 config file instead).
    args = [binary, "-n", f"--listening-ip={host}", f"--relay-ip={host}", f"--listening-port={port}",
            "--use-auth-secret", f"--static-auth-secret={secret}", f"--realm={realm}",
            "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers", "--fingerprint",
            "--log-file=stdout", "--simple-log", f"--userdb={directory / 'turndb'}",
            f"--pidfile={directory / 'turnserver.pid'}", *extra]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    turn = Coturn(host, port, secret, realm, log_path, proc)
    try:
        deadline = time.monotonic() + 10
        while not _binding_answered(host, port):
            if proc.poll() is not None:
                raise RuntimeError(f"coturn exited with {proc.returncode}:\n{turn.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"coturn did not answer STUN on {host}:{port}:\n{turn.log()}")
        yield turn
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    if turnserver_path() is None:
        pytest.skip("coturn (turnserver) is not installed; scripts/test-deps.sh installs it")
    with running_coturn(tmp_path / "coturn") as turn:
        yield turn
