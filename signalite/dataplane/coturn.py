"""``signalite serve --turn``: run and supervise a local coturn (Debian package ``coturn``) in
TURN REST mode (``use-auth-secret``), so GetIceServerConfig hands out working relay credentials.

The shared secret is ``--turn-secret`` when given, else generated once and kept in
``<data-dir>/turn/secret`` (mode 0600) so credentials stay valid across restarts. It reaches
coturn through a 0600 config file, never the command line (which ``ps`` shows to every user).
coturn's own output goes to ``<data-dir>/turn/turnserver.log``. If coturn exits while Signalite
runs, it is restarted with a growing back-off (1 s … 30 s) and the exit is logged with the tail of
its log.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..files import write_private
from .stun import binding_request

log = logging.getLogger("signalite.turn")
REALM = "signalite"
BINARY = "turnserver"
INSTALL_HINT = ("install coturn (Debian/Ubuntu: apt-get install coturn), or point Signalite at an "
                "existing TURN server with --turn-uri and --turn-secret")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: coturn gets SIGTERM when Signalite dies, even by SIGKILL, so no orphan keeps the port."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class CoturnUnavailable(RuntimeError):
    """``--turn`` was asked for but coturn cannot be run; the message says what to do."""


def find_turnserver(configured: str | None = None) -> str | None:
    """The ``turnserver`` to run: ``configured`` (``--turnserver``) if executable, else PATH."""
    if configured:
        found = shutil.which(configured)
        return found if found and os.access(found, os.X_OK) else None
    found = shutil.which(BINARY)
    if found:
        return found
    for candidate in ("/usr/bin/turnserver", "/usr/local/bin/turnserver"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def load_or_create_secret(directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "secret"
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = secrets.token_urlsafe(32)
    write_private(path, value + "\n")
    return value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass
class Coturn:
    """One supervised ``turnserver`` process."""

    binary: str
    directory: Path
    secret: str
    listen_host: str
    port: int
    relay_ports: tuple[int, int] | None = None
    tls: tuple[Path, Path] | None = None
    """(certificate chain, private key): coturn then also speaks TLS and DTLS on ``port``."""
    realm: str = REALM
    _proc: asyncio.subprocess.Process | None = field(default=None, repr=False)
    _supervisor: asyncio.Task[None] | None = field(default=None, repr=False)
    _stopping: bool = field(default=False, repr=False)
    restarts: int = 0
    _log_offset: int = field(default=0, repr=False)

    @property
    def log_path(self) -> Path:
        return self.directory / "turnserver.log"

    @property
    def probe_host(self) -> str:
        return "127.0.0.1" if self.listen_host in ("", "0.0.0.0") else ("::1" if self.listen_host == "::" else self.listen_host)

    def config_lines(self) -> list[str]:
        lines = [
            f"listening-port={self.port}",
            "use-auth-secret",
            f"static-auth-secret={self.secret}",
            f"realm={self.realm}",
            "fingerprint",
            "no-cli",
            "no-multicast-peers",
            "simple-log",
            "log-file=stdout",
            f"userdb={self.directory / 'turndb'}",
            f"pidfile={self.directory / 'turnserver.pid'}",
        ]
        if self.tls:
            # coturn tells TLS/DTLS from plain TURN on the same port, as AWS serves turn: and turns: on 443
            lines += [f"cert={self.tls[0]}", f"pkey={self.tls[1]}", "no-tlsv1", "no-tlsv1_1"]
        else:
            lines += ["no-tls", "no-dtls"]
        if self.listen_host not in ("", "0.0.0.0", "::"):
            lines += [f"listening-ip={self.listen_host}", f"relay-ip={self.listen_host}"]
        if _is_loopback(self.listen_host):
            # Relaying to 127.x is what a loopback deployment is for (tests, a single machine);
            # coturn refuses loopback peers otherwise. Never enabled on a public address.
            lines.append("allow-loopback-peers")
        if self.relay_ports:
            lines += [f"min-port={self.relay_ports[0]}", f"max-port={self.relay_ports[1]}"]
        return lines

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / "turnserver.conf"
        write_private(path, "# written by signalite serve --turn; rewritten on every start\n"
                      + "\n".join(self.config_lines()) + "\n")
        return path

    async def _spawn(self) -> None:
        config = self.write_config()
        logfile = open(self.log_path, "ab")
        self._log_offset = logfile.tell()
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.binary, "-c", str(config),
                stdin=asyncio.subprocess.DEVNULL, stdout=logfile, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        finally:
            logfile.close()

    def check_port_free(self) -> None:
        """coturn retries a busy port forever instead of exiting; find out before starting it."""
        host = self.listen_host or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for kind, label in ((socket.SOCK_DGRAM, "UDP"), (socket.SOCK_STREAM, "TCP")):
            with socket.socket(family, kind) as s:
                try:
                    s.bind((host, self.port))
                except OSError as exc:
                    raise CoturnUnavailable(f"coturn cannot listen on {label} {host}:{self.port}: {exc.strerror}; "
                                            "choose another --turn-port") from None

    async def _wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._proc is not None and self._proc.returncode is not None:
                raise CoturnUnavailable(f"coturn exited with status {self._proc.returncode} at start:\n{self.log_tail()}")
            if "Cannot bind" in self._log_since_spawn():
                raise CoturnUnavailable(f"coturn cannot bind port {self.port}:\n{self.log_tail()}")
            if await binding_request(self.probe_host, self.port, timeout=0.2) is not None:
                return
        raise CoturnUnavailable(f"coturn did not answer STUN on port {self.port} within {timeout:.0f} s:\n"
                                f"{self.log_tail()}")

    def _log_since_spawn(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no coturn log)"

    async def start(self, timeout: float = 10.0) -> None:
        self.check_port_free()
        await self._spawn()
        try:
            await self._wait_ready(timeout)
        except BaseException:
            await self._terminate()
            raise
        log.info("coturn %s listening on %s:%d (log: %s)", self.binary, self.listen_host, self.port, self.log_path)
        self._supervisor = asyncio.create_task(self._supervise(), name="coturn-supervisor")

    async def _supervise(self) -> None:
        delay = 1.0
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            log.error("coturn exited with status %s; restarting in %.0f s. Last log lines:\n%s",
                      code, delay, self.log_tail())
            await asyncio.sleep(delay)
            if self._stopping:
                return
            delay = min(delay * 2, 30.0)
            try:
                await self._spawn()
                await self._wait_ready(10.0)
                self.restarts += 1
                delay = 1.0
                log.info("coturn restarted")
            except (OSError, CoturnUnavailable) as exc:
                log.error("coturn restart failed: %s", exc)

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                pass
        await self._terminate()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None
