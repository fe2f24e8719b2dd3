"""In-process A/B of the relay path: this tree's router against a git revision's, same process.

One master and one viewer on a channel, the in-process bus between them: each message is the
whole router path of a relay — ``Router.message`` (parse, validate, limits, envelope) → bus →
``Router.deliver`` → the send — dispatched as each revision's hub dispatches its actions (typed
actions now, tuples compared by identity before the reshaping). Sockets are replaced by a
counter, so this is the router's CPU per relayed message and nothing else. Alternating blocks,
the fastest block of each run, median of runs; ns per message and the ratio.

    .venv/bin/python -m bench.relay_micro --baseline 21a61af --runs 7
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

ARN = "arn:aws:kinesisvideo:us-west-2:111122223333:channel/bench/1700000000000"
FRAME = json.dumps({"action": "ICE_CANDIDATE", "messagePayload":
                    "Y2FuZGlkYXRlOjEgMSB1ZHAgMjEzMDcwNjQzMSAxOTIuMTY4LjEuMiA1MDAwMCB0eXAgaG9zdA=="})


class Sink:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def send(self, text: str) -> None:
        self.n += 1

    def close(self, code: int, reason: str) -> None:
        pass


def load_revision(revision: str) -> ModuleType:
    """The ``signalite`` package of ``revision``, importable as ``signalite_base``."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision, "signalite"], check=True,
                             capture_output=True).stdout
    root = Path(tempfile.mkdtemp(prefix="signalite-base-"))
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    (root / "signalite").rename(root / "signalite_base")
    sys.path.insert(0, str(root))
    return importlib.import_module("signalite_base")


def current_relay(count_deliveries: bool = True) -> Callable[[int], float]:
    """This tree: messages go router → ``Post`` → the bus's mailbox of the recipient → the hub's
    mail handler → ``Router.deliver_mail`` → ``Send`` (the path of the embedded server)."""
    import asyncio

    from signalite.bus.base import Limits
    from signalite.bus.local import LocalBus
    from signalite.config import Quotas
    from signalite.signaling.router import MASTER, Close, Post, Publish, Router, Send, Subscribe

    def relay(messages: int) -> float:
        router, bus, now = Router(Quotas.profile("relaxed"), count_deliveries=count_deliveries), LocalBus(), 1_800_000_000.0
        conns: dict[int, Any] = {}

        def run(actions: list[Any]) -> None:  # as signalite.signaling.hub.Hub.run
            for a in actions:
                if type(a) is Send:
                    a.conn.handle.send(a.text)
                elif type(a) is Post:
                    bus.post(a.topic, a.envelope)
                elif type(a) is Close:
                    a.conn.handle.close(a.code, a.reason)
                elif type(a) is Publish:
                    bus.publish(a.topic, a.message)
                elif type(a) is Subscribe:
                    bus.subscribe(a.topic, lambda t, m: run(router.deliver(t, m, now)))

        class Mail:  # the hub's side of the mailboxes
            def deliver(self, token: int, envelopes: Any) -> int:
                run(router.deliver_mail(conns[token], envelopes, now))
                return len(envelopes)

            def taken_over(self, token: int) -> None: ...

            def lost(self, token: int) -> None: ...

            def outcome(self, arn: str, msg_type: str, outcome: str, sender: str, recipient: str) -> None: ...

            def trace_wanted(self, arn: str, followed: bool) -> None: ...

            def trace_event(self, arn: str, event: dict[str, Any]) -> None: ...

        bus.set_mail_handler(Mail())

        def connect(client_id: str | None, handle: Sink, token: int) -> Any:
            key = MASTER if client_id is None else client_id
            asyncio.run(bus.register(ARN, key, token, virtual=False, limits=Limits(None, None)))
            conn, actions = router.connect(ARN, client_id, 60, now, handle, token=token)
            conns[token] = conn
            run(actions)
            bus.start(ARN, key, token)
            return conn

        return _time(connect, run, messages, now, router)

    return relay


def baseline_relay(base: ModuleType) -> Callable[[int], float]:
    local = importlib.import_module("signalite_base.bus.local")
    config = importlib.import_module("signalite_base.config")
    r = importlib.import_module("signalite_base.signaling.router")
    SEND, PUBLISH, CLOSE, SUBSCRIBE, UNSUBSCRIBE = r.SEND, r.PUBLISH, r.CLOSE, r.SUBSCRIBE, r.UNSUBSCRIBE

    def relay(messages: int) -> float:
        router, bus, now = r.Router(config.Quotas.profile("relaxed")), local.LocalBus(), 1_800_000_000.0

        def run(actions: list[Any]) -> None:  # as that revision's Hub.run
            for action in actions:
                op = action[0]
                if op is SEND:
                    action[1].handle.send(action[2])
                elif op is PUBLISH:
                    bus.publish(action[1], action[2])
                elif op is CLOSE:
                    action[1].handle.close(action[2], action[3])
                elif op is SUBSCRIBE:
                    bus.subscribe(action[1], lambda t, e: run(router.deliver(t, e, now)))
                elif op is UNSUBSCRIBE:
                    bus.unsubscribe(action[1])

        def connect(client_id: str | None, handle: Sink, token: int) -> Any:
            conn, actions = router.connect(ARN, client_id, 60, now, handle)
            run(actions)
            return conn

        return _time(connect, run, messages, now, router)

    return relay


def _time(connect: Callable[[str | None, Sink, int], Any], run: Callable[[list[Any]], None], messages: int,
          now: float, router: Any) -> float:
    master = Sink()
    connect(None, master, 1)
    viewer = connect("v", Sink(), 2)
    start = time.perf_counter_ns()
    for _ in range(messages):
        run(router.message(viewer, FRAME, now))
    elapsed = time.perf_counter_ns() - start
    assert master.n == messages
    return elapsed / messages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="21a61af", help="git revision to compare against")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--messages", type=int, default=50_000, help="messages per block")
    parser.add_argument("--blocks", type=int, default=3, help="blocks per implementation per run (fastest kept)")
    parser.add_argument("--no-metrics", action="store_true", help="this tree without delivery counting (--no-metrics)")
    args = parser.parse_args(argv)
    now, before = current_relay(not args.no_metrics), baseline_relay(load_revision(args.baseline))
    cur: list[float] = []
    base: list[float] = []
    for i in range(args.runs):
        blocks: dict[str, list[float]] = {"current": [], "baseline": []}
        for _ in range(args.blocks):
            for name in (("current", "baseline") if i % 2 == 0 else ("baseline", "current")):
                blocks[name].append((now if name == "current" else before)(args.messages))
        cur.append(min(blocks["current"]))
        base.append(min(blocks["baseline"]))
    ratios = [c / b for c, b in zip(cur, base)]
    print(json.dumps({"baseline": args.baseline, "ns_per_message_current": round(statistics.median(cur), 1),
                      "ns_per_message_baseline": round(statistics.median(base), 1),
                      "median_ratio_current_over_baseline": round(statistics.median(ratios), 3),
                      "runs": args.runs, "messages_per_block": args.messages}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
