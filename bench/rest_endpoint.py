"""REST control-plane throughput: GetSignalingChannelEndpoint with SigV4, Signalite vs a bare
aiohttp + uvloop handler, as a ratio.

Both servers run as separate processes on 127.0.0.1, each on its own event loop (one core each),
and are measured in the same launch by the same client, alternating, over the plain HTTP
listener so the figure is the server's work and not TLS:

* **signalite**: the real ``signalite serve`` process (``--http-port``), a channel created with
  boto3 first; every request is fully verified (SigV4 canonical request + HMAC), parsed and
  validated against the botocore model, looked up in SQLite and serialized.
* **reference**: an aiohttp + uvloop handler that reads the body and returns a fixed JSON body of
  the same size as Signalite's answer: no auth, no parsing, no store.

The client is one uvloop process with an aiohttp ``ClientSession`` holding ``--connections``
keep-alive connections, each driven by one worker that sends requests back to back. Requests are
**pre-signed** at the start of every slice with botocore's ``SigV4Auth`` (a SigV4 signature stays
valid for 5 minutes and the server re-verifies it on every request, caching nothing per
signature), so the client spends no CPU on signing. A run gives each server ``--seconds`` of load
in alternating ``--slice``-second slices (each after a ``--warmup``), so both see the same host
load; the ratio is computed per run and the median of ``--runs`` runs (≥ 3) is reported, with the
client's CPU share from ``resource.getrusage`` (a client at ≥ 90 % CPU makes a figure a lower
bound) and each server's CPU per request from ``/proc/<pid>/stat``.

Run from the repository root::

    .venv/bin/python -m bench.rest_endpoint --runs 5 --seconds 5 --connections 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.credentials import Credentials

HOST = "127.0.0.1"
ACCESS_KEY = "AKIDSIGNALITEBENCH01"
SECRET_KEY = "signalite-bench-secret-0000000000000000"
ACCOUNT = "123412341234"
REGION = "us-west-2"
PATH = "/getSignalingChannelEndpoint"
MAX_SECONDS = 30.0
MAX_CONNECTIONS = 512


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- the reference server (run in its own process) ------------------------------------------------

def reference_main(port: int, body_size: int) -> None:
    import uvloop
    from aiohttp import web

    body = json.dumps({"ResourceEndpointList": [
        {"Protocol": "WSS", "ResourceEndpoint": "wss://127.0.0.1:8443"},
        {"Protocol": "HTTPS", "ResourceEndpoint": "https://127.0.0.1:8443"}]}, separators=(",", ":")).encode()
    body = body + b" " * max(0, body_size - len(body))

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, content_type="application/json")

    async def main() -> None:
        app = web.Application()
        app.router.add_post(PATH, handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, HOST, port).start()
        print("READY", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    uvloop.run(main())


# --- processes --------------------------------------------------------------------------------------

def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def start_signalite(data_dir: Path, log_level: str = "warning") -> tuple[subprocess.Popen, int]:
    port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_"))}
    env.update(SIGNALITE_ACCESS_KEY_ID=ACCESS_KEY, SIGNALITE_SECRET_ACCESS_KEY=SECRET_KEY,
               SIGNALITE_ACCOUNT_ID=ACCOUNT, SIGNALITE_LOG_LEVEL=log_level)
    proc = subprocess.Popen([sys.executable, "-m", "signalite", "serve", "--host", HOST, "--data-dir", str(data_dir),
                             "--port", str(port), "--http-port", str(http_port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(data_dir / "server.log", "ab"))
    wait_healthy(f"http://{HOST}:{http_port}/health", proc)
    return proc, http_port


def start_reference(body_size: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.rest_endpoint", "--reference-server", str(port),
                             "--body-size", str(body_size)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "READY":
        raise RuntimeError("reference server did not start")
    return proc, port


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the client ---------------------------------------------------------------------------------------

def presign(url: str, body: bytes, credentials: "Credentials | None" = None) -> dict[str, str]:
    """botocore's SigV4 headers for this request, signed now (valid for 5 minutes), with the
    bench's root key or ``credentials`` (temporary ones add ``X-Amz-Security-Token``)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials or Credentials(ACCESS_KEY, SECRET_KEY), "kinesisvideo", REGION).add_auth(req)
    return dict(req.headers.items())


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (clock ticks, usually 1/100 s)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Side:
    """One server's totals over the slices of a run."""

    pid: int
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def server_us_per_request(self) -> float:
        return self.server_cpu / max(1, self.requests) * 1e6


async def measure_slice(session, url: str, body: bytes, headers: dict[str, str], connections: int,
                        seconds: float, warmup: float, side: Side) -> None:
    """Drive one server with every connection for ``warmup`` + ``seconds`` and add what was
    counted in the last ``seconds`` to ``side``."""
    counts = {"ok": 0, "err": 0}
    state = {"counting": False, "stop": False}

    async def worker() -> None:
        while not state["stop"]:
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if state["counting"]:
                    counts["ok" if resp.status == 200 else "err"] += 1

    tasks = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(warmup)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    s0 = process_cpu_seconds(side.pid)
    t0 = time.perf_counter()
    state["counting"] = True
    await asyncio.sleep(seconds)
    state["counting"] = False
    elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    s1 = process_cpu_seconds(side.pid)
    state["stop"] = True
    await asyncio.gather(*tasks)
    side.requests += counts["ok"]
    side.errors += counts["err"]
    side.seconds += elapsed
    side.client_cpu += r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    side.server_cpu += s1 - s0


