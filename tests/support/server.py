"""Start the real ``signalite serve`` process for a test and hand out clients pointed at it.

No part of the server is mocked: the process is the one users run, with its own data dir, TLS
certificate and SQLite file, on free loopback ports.
"""

from __future__ import annotations

import json
import os
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

ACCESS_KEY = "AKIDSIGNALITETEST001"
SECRET_KEY = "signalite-test-secret-key-0000000000000"
ACCOUNT = "111122223333"
REGION = "us-west-2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    data_dir: Path
    port: int
    http_port: int
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    log_path: Path | None = None

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
            "AWS_CA_BUNDLE": self.ca,
            "NODE_EXTRA_CA_CERTS": self.ca,
        })
        return env

    def boto(self, service: str = "kinesisvideo", *, region: str = REGION, endpoint: str | None = None,
             access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service, region_name=region, endpoint_url=endpoint or self.url, verify=self.ca,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            config=Config(retries={"max_attempts": 1}, **config),
        )

    def start(self) -> "Server":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_"))}
        env.update({
            "SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY,
            "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY,
            "SIGNALITE_ACCOUNT_ID": ACCOUNT,
        })
        env.update(self.env)
        self.log_path = self.data_dir / "server.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "signalite", "serve", "--data-dir", str(self.data_dir),
             "--port", str(self.port), "--http-port", str(self.http_port), *self.args],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.http_url}/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

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
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""


@contextmanager
def running_server(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = Server(data_dir=data_dir, port=free_port(), http_port=free_port(), args=list(args), env=env or {})
    server.start()
    try:
        yield server
    finally:
        server.stop()
