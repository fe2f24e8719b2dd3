"""The access log's line, in process: through ``logging`` (a LogRecord, the handler chain, the
formatter) vs :class:`signalite.logs.DirectLog`, both into the server's own handler
(``logs.configure``) writing to /dev/null, on a running event loop as in the server.

    .venv/bin/python -m bench.access_log_micro [--lines 50000] [--runs 5] [--format text|json]

Prints ns per line for each path (median of ``--runs`` alternating blocks) and their ratio.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time

from signalite import logs

EXTRA: dict[str, object] = {"request_id": "5b0c4f2e-8a1d-4c3b-9e2f-0a1b2c3d4e5f", "operation": "GetSignalingChannelEndpoint",
                            "status": 200, "account": "123412341234", "duration_ms": 0.412, "remote": "127.0.0.1"}


async def block(kind: str, lines: int) -> float:
    access = logging.getLogger("signalite.access")
    direct = logs.DirectLog(access)
    start = time.perf_counter_ns()
    for i in range(lines):
        if kind == "logging":
            access.info("%s %s %d %.1f ms", "POST", "GetSignalingChannelEndpoint", 200, 0.412, extra=EXTRA)
        else:
            direct.info(f"POST GetSignalingChannelEndpoint 200 {0.412:.1f} ms", EXTRA)
        if i % 64 == 63:
            await asyncio.sleep(0)  # let the handler's drain run, as the server's loop does
    elapsed = time.perf_counter_ns() - start
    await asyncio.sleep(0)
    return elapsed / lines


async def main(args: argparse.Namespace) -> None:
    with open(os.devnull, "w") as null:
        saved = sys.stderr
        sys.stderr = null
        try:
            logs.configure("info", args.format)
            results: dict[str, list[float]] = {"logging": [], "direct": []}
            for run in range(args.runs):
                for kind in (("logging", "direct") if run % 2 == 0 else ("direct", "logging")):
                    results[kind].append(await block(kind, args.lines))
        finally:
            sys.stderr = saved
    med = {k: statistics.median(v) for k, v in results.items()}
    print(json.dumps({"format": args.format, "lines": args.lines, "runs": args.runs,
                      "logging_ns_per_line": round(med["logging"]), "direct_ns_per_line": round(med["direct"]),
                      "direct_over_logging": round(med["direct"] / med["logging"], 3)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    asyncio.run(main(parser.parse_args()))
