"""Cluster benchmarks (issue #10), on 127.0.0.1 only, bounded in time and count.

    .venv/bin/python -m bench.cluster latency   # relay latency: embedded vs cluster same-node vs cross-node
    .venv/bin/python -m bench.cluster kill      # messages lost / duplicated across kill -9 of the recipient's node
    .venv/bin/python -m bench.cluster presence  # seconds from kill -9 to the dead node's presence being gone

Servers are real ``signalite serve`` processes (tests/support/server.py) with ``--quotas relaxed``
on the PostgreSQL and Redis of ``.test-env``. ``latency``: ``--pairs`` master+viewer pairs, open
loop at ``--rate`` messages per second in all (half each direction) for ``--seconds``, one-way
latency = receive − send (``time.monotonic_ns`` in the one client process, the stamp in the
payload); Redis operations per relayed message from ``INFO commandstats`` around the cluster
runs. The client is python ``websockets`` in one process: its CPU is printed (≥ 0.9 makes a figure
a lower bound). Nothing here asserts a time.
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


async def relay(masters_on: list[Server], viewers_on: list[Server], pairs: int, rate: float, seconds: float,
                with_redis: bool = False) -> dict[str, Any]:
    """``pairs`` channels, master on masters_on[i % n], viewer on viewers_on[i % n]; with the
    CPU the servers (and, ``with_redis``, Redis) spent per relayed message while measuring."""
    servers = list({id(s): s for s in (*masters_on, *viewers_on)}.values())
    kv = masters_on[0].boto()
    stamp = time.monotonic_ns()
    arns = [kv.create_signaling_channel(ChannelName=f"b{stamp}-{i}")["ChannelARN"] for i in range(pairs)]
    lat: list[int] = []
    conns = []
    for i, arn in enumerate(arns):
        m = await connect(masters_on[i % len(masters_on)], arn)
        v = await connect(viewers_on[i % len(viewers_on)], arn, "v")
        conns.append((m, v))
    measuring = False

    async def reader(peer: Any) -> None:
        async for raw in peer.ws:
            frame = json.loads(raw)
            sent = int(base64.b64decode(frame["messagePayload"]))
            if measuring:
                lat.append(time.monotonic_ns() - sent)

    tasks = [asyncio.create_task(reader(p)) for pair in conns for p in pair]
    interval = 1 / rate
    total = 0
    c0, s0, r0 = cpu(), 0.0, 0.0
    start = time.monotonic()
    warm = start + 0.5
    end = warm + seconds
    i = 0
    while (now := time.monotonic()) < end:
        if not measuring and now >= warm:
            measuring = True
            c0, sent0 = cpu(), total
            s0 = servers_cpu(servers)
            r0 = await redis_cpu() if with_redis else 0.0
        due = int((now - start) / interval)
        while total < due:
            m, v = conns[i % pairs]
            payload = base64.b64encode(str(time.monotonic_ns()).encode()).decode()
            if i % 2:
                await m.send("ICE_CANDIDATE", payload, recipient="v")
            else:
                await v.send("ICE_CANDIDATE", payload)
            total += 1
            i += 1
        await asyncio.sleep(0.001)
    client_cpu = (cpu() - c0) / seconds
    offered = (total - sent0) / seconds
    await asyncio.sleep(0.5)  # what is still in flight arrives (and is counted: its CPU is too)
    server_cpu = servers_cpu(servers) - s0
    redis_used = (await redis_cpu() - r0) if with_redis else 0.0
    for t in tasks:
        t.cancel()
    for m, v in conns:
        await m.close()
        await v.close()
    lat.sort()
    return {"offered_msg_s": round(offered), "received": len(lat), "p50_ms": round(percentile(lat, 0.5), 3),
            "p99_ms": round(percentile(lat, 0.99), 3), "p999_ms": round(percentile(lat, 0.999), 3),
            "client_cpu": round(client_cpu, 2),
            "server_cpu_us_per_msg": round(server_cpu / max(1, len(lat)) * 1e6, 1),
            **({"redis_cpu_us_per_msg": round(redis_used / max(1, len(lat)) * 1e6, 1)} if with_redis else {})}


async def bench_latency(args: argparse.Namespace, tmp: Path) -> None:
    single = Server(data_dir=tmp / "single", args=["--quotas", "relaxed", "--log-level", "warning"]).start()
    nodes = cluster(2, tmp, f"lat{os.getpid()}")
    try:
        results: dict[str, list[dict[str, Any]]] = {"embedded": [], "cluster_same_node": [], "cluster_cross_node": []}
        ops: list[float] = []
        for run in range(args.runs):
            for name in (["embedded", "cluster_same_node", "cluster_cross_node"] if run % 2 == 0
                         else ["cluster_cross_node", "cluster_same_node", "embedded"]):
                if name == "embedded":
                    results[name].append(await relay([single], [single], args.pairs, args.rate, args.seconds))
                    continue
                before = await redis_stats()
                r = await relay([nodes[0]], [nodes[0] if name == "cluster_same_node" else nodes[1]],
                                args.pairs, args.rate, args.seconds, with_redis=True)
                after = await redis_stats()
                calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
                r["redis_evalsha"] = calls.get("evalsha", 0)
                r["redis_calls_per_msg"] = round(sum(v for k, v in calls.items() if k not in ("info",)) /
                                                 max(1, r["received"]), 3)
                if name == "cluster_cross_node":
                    ops.append(r["redis_calls_per_msg"])
                results[name].append(r)
        for name, rs in results.items():
            print(name, json.dumps(rs))
            for key in ("p50_ms", "p99_ms", "p999_ms", "server_cpu_us_per_msg", "redis_cpu_us_per_msg",
                        "redis_calls_per_msg"):
                if key not in rs[0]:
                    continue
                values = sorted(r[key] for r in rs)
                print(f"  median {key}: {values[len(values) // 2]}")
    finally:
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
    parser.add_argument("--seconds", type=float, default=4)
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
