"""WSS relay benchmarks (issue #3): Signalite beside a minimal aiohttp+uvloop relay, in one launch.

    .venv/bin/python -m bench.relay            # full run: 3 runs each, about 4-5 minutes
    .venv/bin/python -m bench.relay --quick    # smoke run: 1 run each, smaller counts, about 1 minute

It starts, on 127.0.0.1 only:

* the real server, ``python -m signalite serve --quotas relaxed`` with its TLS port and its plain
  ``--http-port`` listener, in a temporary data dir, and creates the benchmark channels with boto3;
* ``bench.reference_relay`` (plain and TLS listeners, the same certificate as Signalite, frames
  written straight to the transport as Signalite does; ``--reference-write aiohttp`` for the
  awaited ``send_str`` variant);

and then, for each scenario, runs ``bench.loadgen`` in its own process against each server in turn
(the order alternates between runs), ``--runs`` times (default 3), and prints the medians:

a. ``throughput``  pairs of master+viewer (one pair per channel) echoing a window of messages;
   messages delivered per second.
b. ``latency``     2,000 connections (1,000 master+viewer pairs), open loop at fixed offered rates
   (5k, 10k, 20k msg/s, half master→viewer, half viewer→master); one-way p50/p99/p999.
c. ``idle``        server RSS growth per idle authenticated connection (plain and TLS); both
   servers are restarted before each memory run so every run starts from a fresh process.
d. ``connects``    SigV4-presigned connects (handshake complete) per second, 32 in flight
   (``--connect-concurrency``), and the handshake's p50/p99; the
   URLs are presigned before the clock starts, so the client's signing cost is excluded.
e. ``fanout``      1,000 viewers on one channel; master→viewers 1k msg/s and viewers→master
   1k msg/s; one-way p50/p99/p999.

Every figure is the median of the runs; the client's CPU (and the server's, and everything else's on
the machine) over the measured window is reported beside it. Nothing here asserts a time: this is a
measuring tool, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ACCESS_KEY = "AKIDSIGNALITEBENCH01"
SECRET_KEY = "signalite-bench-secret-key-000000000000"
ACCOUNT = "111122223333"
REGION = "us-west-2"
ROOT = Path(__file__).resolve().parent.parent

GOALS = {
    "throughput": "≥ 0.85× reference",
    "latency@20000": "p99 ≤ 1 ms",
    "idle_plain": "≤ 16 KiB",
    "idle_tls": "≤ 48 KiB",
    "connects": "≥ 2,000/s per core",
    "fanout": "p99 ≤ 2 ms",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- the two servers ---------------------------------------------------------------------------

class Server:
    name = ""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()        # TLS
        self.http_port = free_port()   # plain
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def plain_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}"

    @property
    def tls_url(self) -> str:
        return f"wss://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.data_dir / "tls" / "ca.pem")

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_"))}

    def wait_ready(self, deadline: float) -> None:
        raise NotImplementedError

    def start(self) -> None:
        logf = open(self.data_dir / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(self.command(), env=self.env(), cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=logf, preexec_fn=_raise_nofile)
        self.wait_ready(time.monotonic() + 30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


class Signalite(Server):
    name = "signalite"
    extra: list[str] = []
    """More ``serve`` flags (``--signalite-arg``)."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "signalite", "serve", "--data-dir", str(self.data_dir),
                "--port", str(self.port), "--http-port", str(self.http_port), "--quotas", "relaxed",
                "--log-level", "warning", *self.extra]

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update({"SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY, "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY,
                    "SIGNALITE_ACCOUNT_ID": ACCOUNT})
        return env

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:  # type: ignore[union-attr]
                raise RuntimeError(f"signalite exited with {self.proc.returncode}; see {self.data_dir}/signalite.log")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("signalite did not become healthy")

    def create_channels(self, names: list[str]) -> list[str]:
        import botocore.session
        from botocore.config import Config

        client = botocore.session.get_session().create_client(
            "kinesisvideo", region_name=REGION, endpoint_url=f"http://127.0.0.1:{self.http_port}",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": 1}))
        arns = []
        for name in names:
            try:
                arns.append(client.create_signaling_channel(ChannelName=name)["ChannelARN"])
            except client.exceptions.ResourceInUseException:
                arns.append(client.describe_signaling_channel(ChannelName=name)["ChannelInfo"]["ChannelARN"])
        return arns


class Reference(Server):
    name = "reference"

    def __init__(self, data_dir: Path, cert_dir: Path, write: str = "direct", backlog: int = 128) -> None:
        super().__init__(data_dir)
        self.cert_dir = cert_dir
        self.write = write
        self.backlog = backlog

    @property
    def ca(self) -> str:
        return str(self.cert_dir / "ca.pem")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.reference_relay", "--port", str(self.http_port),
                "--tls-port", str(self.port), "--tls-cert", str(self.cert_dir / "server.pem"),
                "--tls-key", str(self.cert_dir / "server.key"), "--write", self.write,
                "--backlog", str(self.backlog)]

    def wait_ready(self, deadline: float) -> None:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != b"READY":
            raise RuntimeError(f"reference relay did not start: {line!r}")


