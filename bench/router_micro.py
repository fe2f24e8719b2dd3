"""What counting costs on the relay path, in process: one router and the in-process bus relay
messages from a viewer to its master, with delivery counting on (metrics, the default) and off
(``--no-metrics``), alternating blocks in one process; median of runs, ns per relayed message.

    python -m bench.router_micro --runs 7 --messages 200000

The figure to set it against is the server's whole CPU per relayed message (bench.relay's
"server CPU per relayed message", tens of microseconds): the ratio of the two is what counting
costs a relay.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from signalite.bus.local import LocalBus
from signalite.config import Quotas
from signalite.signaling.router import Close, Publish, Router, Send, Subscribe, Unsubscribe

ARN = "arn:aws:kinesisvideo:us-west-2:111122223333:channel/bench/1700000000000"
FRAME = json.dumps({"action": "ICE_CANDIDATE", "messagePayload": "Y2FuZGlkYXRlOjEgMSB1ZHAgMjEzMDcwNjQzMSAxOTIuMTY4LjEuMiA1MDAwMCB0eXAgaG9zdA=="})


class Sink:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def send(self, text: str) -> None:
        self.n += 1

    def close(self, code: int, reason: str) -> None:
        pass


def relay(count_deliveries: bool, messages: int) -> float:
    router = Router(Quotas.profile("relaxed"), count_deliveries=count_deliveries)
    bus = LocalBus()
    now = 1_800_000_000.0

    def run(actions: list) -> None:  # type: ignore[type-arg]
        for a in actions:
            if isinstance(a, Send):
                a.conn.handle.send(a.text)
            elif isinstance(a, Publish):
                bus.publish(a.topic, a.message)
            elif isinstance(a, Close):
                a.conn.handle.close(a.code, a.reason)
            elif isinstance(a, Subscribe):
                bus.subscribe(a.topic, lambda t, m: run(router.deliver(t, m, now)))
            elif isinstance(a, Unsubscribe):
                bus.unsubscribe(a.topic)

    master_sink = Sink()
    _, actions = router.connect(ARN, None, 60, now, master_sink)
    run(actions)
    viewer, actions = router.connect(ARN, "v", 60, now, Sink())
    run(actions)
    start = time.perf_counter_ns()
    for _ in range(messages):
        run(router.message(viewer, FRAME, now))
    elapsed = time.perf_counter_ns() - start
    assert master_sink.n == messages
    return elapsed / messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args(argv)
    on: list[float] = []
    off: list[float] = []
    for i in range(args.runs):
        for counting in ((True, False) if i % 2 == 0 else (False, True)):
            (on if counting else off).append(relay(counting, args.messages))
    result = {"ns_per_message_counting": round(statistics.median(on), 1),
              "ns_per_message_not_counting": round(statistics.median(off), 1),
              "runs": args.runs, "messages": args.messages}
    result["counting_cost_ns"] = round(result["ns_per_message_counting"] - result["ns_per_message_not_counting"], 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
