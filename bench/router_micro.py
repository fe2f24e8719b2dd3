"""What counting costs on the relay path, in process: the router path of ``bench.relay_micro``
(one viewer relaying to its master through the router and the in-process bus) with delivery
counting on (metrics, the default) and off (``--no-metrics``), alternating in one process;
median of runs, ns per relayed message.

    python -m bench.router_micro --runs 7 --messages 50000

Set it against the server's whole CPU per relayed message (bench.relay's "server CPU per relayed
message", tens of microseconds): the ratio of the two is what counting costs a relay.
"""

from __future__ import annotations

import argparse
import json
import statistics

from bench.relay_micro import current_relay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args(argv)
    counting, not_counting = current_relay(True), current_relay(False)
    on: list[float] = []
    off: list[float] = []
    for i in range(args.runs):
        for count in ((True, False) if i % 2 == 0 else (False, True)):
            (on if count else off).append((counting if count else not_counting)(args.messages))
    result = {"ns_per_message_counting": round(statistics.median(on), 1),
              "ns_per_message_not_counting": round(statistics.median(off), 1),
              "runs": args.runs, "messages": args.messages}
    result["counting_cost_ns"] = round(result["ns_per_message_counting"] - result["ns_per_message_not_counting"], 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