# --- running the load generator ----------------------------------------------------------------

def loadgen(spec: dict[str, Any], timeout: float = 180.0) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "bench.loadgen"], input=json.dumps(spec).encode(), check=False,
                          capture_output=True, cwd=ROOT, timeout=timeout, preexec_fn=_raise_nofile)
    out = proc.stdout.decode().strip().splitlines()
    if proc.returncode != 0 or not out:
        return {"error": f"loadgen exited {proc.returncode}: {proc.stderr.decode()[-500:]}"}
    return json.loads(out[-1])


def spec_for(server: Server, tls: bool = False, **kw: Any) -> dict[str, Any]:
    return {"url": server.tls_url if tls else server.plain_url, "ca": server.ca, "server_pid": server.pid,
            "creds": {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}, **kw}


# --- the table ---------------------------------------------------------------------------------

def med(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    if unit == "us":
        return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"
    if abs(v) >= 100:
        return f"{v:,.0f}{unit}"
    return f"{v:.1f}{unit}"


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(self, metric: str, runs: dict[str, list[dict[str, Any]]], key: str, unit: str = "",
            goal: str = "", lower_is_better: bool = False, verdict: str = "") -> None:
        sig = med([r.get(key) for r in runs.get("signalite", []) if "error" not in r])
        ref = med([r.get(key) for r in runs.get("reference", []) if "error" not in r])
        ratio = (sig / ref) if (sig is not None and ref) else None

        def cpus(name: str) -> str:
            ok = [r for r in runs.get(name, []) if "error" not in r]
            c, s, o, w = (med([r.get(k) for r in ok])
                          for k in ("client_cpu_pct", "server_cpu_pct", "other_cpu_pct", "server_runq_pct"))
            return "—" if c is None else f"{c:.0f} / {s:.0f} / {max(o, 0.0):.0f} / {w:.0f}"

        def net(name: str) -> str:
            ok = [r for r in runs.get(name, []) if "error" not in r and "backlog_drops" in r]
            if not ok:
                return "—"
            return f"{sum(r['backlog_drops'] for r in ok)}/{sum(r['tcp_retransmits'] for r in ok)}"

        errors = [r["error"] for n in runs for r in runs[n] if "error" in r]
        self.rows.append((metric, fmt(sig, unit), fmt(ref, unit), "—" if ratio is None else f"{ratio:.2f}",
                          cpus("signalite"), cpus("reference"), f"{net('signalite')} ; {net('reference')}",
                          goal, verdict + (" (errors)" if errors else "")))
        for e in errors[:2]:
            log(f"  {metric}: {e}")

    def markdown(self) -> str:
        head = ("metric", "Signalite", "reference", "ratio S/R", "CPU% client / server / other / server-waiting (S)",
                "(same, R)", "drops/retx S ; R", "goal", "met?")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines)


# --- the scenarios -----------------------------------------------------------------------------

