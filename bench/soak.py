"""Soak: connection churn plus steady relay traffic for N minutes, and the server's resources over time.

    .venv/bin/python -m bench.soak --minutes 10          # the recorded run (docs/benchmarks.md)
    .venv/bin/python -m bench.soak --minutes 1 --sample 5  # a quick look

On 127.0.0.1 only, it starts ``signalite serve`` (relaxed quotas, so that the load is not refused,
but with the per-address connection tracking of the default profile on, so the guard's bookkeeping
is soaked too; ``--log-level debug`` for the loop monitor) and, from this one process:

* **steady relay**: ``--pairs`` master+viewer pairs over TLS, viewers sending ``--rate`` ICE
  candidates per second in all to their masters;
* **WSS churn**: ``--churn`` viewers per second connect (SigV4-presigned, TLS), send one message
  and close, over ``--churn-channels`` channels, with fresh client ids;
* **REST churn**: ``--rest`` signed DescribeSignalingChannel calls per second (boto3, in a thread);
* **hostile churn**: ``--silent`` TCP connections per second that never send a byte (closed by
  the server's header timeout, ``--header-timeout 2`` here).

Every ``--sample`` seconds it prints one line: the server's RSS and open file descriptors (read
from ``/proc/<pid>`` outside the server), its asyncio tasks and event-loop lag (the server's
``signalite.loop`` debug line), its CPU, and what the clients saw (messages delivered, churn
connects and their failures). At the end: each resource after the warm-up (``--warmup``) as
first / last / min / max and the drift of last against first, which should stay within ±5%.
Nothing here asserts; it measures, and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from .loadgen import WS, Target, client_frame, connect, cpu_pid, raise_fd_limit

ACCESS_KEY = "AKIDSIGNALITESOAK001"
SECRET_KEY = "signalite-soak-secret-key-00000000000000"
ACCOUNT = "111122223333"
REGION = "us-west-2"
ROOT = Path(__file__).resolve().parent.parent
_LOOP_LINE = re.compile(rb"loop: tasks=(\d+) lag_mean_ms=([\d.]+) lag_max_ms=([\d.]+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


class Counter(WS):
    """A socket that counts the text frames it receives."""

    def __init__(self, request: bytes, accept: bytes) -> None:
        super().__init__(request, accept)
        self.received = 0

    def on_text(self, buf: bytes, start: int, end: int) -> None:
        self.received += 1


def viewer_message(payload: str) -> bytes:
    return client_frame(b'{"action":"ICE_CANDIDATE","messagePayload":"' + payload.encode() + b'"}')


class Soak:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.port, self.http_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / "server.log"
        self.stats = {"sent": 0, "churn_ok": 0, "churn_failed": 0, "rest_ok": 0, "rest_failed": 0,
                      "silent": 0}
        self.stop = threading.Event()

    # --- the server ----------------------------------------------------------------------------
    def start_server(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_"))}
        env.update(SIGNALITE_ACCESS_KEY_ID=ACCESS_KEY, SIGNALITE_SECRET_ACCESS_KEY=SECRET_KEY,
                   SIGNALITE_ACCOUNT_ID=ACCOUNT)
        cmd = [sys.executable, "-m", "signalite", "serve", "--data-dir", str(self.tmp / "data"),
               "--port", str(self.port), "--http-port", str(self.http_port), "--quotas", "relaxed",
               "--max-unauthenticated-per-ip", "256", "--handshakes-per-ip", "0",
               "--header-timeout", "2", "--log-level", "debug"]
        log = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the process's life
        self.proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                     preexec_fn=raise_fd_limit)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop_server(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def boto(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("kinesisvideo", region_name=REGION, endpoint_url=f"http://127.0.0.1:{self.http_port}",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(retries={"max_attempts": 1}, max_pool_connections=4))

    def loop_line(self) -> tuple[int, float, float] | None:
        """The server's latest loop-monitor line: (tasks, mean lag ms, max lag ms)."""
        with open(self.log_path, "rb") as f:
            f.seek(max(0, self.log_path.stat().st_size - 65536))
            found = _LOOP_LINE.findall(f.read())
        if not found:
            return None
        tasks, mean, worst = found[-1]
        return int(tasks), float(mean), float(worst)

    # --- the load --------------------------------------------------------------------------------
    def rest_churn(self, channel: str) -> None:
        kv = self.boto()
        period = 1.0 / self.args.rest if self.args.rest else None
        next_at = time.monotonic()
        while period and not self.stop.is_set():
            try:
                kv.describe_signaling_channel(ChannelName=channel)
                self.stats["rest_ok"] += 1
            except Exception:  # counted, not fatal: the soak reports what the clients saw
                self.stats["rest_failed"] += 1
            next_at += period
            self.stop.wait(max(0.0, next_at - time.monotonic()))

    async def steady(self, t: Target, arns: list[str]) -> list[Counter]:
        masters = [await connect(Counter, t.host, t.port, t.url(a, None), t.ssl) for a in arns]
        viewers = [await connect(Counter, t.host, t.port, t.url(a, f"steady{i}"), t.ssl) for i, a in enumerate(arns)]
        frame = viewer_message("eyJjYW5kaWRhdGUiOiJjYW5kaWRhdGU6MSAxIHVkcCAxIDEyNy4wLjAuMSA5IHR5cCBob3N0In0=")
        loop = asyncio.get_running_loop()

        async def send_loop() -> None:
            tick = 0.01
            per_tick = self.args.rate * tick
            owed = 0.0
            i = 0
            next_at = loop.time()
            while not self.stop.is_set():
                owed += per_tick
                while owed >= 1:
                    v = viewers[i % len(viewers)]
                    if v.transport is not None and not v.closed:
                        v.transport.write(frame)
                        self.stats["sent"] += 1
                    i += 1
                    owed -= 1
                next_at += tick
                await asyncio.sleep(max(0.0, next_at - loop.time()))

        self._sender = asyncio.ensure_future(send_loop())
        return masters

    async def churn(self, t: Target, arns: list[str]) -> None:
        loop = asyncio.get_running_loop()
        frame = viewer_message("eA==")
        n = 0
        inflight: set[asyncio.Task[None]] = set()

        async def once(arn: str, cid: str) -> None:
            try:
                ws = await connect(WS, t.host, t.port, t.url(arn, cid), t.ssl)
            except Exception:
                self.stats["churn_failed"] += 1
                return
            self.stats["churn_ok"] += 1
            assert ws.transport is not None
            ws.transport.write(frame)
            ws.close()

        period = 1.0 / self.args.churn if self.args.churn else None
        next_at = loop.time()
        while period and not self.stop.is_set():
            task = loop.create_task(once(arns[n % len(arns)], f"churn{n}"))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            n += 1
            next_at += period
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        if inflight:
            await asyncio.wait(inflight, timeout=15)

    async def silent(self) -> None:
        """Connections that never send a byte: the server's header timeout closes them."""
        loop = asyncio.get_running_loop()
        period = 1.0 / self.args.silent if self.args.silent else None
        held: list[socket.socket] = []
        next_at = loop.time()
        while period and not self.stop.is_set():
            s = socket.socket()
            s.setblocking(False)
            try:
                await loop.sock_connect(s, ("127.0.0.1", self.http_port))
                held.append(s)
                self.stats["silent"] += 1
            except OSError:
                s.close()
            # forget (close our side of) the ones the server has closed
            keep = []
            for k in held:
                try:
                    if k.recv(1) == b"":
                        k.close()
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    k.close()
                    continue
                keep.append(k)
            held = keep
            next_at += period
            await asyncio.sleep(max(0.0, next_at - loop.time()))
        for k in held:
            k.close()

    # --- the run ---------------------------------------------------------------------------------
    async def run(self) -> list[dict[str, Any]]:
        a = self.args
        kv = self.boto()
        steady_arns = [kv.create_signaling_channel(ChannelName=f"soak-steady-{i}")["ChannelARN"] for i in range(a.pairs)]
        churn_arns = [kv.create_signaling_channel(ChannelName=f"soak-churn-{i}")["ChannelARN"]
                      for i in range(a.churn_channels)]
        t = Target({"url": f"wss://127.0.0.1:{self.port}", "ca": str(self.tmp / "data" / "tls" / "ca.pem"),
                    "creds": {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}, "server_pid": self.proc.pid})  # type: ignore[union-attr]
        masters = await self.steady(t, steady_arns)
        rest = threading.Thread(target=self.rest_churn, args=("soak-steady-0",), daemon=True)
        rest.start()
        loads = [asyncio.ensure_future(self.churn(t, churn_arns)), asyncio.ensure_future(self.silent())]
        pid = self.proc.pid  # type: ignore[union-attr]
        samples: list[dict[str, Any]] = []
        start = time.monotonic()
        end = start + a.minutes * 60
        last_cpu, last_t, last_recv = cpu_pid(pid), start, 0
        print(f"{'t_s':>6} {'rss_MiB':>8} {'fds':>5} {'tasks':>6} {'lag_ms':>7} {'lagmax':>7} {'cpu%':>5} "
              f"{'deliv/s':>8} {'churn_ok':>8} {'churn_err':>9} {'rest_ok':>7} {'silent':>6}", flush=True)
        while time.monotonic() < end:
            await asyncio.sleep(min(a.sample, max(0.0, end - time.monotonic())))
            now = time.monotonic()
            st = proc_status(pid)
            cpu = cpu_pid(pid)
            received = sum(m.received for m in masters)
            line = self.loop_line()
            sample = {
                "t": now - start, "rss_kib": st["VmRSS"], "fds": st["fds"], "threads": st["Threads"],
                "tasks": line[0] if line else None, "lag_mean_ms": line[1] if line else None,
                "lag_max_ms": line[2] if line else None,
                "cpu_pct": 100 * (cpu - last_cpu) / (now - last_t) if cpu is not None and last_cpu is not None else None,
                "delivered_per_s": (received - last_recv) / (now - last_t), **self.stats,
            }
            last_cpu, last_t, last_recv = cpu, now, received
            samples.append(sample)
            print(f"{sample['t']:6.0f} {sample['rss_kib'] / 1024:8.1f} {sample['fds']:5d} "
                  f"{sample['tasks'] if sample['tasks'] is not None else '-':>6} "
                  f"{sample['lag_mean_ms'] if sample['lag_mean_ms'] is not None else '-':>7} "
                  f"{sample['lag_max_ms'] if sample['lag_max_ms'] is not None else '-':>7} "
                  f"{sample['cpu_pct'] or 0:5.0f} {sample['delivered_per_s']:8.0f} {self.stats['churn_ok']:8d} "
                  f"{self.stats['churn_failed']:9d} {self.stats['rest_ok']:7d} {self.stats['silent']:6d}", flush=True)
        self.stop.set()
        await asyncio.gather(*loads, self._sender, return_exceptions=True)
        rest.join(10)
        for m in masters:
            m.close()
        return samples


