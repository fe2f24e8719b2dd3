"""What counting costs on the relay path (issue #12): Signalite with metrics on and off, in one launch.

    .venv/bin/python -m bench.metrics_overhead                      # 3 runs each, about 2 minutes
    .venv/bin/python -m bench.metrics_overhead --runs 1 --seconds 1 # smoke run

It starts, on 127.0.0.1 only, three servers side by side:

* ``bench.reference_relay`` (the minimal aiohttp+uvloop relay of ``bench.relay``), as a yardstick
  for how loaded the machine was;
* Signalite with its defaults (``GET /metrics`` served, every delivery counted: a dict
  increment and a histogram bucket per relayed message);
* Signalite with ``--no-metrics`` (nothing counted per delivery);

and relays the same load through each in turn, interleaved (the order alternates between runs),
``--runs`` times, with ``bench.loadgen`` in its own process:

* ``throughput``: echo pairs (one master+viewer pair per channel) keeping a window of messages in
  flight: messages per second and the server's CPU per message;
* ``rate``: master+viewer pairs at a fixed offered rate (``--rate``, half each way): the server's
  CPU per relayed message when it is not saturated, and the one-way p50/p99.

It prints the medians for each server and the ratios metrics-on / metrics-off (goal: throughput
≥ 0.95×, i.e. CPU per message ≤ 1/0.95 ≈ 1.05×). Nothing here asserts a time; on a shared
machine only same-launch ratios mean anything.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .relay import Reference, Server, Signalite, _raise_nofile, fmt, loadgen, log, machine, med, run_pair, spec_for

GOAL = 0.95
"""Throughput with metrics on over throughput with them off."""


def _ok(runs: list[dict[str, Any]], key: str) -> float | None:
    return med([r.get(key) for r in runs if "error" not in r])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="relay throughput and server CPU with metrics on vs off, one launch")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario and server, median reported (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per run (default 5)")
    parser.add_argument("--pairs", type=int, default=50, help="echo pairs in the throughput scenario (default 50)")
    parser.add_argument("--window", type=int, default=100, help="messages in flight per pair (default 100)")
    parser.add_argument("--rate", type=int, default=10000, help="offered msg/s in the rate scenario (default 10000)")
    parser.add_argument("--rate-pairs", type=int, default=500, help="master+viewer pairs in the rate scenario")
    parser.add_argument("--only", default="throughput,rate", help="comma-separated scenarios (throughput, rate)")
    parser.add_argument("--signalite-arg", action="append", default=[], metavar="ARG",
                        help="an extra flag for both Signalite servers (repeat)")
    parser.add_argument("--json", type=Path, help="also write every run's raw result here")
    args = parser.parse_args(argv)
    _raise_nofile()
    only = set(args.only.split(","))
    tmp = Path(tempfile.mkdtemp(prefix="signalite-metrics-bench-"))
    t_start = time.monotonic()
    on, off = Signalite(tmp / "metrics-on"), Signalite(tmp / "metrics-off")
    on.extra = list(args.signalite_arg)
    off.extra = [*args.signalite_arg, "--no-metrics"]
    results: dict[str, Any] = {"machine": machine(), "params": vars(args) | {"json": None}}
    ref: Reference | None = None
    started: list[Server] = []
    try:
        from signalite.tls import ensure_local_tls

        for s in (on, off):
            s.data_dir.mkdir()
            ensure_local_tls(s.data_dir, ["127.0.0.1"])
        ref = Reference(tmp, on.data_dir / "tls")
        servers: dict[str, Server] = {"reference": ref, "metrics on": on, "metrics off": off}
        for s in servers.values():
            s.start()
            started.append(s)
        # Fresh channels per run and server: a throughput run stops mid-flood, and Signalite keeps
        # what was in flight for the channel's TTL.
        tp: dict[str, list[list[str]]] = {}
        rate_arns: dict[str, list[str]] = {}
        for name, s in servers.items():
            if isinstance(s, Signalite):
                tp[name] = [s.create_channels([f"mo-tp{r}-{i}" for i in range(args.pairs)]) for r in range(args.runs)]
                rate_arns[name] = s.create_channels([f"mo-rate-{i}" for i in range(args.rate_pairs)])
            else:  # the reference relay takes any ARN
                tp[name] = [[f"arn:aws:kinesisvideo:us-west-2:111122223333:channel/mo-tp{r}-{i}/1700000000000"
                             for i in range(args.pairs)] for r in range(args.runs)]
                rate_arns[name] = [f"arn:aws:kinesisvideo:us-west-2:111122223333:channel/mo-rate-{i}/1700000000000"
                                   for i in range(args.rate_pairs)]
        log(f"setup {time.monotonic() - t_start:.1f}s; pids " + ", ".join(f"{n} {s.pid}" for n, s in servers.items()))
        name_of = {id(s): n for n, s in servers.items()}

        if "throughput" in only:
            results["throughput"] = run_pair(servers, args.runs, lambda s, i: loadgen(spec_for(
                s, scenario="throughput", channels=tp[name_of[id(s)]][i], pairs=args.pairs, window=args.window,
                duration=args.seconds, tag=f"t{i}")), "throughput")
        if "rate" in only:
            raw = run_pair(servers, args.runs, lambda s, i: loadgen(spec_for(
                s, scenario="latency", channels=rate_arns[name_of[id(s)]], connections=2 * args.rate_pairs,
                rates=[args.rate], duration=args.seconds, tag=f"r{i}")), "rate")
            results["rate"] = {n: [r["rates"][0] if "rates" in r else r for r in rs] for n, rs in raw.items()}
    finally:
        for s in started:
            s.stop()
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"Metrics on vs off (median of {args.runs} runs, {args.seconds:g} s windows; {results['machine']}; "
          f"{time.monotonic() - t_start:.0f} s)")
    print()
    print("| scenario | figure | reference | Signalite, metrics on | Signalite, metrics off | on / off | goal |")
    print("|---|---|---|---|---|---|---|")
    verdicts: list[bool] = []
    if "throughput" in results:
        runs = results["throughput"]
        msgs = {n: _ok(runs[n], "msgs_per_s") for n in runs}
        per_cpu = {n: _ok(runs[n], "msgs_per_server_cpu_s") for n in runs}
        cpu_us = {n: (1e6 / v if v else None) for n, v in per_cpu.items()}
        ratio = msgs["metrics on"] / msgs["metrics off"] if msgs["metrics on"] and msgs["metrics off"] else None
        cpu_ratio = (cpu_us["metrics on"] / cpu_us["metrics off"]
                     if cpu_us["metrics on"] and cpu_us["metrics off"] else None)
        if ratio is not None:
            verdicts.append(ratio >= GOAL)
        print(f"| throughput, {args.pairs} echo pairs × window {args.window} | msg/s | {fmt(msgs['reference'])} | "
              f"{fmt(msgs['metrics on'])} | {fmt(msgs['metrics off'])} | "
              f"{'—' if ratio is None else f'{ratio:.3f}'} | ≥ {GOAL} |")
        print(f"| | server CPU per message | {fmt(cpu_us['reference'], ' µs')} | {fmt(cpu_us['metrics on'], ' µs')} | "
              f"{fmt(cpu_us['metrics off'], ' µs')} | {'—' if cpu_ratio is None else f'{cpu_ratio:.3f}'} | "
              f"≤ {1 / GOAL:.2f} |")
    if "rate" in results:
        runs = results["rate"]
        cpu = {n: _ok(runs[n], "server_cpu_us_per_msg") for n in runs}
        p50 = {n: _ok(runs[n], "p50_us") for n in runs}
        p99 = {n: _ok(runs[n], "p99_us") for n in runs}
        cpu_ratio = cpu["metrics on"] / cpu["metrics off"] if cpu["metrics on"] and cpu["metrics off"] else None
        if cpu_ratio is not None:
            verdicts.append(cpu_ratio <= 1 / GOAL)
        print(f"| fixed rate {args.rate:,} msg/s, {args.rate_pairs} pairs | server CPU per message | "
              f"{fmt(cpu['reference'], ' µs')} | {fmt(cpu['metrics on'], ' µs')} | {fmt(cpu['metrics off'], ' µs')} | "
              f"{'—' if cpu_ratio is None else f'{cpu_ratio:.3f}'} | ≤ {1 / GOAL:.2f} |")
        print(f"| | one-way p50 / p99 | {fmt(p50['reference'], 'us')} / {fmt(p99['reference'], 'us')} | "
              f"{fmt(p50['metrics on'], 'us')} / {fmt(p99['metrics on'], 'us')} | "
              f"{fmt(p50['metrics off'], 'us')} / {fmt(p99['metrics off'], 'us')} | | |")
    errors = [r["error"] for scenario in ("throughput", "rate") if scenario in results
              for rs in results[scenario].values() for r in rs if "error" in r]
    for e in errors[:3]:
        log(f"error: {e}")
    print()
    print("goal met" if verdicts and all(verdicts) else "goal NOT met (or not measured)" if verdicts else "nothing measured")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
