"""Cluster benchmarks (issue #10), on 127.0.0.1 only, bounded in time and count.

    .venv/bin/python -m bench.cluster latency   # relay latency: embedded vs cluster same-node vs cross-node
    .venv/bin/python -m bench.cluster kill      # messages lost / duplicated across kill -9 of the recipient's node
    .venv/bin/python -m bench.cluster presence  # seconds from kill -9 to the dead node's presence being gone

Servers are real ``signalite serve`` processes (tests/support/server.py) with ``--quotas relaxed``
on the PostgreSQL and Redis of ``.test-env``. ``latency``: three sets of ``--pairs``
master+viewer pairs, open side by side for the whole launch — on one embedded server, on one
node of a two-node cluster, and split across the two nodes — driven in turn in ``--slice``-second
slices (rotating order, ``--warmup`` before each), each at an open loop of ``--rate`` messages per
second in all (half each direction), ``--seconds`` per set and run; one-way latency = receive −
send (``time.monotonic_ns`` in the one client process, the stamp in the payload); the servers'
CPU (``/proc``) and Redis's (``INFO cpu``) per relayed message, and Redis operations per relayed
message from ``INFO commandstats``, over the measured slices. The client is python
``websockets`` in one process: its CPU is printed (≥ 0.9 makes a figure a lower bound). Nothing
here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.server import Server  # noqa: E402
from tests.support.signaling import connect, presign  # noqa: E402,F401


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        for line in (ROOT / ".test-env").read_text().splitlines():
            if line.startswith(name + "="):
                return line.split("=", 1)[1]
        raise SystemExit(f"{name} is not set (see .test-env)")
    return value


def cluster(count: int, tmp: Path, tag: str, *extra: str) -> list[Server]:
    pg = _env("SIGNALITE_TEST_POSTGRES_URL") + f"?schema=bench_{tag}"
    bus = _env("SIGNALITE_TEST_REDIS_URL") + f"?prefix=bench-{tag}:"
    nodes = []
    for i in range(count):
        d = tmp / f"{tag}-{i}"
        if i:
            (d / "tls").mkdir(parents=True)
            for f in ("ca.pem", "ca.key"):
                shutil.copy(tmp / f"{tag}-0" / "tls" / f, d / "tls" / f)
        s = Server(data_dir=d, args=["--store", pg, "--bus", bus, "--quotas", "relaxed", "--node-id", f"n{i}",
                                     "--log-level", "warning", *extra])
        nodes.append(s.start())
    return nodes


def percentile(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def servers_cpu(servers: list[Server]) -> float:
    """utime + stime of the server processes in seconds, from /proc."""
    total = 0.0
    for server in servers:
        assert server.proc is not None
        fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def redis_cpu() -> float:
    """Redis's own CPU seconds (``INFO cpu``: the main thread and its children)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(_env("SIGNALITE_TEST_REDIS_URL"))
    try:
        info = await client.info("cpu")
    finally:
        await client.aclose()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def redis_stats() -> dict[str, int]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(_env("SIGNALITE_TEST_REDIS_URL"))
    try:
        info = await client.info("commandstats")
    finally:
        await client.aclose()
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}