QUIET = {"wait": 0.0, "below": 50.0}


def wait_for_quiet() -> float:
    """Wait (at most ``--quiet-wait`` seconds) until the rest of the machine uses less than
    ``--quiet-below`` % of one core over 0.5 s. Returns the load seen last (% of one core)."""
    from .loadgen import machine_busy

    deadline = time.monotonic() + QUIET["wait"]
    while True:
        b0 = machine_busy()
        time.sleep(0.5)
        load = 100.0 * (machine_busy() - b0) / 0.5
        if load < QUIET["below"] or time.monotonic() >= deadline:
            return load


def run_pair(servers: dict[str, Server], runs: int, make: Any, label: str, before: Any = None) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for i in range(runs):
        if before is not None:
            before()
        order = list(servers) if i % 2 == 0 else list(reversed(servers))
        for name in order:
            if QUIET["wait"] > 0:
                load = wait_for_quiet()
                if load >= QUIET["below"]:
                    log(f"machine still busy ({load:.0f}% of a core) after {QUIET['wait']:.0f}s; measuring anyway")
            res = make(servers[name], i)
            out[name].append(res)
            log(f"{label} run {i + 1}/{runs} {name}: " + json.dumps(
                {k: (round(v, 1) if isinstance(v, float) else v) for k, v in res.items() if k != "rates"})[:400])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="WSS relay benchmarks: Signalite vs a minimal aiohttp relay")
    parser.add_argument("--quick", action="store_true", help="about one minute: smaller counts, shorter windows")
    parser.add_argument("--runs", type=int, help="runs per scenario and server, median reported (default 3; 1 with --quick)")
    parser.add_argument("--only", default="throughput,latency,fanout,idle,connects",
                        help="comma-separated scenarios to run")
    parser.add_argument("--targets", default="signalite,reference",
                        help="servers to measure (default both; 'reference' alone needs no Signalite relay)")
    parser.add_argument("--quiet-wait", type=float, default=0.0,
                        help="before each run, wait up to this many seconds for the rest of the machine to go "
                             "quiet (default 0: do not wait); the load seen is reported either way")
    parser.add_argument("--quiet-below", type=float, default=50.0,
                        help="'quiet' means the machine uses less than this %% of one core (default 50)")
    parser.add_argument("--reference-write", choices=("direct", "aiohttp"), default="direct",
                        help="how the reference relay sends: one transport.write per frame like Signalite "
                             "(default, the ceiling), or aiohttp's awaited send_str")
    parser.add_argument("--connect-concurrency", type=int, default=32,
                        help="handshakes in flight in the connects scenario (default 32)")
    parser.add_argument("--signalite-arg", action="append", default=[], metavar="ARG",
                        help="an extra flag for signalite serve (repeat; e.g. --signalite-arg=--backlog=128)")
    parser.add_argument("--reference-backlog", type=int, default=128,
                        help="the reference relay's listen backlog (default 128, aiohttp's)")
    parser.add_argument("--json", type=Path, help="also write every run's raw result here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir (logs)")
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    _raise_nofile()
    QUIET.update(wait=args.quiet_wait, below=args.quiet_below)
    q = args.quick
    only = set(args.only.split(","))
    P = {
        "pairs": 50, "window": 100, "tp_duration": 2.0 if q else 5.0,
        "lat_conns": 1000 if q else 2000, "rates": [5000, 10000, 20000], "lat_duration": 1.5 if q else 3.0,
        "viewers": 1000, "fan_rate": 1000, "fan_duration": 2.0 if q else 5.0,
        "idle_conns": 1000 if q else 2000, "conn_n": 1000 if q else 2000, "conn_conc": args.connect_concurrency,
    }
    tmp = Path(tempfile.mkdtemp(prefix="signalite-bench-"))
    t_start = time.monotonic()
    sig = Signalite(tmp / "signalite")
    sig.extra = list(args.signalite_arg)
    sig.data_dir.mkdir()
    ref: Reference | None = None
    results: dict[str, Any] = {"params": P, "machine": machine()}
    table = Table()
    targets = args.targets.split(",")
    try:
        from signalite.tls import ensure_local_tls

        # The certificate Signalite would generate for itself, made first so the reference relay
        # serves the very same one (and can run without Signalite).
        ensure_local_tls(sig.data_dir, ["127.0.0.1"])
        ref = Reference(tmp, sig.data_dir / "tls", args.reference_write, args.reference_backlog)
        ref.start()
        servers: dict[str, Server] = {}
        n_channels = max(P["lat_conns"], P["idle_conns"]) // 2
        if "signalite" in targets:
            sig.start()
            servers["signalite"] = sig
            log(f"creating {n_channels + 1 + args.runs * P['pairs']} channels on Signalite")
            arns = sig.create_channels([f"bench-{i}" for i in range(n_channels)])
            fan_arn = sig.create_channels(["bench-fanout"])[0]
            # Throughput runs stop mid-flood; Signalite keeps what was in flight for the channel's
            # MessageTtlSeconds, as KVS does. Fresh channels per run keep the runs independent.
            tp_arns = [sig.create_channels([f"bench-tp{r}-{i}" for i in range(P["pairs"])]) for r in range(args.runs)]
            log(f"signalite pid {sig.pid} (tls {sig.port}, plain {sig.http_port})")
        else:
            arns = [f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/bench-{i}/1700000000000" for i in range(n_channels)]
            fan_arn = f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/bench-fanout/1700000000000"
            tp_arns = [[f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/bench-tp{r}-{i}/1700000000000"
                        for i in range(P["pairs"])] for r in range(args.runs)]
        if "reference" in targets:
            servers["reference"] = ref
        log(f"reference pid {ref.pid}; setup {time.monotonic() - t_start:.1f}s")

        def restart_all() -> None:
            for s in servers.values():
                s.restart()

        if "idle" in only:
            for tls in (False, True):
                key = "idle_tls" if tls else "idle_plain"
                runs = run_pair(servers, args.runs, lambda s, i, tls=tls: loadgen(spec_for(
                    s, tls, scenario="idle", channels=arns, connections=P["idle_conns"], tag=f"i{int(tls)}r{i}")),
                    key, before=restart_all)
                results[key] = runs
                mem = med([r.get("kib_per_conn") for r in runs.get("signalite", []) if "error" not in r])
                table.add(f"memory per idle connection, {'TLS' if tls else 'plain'} ({P['idle_conns']} conns)",
                          runs, "kib_per_conn", " KiB", GOALS[key], verdict=verdict(mem, 48 if tls else 16, False))
        if "throughput" in only:
            runs = run_pair(servers, args.runs, lambda s, i: loadgen(spec_for(
                s, scenario="throughput", channels=tp_arns[i], pairs=P["pairs"], window=P["window"],
                duration=P["tp_duration"], tag=f"t{i}")), "throughput")
            results["throughput"] = runs
            s_v = med([r.get("msgs_per_s") for r in runs.get("signalite", []) if "error" not in r])
            r_v = med([r.get("msgs_per_s") for r in runs.get("reference", []) if "error" not in r])
            table.add(f"throughput, {P['pairs']} echo pairs × window {P['window']} (msg/s)", runs, "msgs_per_s",
                      "", GOALS["throughput"], verdict=verdict(s_v / r_v if (s_v and r_v) else None, 0.85, True))
            table.add("throughput per server CPU-second (msg)", runs, "msgs_per_server_cpu_s", "")
        if "latency" in only:
            runs = run_pair(servers, args.runs, lambda s, i: loadgen(spec_for(
                s, scenario="latency", channels=arns, connections=P["lat_conns"], rates=P["rates"],
                duration=P["lat_duration"], tag=f"l{i}")), "latency")
            results["latency"] = runs
            for j, rate in enumerate(P["rates"]):
                per_rate = {n: [r["rates"][j] if "rates" in r else r for r in rs] for n, rs in runs.items()}
                for pct in ("p50_us", "p99_us", "p999_us"):
                    goal = GOALS["latency@20000"] if (pct == "p99_us" and rate == 20000) else ""
                    v = med([r.get(pct) for r in per_rate.get("signalite", []) if "error" not in r])
                    table.add(f"latency {pct[:-3]} @ {rate:,} msg/s, {P['lat_conns']} conns", per_rate, pct, "us",
                              goal, verdict=verdict(v, 1000, False) if goal else "")
                table.add(f"server CPU per relayed message @ {rate:,} msg/s (µs)", per_rate, "server_cpu_us_per_msg")
        if "fanout" in only:
            runs = run_pair(servers, args.runs, lambda s, i: loadgen(spec_for(
                s, scenario="fanout", channel=fan_arn, viewers=P["viewers"], rate=P["fan_rate"],
                duration=P["fan_duration"], tag=f"f{i}")), "fanout")
            results["fanout"] = runs
            for pct in ("p50_us", "p99_us", "p999_us"):
                v = med([r.get(pct) for r in runs.get("signalite", []) if "error" not in r])
                table.add(f"fan-out {pct[:-3]}, 1 channel × {P['viewers']:,} viewers, {P['fan_rate']:,}+"
                          f"{P['fan_rate']:,} msg/s", runs, pct, "us",
                          GOALS["fanout"] if pct == "p99_us" else "",
                          verdict=verdict(v, 2000, False) if pct == "p99_us" else "")
        if "connects" in only:
            for tls in (False, True):
                key = "connects_tls" if tls else "connects_plain"
                runs = run_pair(servers, args.runs, lambda s, i, tls=tls: loadgen(spec_for(
                    s, tls, scenario="connects", channels=arns, connections=P["conn_n"],
                    concurrency=P["conn_conc"], tag=f"c{int(tls)}r{i}")), key)
                results[key] = runs
                kind = "TLS" if tls else "plain"
                for r in (r for rs in runs.values() for r in rs if "handshake" in r):
                    r["handshake_p50_us"], r["handshake_p99_us"] = r["handshake"]["p50_us"], r["handshake"]["p99_us"]
                table.add(f"SigV4 connects/s, {kind}, {P['conn_n']} × {P['conn_conc']} in flight (wall)", runs,
                          "connects_per_s", "")
                table.add(f"SigV4 connect handshake p50, {kind}", runs, "handshake_p50_us", "us")
                table.add(f"SigV4 connect handshake p99, {kind}", runs, "handshake_p99_us", "us")
                v = med([r.get("connects_per_server_cpu_s") for r in runs.get("signalite", []) if "error" not in r])
                table.add(f"SigV4 connects per server CPU-second, {kind}", runs, "connects_per_server_cpu_s", "",
                          "" if tls else GOALS["connects"], verdict="" if tls else verdict(v, 2000, True))
    finally:
        for s in (ref, sig):
            if s is not None:
                s.stop()
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        if args.keep:
            log(f"data dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"WSS relay benchmarks ({'quick' if q else 'full'}; median of {args.runs} runs; "
          f"{results['machine']}; {time.monotonic() - t_start:.0f} s)")
    print()
    print(table.markdown())
    print()
    print("CPU% columns (medians over the measured window, 100% = one core): the load generator / the server "
          "process / everything else on the machine (other processes, kernel softirq) / time the server was "
          "runnable but waiting for a CPU. Memory rows have no window (RSS is read with everything idle). "
          "drops/retx: packets the kernel dropped from its input backlog / TCP retransmissions, machine-wide, "
          "summed over the runs (on loopback each drop costs a >= 200 ms retransmission timeout).")
    return 0


def verdict(value: float | None, goal: float, higher_is_better: bool) -> str:
    if value is None:
        return "?"
    return "yes" if (value >= goal if higher_is_better else value <= goal) else "no"


def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, check=False,
                             text=True, timeout=5).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        rev = "?"
    return f"{os.cpu_count()} cores {model}, {mem:.0f} GiB, Python {sys.version.split()[0]}, Signalite at {rev}"


if __name__ == "__main__":
    sys.exit(main())