def summary(samples: list[dict[str, Any]], warmup: float) -> str:
    after = [s for s in samples if s["t"] >= warmup] or samples
    lines = [f"after a {warmup:g} s warm-up, {len(after)} samples:",
             f"{'':14} {'first':>9} {'last':>9} {'min':>9} {'max':>9} {'median':>9} {'last/first':>10}"]
    for key, label, scale in (("rss_kib", "RSS MiB", 1 / 1024), ("fds", "open fds", 1), ("tasks", "asyncio tasks", 1),
                              ("lag_mean_ms", "lag mean ms", 1), ("lag_max_ms", "lag max ms", 1),
                              ("cpu_pct", "server CPU %", 1), ("delivered_per_s", "delivered/s", 1)):
        vals = [s[key] * scale for s in after if s.get(key) is not None]
        if not vals:
            continue
        drift = f"{100 * (vals[-1] - vals[0]) / vals[0]:+.1f}%" if vals[0] else "—"
        lines.append(f"{label:14} {vals[0]:9.1f} {vals[-1]:9.1f} {min(vals):9.1f} {max(vals):9.1f} "
                     f"{statistics.median(vals):9.1f} {drift:>10}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="how long the load runs (default 10)")
    p.add_argument("--sample", type=float, default=30.0, help="seconds between samples (default 30)")
    p.add_argument("--warmup", type=float, default=120.0, help="seconds left out of the summary (default 120)")
    p.add_argument("--pairs", type=int, default=100, help="steady master+viewer pairs (default 100)")
    p.add_argument("--rate", type=float, default=1000.0, help="steady messages per second in all (default 1000)")
    p.add_argument("--churn", type=float, default=20.0, help="WSS connect-send-close per second (default 20)")
    p.add_argument("--churn-channels", type=int, default=50, help="channels the churn spreads over (default 50)")
    p.add_argument("--rest", type=float, default=20.0, help="signed REST calls per second (default 20)")
    p.add_argument("--silent", type=float, default=5.0, help="silent TCP connections opened per second (default 5)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data dir and server log")
    args = p.parse_args(argv)
    raise_fd_limit()
    tmp = Path(tempfile.mkdtemp(prefix="signalite-soak-"))
    soak = Soak(args, tmp)
    code = None
    try:
        soak.start_server()
        import uvloop

        samples = uvloop.run(soak.run())
    finally:
        soak.stop.set()
        code = soak.stop_server()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(summary(samples, args.warmup))
    print(f"server exit status after SIGTERM: {code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