class Pairs:
    """``pairs`` channels with a master on ``masters_on[i % n]`` and its viewer on
    ``viewers_on[i % n]``, open for the whole launch; :meth:`drive` sends through them."""

    def __init__(self, name: str, masters_on: list[Server], viewers_on: list[Server], with_redis: bool) -> None:
        self.name, self.masters_on, self.viewers_on, self.with_redis = name, masters_on, viewers_on, with_redis
        self.servers = list({id(s): s for s in (*masters_on, *viewers_on)}.values())
        self.conns: list[tuple[Any, Any]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.sink: list[int] | None = None
        """Where arriving messages' latencies go (None: not measuring)."""
        self.sent = 0

    async def open(self, pairs: int) -> "Pairs":
        kv = self.masters_on[0].boto()
        stamp = time.monotonic_ns()
        for i in range(pairs):
            arn = kv.create_signaling_channel(ChannelName=f"b{stamp}-{self.name}-{i}")["ChannelARN"]
            m = await connect(self.masters_on[i % len(self.masters_on)], arn)
            v = await connect(self.viewers_on[i % len(self.viewers_on)], arn, "v")
            self.conns.append((m, v))
        self.tasks = [asyncio.create_task(self._reader(p)) for pair in self.conns for p in pair]
        return self

    async def _reader(self, peer: Any) -> None:
        async for raw in peer.ws:
            sent = int(base64.b64decode(json.loads(raw)["messagePayload"]))
            if self.sink is not None:
                self.sink.append(time.monotonic_ns() - sent)

    async def _send(self, rate: float, seconds: float) -> int:
        """Open loop at ``rate`` for ``seconds``, half each direction, round robin; how many sent."""
        total, start = 0, time.monotonic()
        while (now := time.monotonic()) - start < seconds:
            due = int((now - start) * rate)
            while total < due:
                m, v = self.conns[self.sent % len(self.conns)]
                payload = base64.b64encode(str(time.monotonic_ns()).encode()).decode()
                if self.sent % 2:
                    await m.send("ICE_CANDIDATE", payload, recipient="v")
                else:
                    await v.send("ICE_CANDIDATE", payload)
                total += 1
                self.sent += 1
            await asyncio.sleep(0.001)
        return total

    async def drive(self, rate: float, seconds: float, warmup: float, into: dict[str, Any]) -> None:
        """One slice: ``warmup`` unmeasured, ``seconds`` measured (latencies, the client's, the
        servers' and Redis's CPU), then a pause for what is in flight, added to ``into``."""
        await self._send(rate, warmup)
        lat: list[int] = into.setdefault("lat", [])
        c0, s0 = cpu(), servers_cpu(self.servers)
        r0 = await redis_cpu() if self.with_redis else 0.0
        self.sink = lat
        sent = await self._send(rate, seconds)
        client = cpu() - c0
        await asyncio.sleep(0.3)  # what is still in flight arrives (and is counted: its CPU is too)
        self.sink = None
        into["sent"] = into.get("sent", 0) + sent
        into["seconds"] = into.get("seconds", 0.0) + seconds
        into["client_cpu"] = into.get("client_cpu", 0.0) + client
        into["server_cpu"] = into.get("server_cpu", 0.0) + servers_cpu(self.servers) - s0
        if self.with_redis:
            into["redis_cpu"] = into.get("redis_cpu", 0.0) + await redis_cpu() - r0

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for m, v in self.conns:
            await m.close()
            await v.close()


def summary(acc: dict[str, Any]) -> dict[str, Any]:
    lat = sorted(acc.get("lat", []))
    n = max(1, len(lat))
    out = {"offered_msg_s": round(acc["sent"] / acc["seconds"]), "received": len(lat),
           "p50_ms": round(percentile(lat, 0.5), 3), "p99_ms": round(percentile(lat, 0.99), 3),
           "p999_ms": round(percentile(lat, 0.999), 3), "client_cpu": round(acc["client_cpu"] / acc["seconds"], 2),
           "server_cpu_us_per_msg": round(acc["server_cpu"] / n * 1e6, 1)}
    if "redis_cpu" in acc:
        out["redis_cpu_us_per_msg"] = round(acc["redis_cpu"] / n * 1e6, 1)
        out["redis_evalsha"] = acc["redis_evalsha"]
        out["redis_calls_per_msg"] = round(acc["redis_calls"] / n, 3)
    return out


async def bench_latency(args: argparse.Namespace, tmp: Path) -> None:
    """The three configurations open side by side for the whole launch and driven in turn, in
    short slices whose order rotates, so that each sees the same host: on a VM whose scheduler
    stalls every process for 10-20 ms every few seconds, a configuration measured alone for a
    few seconds gets or misses a stall by chance, and its p99 with it."""
    single = Server(data_dir=tmp / "single", args=["--quotas", "relaxed", "--log-level", "warning"]).start()
    nodes = cluster(2, tmp, f"lat{os.getpid()}")
    sets: list[Pairs] = []
    try:
        sets = [await Pairs("embedded", [single], [single], False).open(args.pairs),
                await Pairs("cluster_same_node", [nodes[0]], [nodes[0]], True).open(args.pairs),
                await Pairs("cluster_cross_node", [nodes[0]], [nodes[1]], True).open(args.pairs)]
        results: dict[str, list[dict[str, Any]]] = {p.name: [] for p in sets}
        slices = max(1, round(args.seconds / args.slice))
        for run in range(args.runs):
            acc: dict[str, dict[str, Any]] = {p.name: {} for p in sets}
            for k in range(slices):
                shift = (run * slices + k) % len(sets)
                for p in sets[shift:] + sets[:shift]:
                    before = await redis_stats() if p.with_redis else {}
                    await p.drive(args.rate, args.seconds / slices, args.warmup, acc[p.name])
                    if p.with_redis:
                        after = await redis_stats()
                        calls = {key: after.get(key, 0) - before.get(key, 0) for key in after}
                        a = acc[p.name]
                        a["redis_evalsha"] = a.get("redis_evalsha", 0) + calls.get("evalsha", 0)
                        a["redis_calls"] = a.get("redis_calls", 0) + sum(v for key, v in calls.items()
                                                                          if key not in ("info",))
            for p in sets:
                results[p.name].append(summary(acc[p.name]))
        for name, rs in results.items():
            print(name, json.dumps(rs))
            for key in ("p50_ms", "p99_ms", "p999_ms", "server_cpu_us_per_msg", "redis_cpu_us_per_msg",
                        "redis_calls_per_msg"):
                if key not in rs[0]:
                    continue
                values = sorted(r[key] for r in rs)
                print(f"  median {key}: {values[len(values) // 2]}")
    finally:
        for p in sets:
            await p.close()
        single.stop()
        for n in nodes:
            n.stop()


async def bench_kill(args: argparse.Namespace, tmp: Path) -> None:
    """The master on node 0 sends ``--messages`` round robin to ``--viewers`` viewers, whose
    node is killed (-9) at each third, the viewers reconnecting on the next node each time. (Many
    viewers: a recipient keeps at most 512 retained messages, and one that is away for the lease
    at thousands of messages per second would overflow it by design.)"""
    nodes = cluster(3, tmp, f"kill{os.getpid()}")
    try:
        kv = nodes[0].boto()
        arn = kv.create_signaling_channel(ChannelName=f"kill-{time.monotonic_ns()}")["ChannelARN"]
        master = await connect(nodes[0], arn)
        order = [1, 2, 0]
        ids = [f"v{i}" for i in range(args.viewers)]
        received: dict[str, list[int]] = {v: [] for v in ids}
        done: dict[str, asyncio.Event] = {v: asyncio.Event() for v in ids}
        moved: dict[str, int] = {v: 0 for v in ids}

        async def follow(v: str) -> None:
            peer = await connect(nodes[order[0]], arn, v)
            for k in range(len(order)):
                try:
                    async for raw in peer.ws:
                        n = int(base64.b64decode(json.loads(raw)["messagePayload"]))
                        if n < 0:
                            done[v].set()
                            return
                        received[v].append(n)
                except Exception:
                    pass
                if k + 1 < len(order):
                    peer = await connect(nodes[order[k + 1]], arn, v)
                    moved[v] += 1

        tasks = [asyncio.create_task(follow(v)) for v in ids]
        while sum(len(r) for r in received.values()) == 0 and not all(moved.values()):
            await asyncio.sleep(0.05)
            break
        await asyncio.sleep(1)
        kills = []
        t0 = time.monotonic()
        for i in range(args.messages):
            if i in (args.messages // 3, 2 * args.messages // 3):
                victim = nodes[order[len(kills)]]
                assert victim.proc is not None
                victim.proc.send_signal(signal.SIGKILL)
                kills.append(i)
            await master.send("ICE_CANDIDATE", base64.b64encode(str(i).encode()).decode(), recipient=ids[i % len(ids)])
            if i % 50 == 0:
                await asyncio.sleep(0.02)
        rate = args.messages / (time.monotonic() - t0)
        while min(moved.values()) < 2:
            await asyncio.sleep(0.05)
        for v in ids:
            await master.send("ICE_CANDIDATE", base64.b64encode(b"-1").decode(), recipient=v)
        for v in ids:
            await asyncio.wait_for(done[v].wait(), 60)
        for t in tasks:
            t.cancel()
        got = [n for v in ids for n in received[v]]
        unique = set(got)
        print(json.dumps({"sent": args.messages, "viewers": len(ids), "offered_msg_s": round(rate),
                          "kills_at": kills, "received": len(got), "lost": args.messages - len(unique),
                          "duplicates": len(got) - len(unique),
                          "in_order": all(list(dict.fromkeys(received[v])) == sorted(set(received[v])) for v in ids)}))
    finally:
        for n in nodes:
            n.stop(signal.SIGKILL)


async def bench_presence(args: argparse.Namespace, tmp: Path) -> None:
    """kill -9 a node holding a viewer; time until Redis no longer lists the viewer's presence
    (the survivors reap it once the lease lapsed: default lease 3 s)."""
    import redis.asyncio as aioredis

    tag = f"pres{os.getpid()}"
    nodes = cluster(2, tmp, tag)
    client = aioredis.Redis.from_url(_env("SIGNALITE_TEST_REDIS_URL"))
    try:
        times = []
        for run in range(args.runs):
            kv = nodes[0].boto()
            arn = kv.create_signaling_channel(ChannelName=f"p{run}-{time.monotonic_ns()}")["ChannelARN"]
            victim = nodes[1]
            v = await connect(victim, arn, "v")
            key = f"bench-{tag}:p:{arn}"
            while not await client.hget(key, "h:v"):
                await asyncio.sleep(0.01)
            assert victim.proc is not None
            victim.proc.send_signal(signal.SIGKILL)
            t0 = time.monotonic()
            while await client.hget(key, "h:v"):
                await asyncio.sleep(0.01)
            times.append(round(time.monotonic() - t0, 2))
            await v.close()
            victim.proc.wait()
            victim.start()
        print(json.dumps({"seconds_to_clear": times, "median": sorted(times)[len(times) // 2]}))
    finally:
        await client.aclose()
        for n in nodes:
            n.stop(signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("latency", "kill", "presence"))
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=4, help="measured seconds per configuration and run")
    parser.add_argument("--slice", type=float, default=0.5,
                        help="latency: the configurations take turns in slices this long (measured part)")
    parser.add_argument("--warmup", type=float, default=0.1, help="latency: unmeasured seconds before each slice")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--viewers", type=int, default=20)
    args = parser.parse_args()
    args.rate = min(args.rate, 20_000)
    args.seconds = min(args.seconds, 30)
    with tempfile.TemporaryDirectory() as d:
        fn = {"latency": bench_latency, "kill": bench_kill, "presence": bench_presence}[args.what]
        asyncio.run(fn(args, Path(d)))


if __name__ == "__main__":
    main()