def create_channel(http_port: int) -> str:
    import boto3
    from botocore.config import Config

    kv = boto3.client("kinesisvideo", region_name=REGION, endpoint_url=f"http://{HOST}:{http_port}",
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                      config=Config(retries={"max_attempts": 1}))
    return kv.create_signaling_channel(ChannelName="bench-channel")["ChannelARN"]


async def run(args: argparse.Namespace) -> dict:
    import aiohttp

    with tempfile.TemporaryDirectory(prefix="signalite-bench-") as tmp:
        server, http_port = start_signalite(Path(tmp), args.log_level)
        try:
            arn = create_channel(http_port)
            body = json.dumps({"ChannelARN": arn, "SingleMasterChannelEndpointConfiguration": {
                "Protocols": ["WSS", "HTTPS"], "Role": "MASTER"}}).encode()
            sig_url = f"http://{HOST}:{http_port}{PATH}"
            # One probe: the answer must be a real endpoint list, and the reference sends as many bytes.
            with urllib.request.urlopen(urllib.request.Request(sig_url, data=body, method="POST",
                                                               headers=presign(sig_url, body))) as r:
                answer = r.read()
                assert json.loads(answer)["ResourceEndpointList"], answer
            reference, ref_port = start_reference(len(answer))
            ref_url = f"http://{HOST}:{ref_port}{PATH}"
            try:
                connector = aiohttp.TCPConnector(limit=args.connections, force_close=False)
                results = []
                slices = max(1, round(args.seconds / args.slice))
                async with aiohttp.ClientSession(connector=connector) as session:
                    for i in range(args.runs):
                        sig, ref = Side(server.pid), Side(reference.pid)
                        # Alternate short slices so both servers see the same host load.
                        for _ in range(slices):
                            await measure_slice(session, sig_url, body, presign(sig_url, body), args.connections,
                                                args.seconds / slices, args.warmup, sig)
                            await measure_slice(session, ref_url, body, presign(ref_url, body), args.connections,
                                                args.seconds / slices, args.warmup, ref)
                        if sig.errors or ref.errors:
                            raise RuntimeError(f"non-200 answers: signalite {sig.errors}, reference {ref.errors}")
                        results.append({
                            "run": i + 1, "signalite_rps": round(sig.rps), "reference_rps": round(ref.rps),
                            "ratio": round(sig.rps / ref.rps, 3),
                            "signalite_server_us_per_req": round(sig.server_us_per_request),
                            "reference_server_us_per_req": round(ref.server_us_per_request),
                            "cpu_ratio": round(ref.server_us_per_request / sig.server_us_per_request, 3),
                            "client_cpu_signalite": round(sig.client_cpu / sig.seconds, 2),
                            "client_cpu_reference": round(ref.client_cpu / ref.seconds, 2),
                        })
                        print(json.dumps(results[-1]), flush=True)
            finally:
                stop(reference)
        finally:
            stop(server)
    return {
        "median_ratio": round(statistics.median(r["ratio"] for r in results), 3),
        "median_signalite_rps": round(statistics.median(r["signalite_rps"] for r in results)),
        "median_reference_rps": round(statistics.median(r["reference_rps"] for r in results)),
        "median_signalite_server_us_per_req": round(statistics.median(r["signalite_server_us_per_req"] for r in results)),
        "median_reference_server_us_per_req": round(statistics.median(r["reference_server_us_per_req"] for r in results)),
        "median_cpu_ratio": round(statistics.median(r["cpu_ratio"] for r in results), 3),
        "max_client_cpu": max(max(r["client_cpu_signalite"], r["client_cpu_reference"]) for r in results),
        "runs": args.runs, "seconds": args.seconds, "connections": args.connections, "log_level": args.log_level,
        "signing": "pre-signed with botocore SigV4Auth at the start of each slice; verified in full by the server on every request",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.2, help="seconds of unmeasured load before each slice")
    p.add_argument("--slice", type=float, default=1.0, help="seconds per alternating slice")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--log-level", default="warning",
                   help="the server's --log-level: warning (default here) leaves the access log out; "
                        "info, serve's default, writes a line per request")
    p.add_argument("--reference-server", type=int, help=argparse.SUPPRESS)
    p.add_argument("--body-size", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reference_server:
        reference_main(args.reference_server, args.body_size)
        return 0
    if args.runs < 3:
        p.error("--runs must be at least 3 (the median of at least 3 runs is reported)")
    if not 0 < args.seconds <= MAX_SECONDS or not 0 < args.connections <= MAX_CONNECTIONS:
        p.error(f"--seconds must be in (0, {MAX_SECONDS}] and --connections in (0, {MAX_CONNECTIONS}]")
    import uvloop

    summary = uvloop.run(run(args))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
