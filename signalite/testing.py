"""A Signalite server for your own tests: ``SignaliteServer`` and the pytest fixtures.

``pip install signalite`` registers a pytest plugin (``signalite.pytest_plugin``) with two fixtures:

* ``signalite_server`` (session scope) — an isolated server: its own temp data dir, its own local
  CA, a generated root key, free ports picked by the kernel (``--port 0``: no race between
  choosing a port and binding it);
* ``signalite_env`` (function scope) — puts the server's ``env`` into ``os.environ`` for the test
  and returns the server, so boto3, the AWS CLI and Node clients started by the test use it with
  no code change.

For other test runners, :class:`SignaliteServer` is the same server as a context manager::

    with SignaliteServer(quotas="relaxed") as server:
        kv = boto3.client("kinesisvideo", endpoint_url=server.endpoint_url, verify=server.ca_bundle, ...)

Keyword options are ``signalite serve`` flags with ``_`` for ``-`` (``idle_timeout=30``,
``go_away_frames=True``). The server process dies with the process that started it (Linux
``PR_SET_PDEATHSIG``), and :meth:`SignaliteServer.stop` kills it if it does not stop in time, so no
process or port outlives a test session, even one that was interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["SignaliteServer"]

START_TIMEOUT = 30.0
"""Seconds a start may take before it is reported as failed (a start takes about a second)."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the server when the process that started it dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _flags(options: dict[str, Any]) -> list[str]:
    argv: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(map(str, value))]
        else:
            argv += [flag, str(value)]
    return argv


class SignaliteServer:
    """One ``signalite serve`` process on free loopback ports, with its own data dir and CA."""

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *, region: str = "us-west-2",
                 **options: Any) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="signalite-"))
        self.region = region
        self.options = {"host": "127.0.0.1", "port": 0, **options}
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint_url = ""
        self.ca_bundle = ""
        self.account_id = ""
        self.access_key_id = ""
        self.secret_access_key = ""
        self.env: dict[str, str] = {}
        """The variables ``signalite env`` prints for this server (AWS_ENDPOINT_URL_KINESIS_VIDEO,
        AWS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION…)."""

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> SignaliteServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        endpoint = self.data_dir / "endpoint.json"
        endpoint.unlink(missing_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_"))}
        log = open(self.data_dir / "server.log", "ab")  # the child keeps its own copy of the descriptor
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "signalite", "serve", "--data-dir", str(self.data_dir), *_flags(self.options)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)  # noqa: PLW1509 - only prctl() runs between fork and exec
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"signalite exited with {self.proc.returncode}:\n{self.log()}")
            if endpoint.exists():
                try:
                    saved = json.loads(endpoint.read_text())
                    if self._healthy(saved):
                        self._describe(saved)
                        return self
                except (ValueError, OSError):
                    pass  # written but not yet complete, or not serving yet
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"signalite did not start within {START_TIMEOUT:g} s:\n{self.log()}")

    def _healthy(self, saved: dict[str, Any]) -> bool:
        import ssl

        context = ssl.create_default_context(cafile=saved["ca"]) if saved.get("ca") else None
        with urllib.request.urlopen(saved["url"] + "/health", timeout=2, context=context) as answer:
            return bool(answer.status == 200)

    def _describe(self, saved: dict[str, Any]) -> None:
        from .cli import env_exports
        from .config import settings_from

        settings = settings_from(None, {"SIGNALITE_DATA_DIR": str(self.data_dir)})
        self.env = env_exports(settings, {"region": self.region})
        self.endpoint_url = saved["url"]
        self.ca_bundle = self.env.get("AWS_CA_BUNDLE", "")
        self.access_key_id = self.env["AWS_ACCESS_KEY_ID"]
        self.secret_access_key = self.env["AWS_SECRET_ACCESS_KEY"]
        self.account_id = json.loads((self.data_dir / "credentials.json").read_text())["account_id"]

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- clients -------------------------------------------------------------------------------
    def client(self, service: str = "kinesisvideo", **kwargs: Any) -> Any:
        """A boto3 client for ``service`` pointed at this server with its root key."""
        import boto3

        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url,
                            verify=self.ca_bundle or None, aws_access_key_id=self.access_key_id,
                            aws_secret_access_key=self.secret_access_key, **kwargs)

    def __enter__(self) -> SignaliteServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
