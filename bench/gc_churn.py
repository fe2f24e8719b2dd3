"""What closed WSS sockets leave behind in the server: tracked objects and cyclic garbage.

    .venv/bin/python -m bench.gc_churn [--connections 2000] [--rounds 2] [--scenario idle|connects]

Starts the real ``signalite serve --quotas relaxed`` (plain listener) inside a small wrapper that
turns the automatic collector off and, on SIGUSR1, writes ``len(gc.get_objects())`` and what an
explicit ``gc.collect()`` found to a file. Then, per round, ``bench.loadgen``'s ``idle`` scenario
opens ``--connections`` presigned sockets (half masters, half viewers) and closes them all at once
the way most clients do (a close frame, then the TCP connection dropped at once), so the server
often finds the peer gone when it answers the close. With the collector off, an object of
a closed socket that is still tracked after the round is either cyclic garbage (found by the
explicit collection) or a leak; objects freed by reference counting are gone already.

A measuring tool, not a test: nothing is timed and nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from .relay import Signalite, loadgen, spec_for

WRAPPER = r"""
import gc, json, os, signal, sys
out = os.environ["GC_CHURN_OUT"]
def dump(*_):
    before = len(gc.get_objects())
    found = gc.collect()
    after = len(gc.get_objects())
    with open(out, "a") as f:
        f.write(json.dumps({"tracked": before, "cyclic_garbage": found, "tracked_after_collect": after}) + "\n")
signal.signal(signal.SIGUSR1, dump)
gc.disable()  # garbage cycles accumulate until dump() collects them explicitly
from signalite.cli import main
sys.exit(main(sys.argv[1:]))
"""


class Probed(Signalite):
    def __init__(self, data_dir: Path, out: Path) -> None:
        super().__init__(data_dir)
        self.out = out

    def command(self) -> list[str]:
        return [sys.executable, "-c", WRAPPER, *super().command()[3:]]

    def env(self) -> dict[str, str]:
        env = super().env()
        env["GC_CHURN_OUT"] = str(self.out)
        return env

    def probe(self) -> dict[str, int]:
        n = len(self.out.read_text().splitlines()) if self.out.exists() else 0
        os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = self.out.read_text().splitlines() if self.out.exists() else []
            if len(lines) > n:
                return json.loads(lines[n])
            time.sleep(0.05)
        raise RuntimeError("the server did not answer SIGUSR1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scenario", choices=("connects", "idle"), default="idle",
                        help="idle: half masters, half viewers, all open at once, then all closed at once "
                             "(default); connects: viewers, 32 handshakes in flight, then all closed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="signalite-gc-") as tmp:
        server = Probed(Path(tmp), Path(tmp) / "gc.jsonl")
        server.start()
        try:
            arns = server.create_channels([f"gc-churn-{i}" for i in range(max(10, args.connections // 2))])

            def churn(n: int, tag: str) -> dict:
                res = loadgen(spec_for(server, scenario=args.scenario, channels=arns, connections=n,
                                       concurrency=32, warm=0, settle=0.5, tag=tag))
                if "error" in res:
                    raise RuntimeError(res["error"])
                time.sleep(1.0)  # the server finishes its closes
                return res

            churn(50, "warm")
            base = server.probe()
            print(f"baseline after warm-up: {base['tracked_after_collect']:,} tracked objects")
            for r in range(args.rounds):
                churn(args.connections, f"r{r}")
                p = server.probe()
                grown = p["tracked"] - base["tracked_after_collect"]
                print(f"round {r + 1}: {args.connections:,} sockets opened and closed: "
                      f"+{grown:,} tracked objects ({grown / args.connections:.1f} per socket), "
                      f"{p['cyclic_garbage']:,} of them cyclic garbage "
                      f"({p['cyclic_garbage'] / args.connections:.1f} per socket); "
                      f"{p['tracked_after_collect'] - base['tracked_after_collect']:+,} left after collecting")
                base = p
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
