"""In-process micro-benchmark of the IAM policy evaluator: ns per ``decide()`` call.

What one authorization costs on the request path once policies are parsed (they are compiled
once per principal, so parsing is not in the timed loop; its cost is printed for information).
Policies of 1, 10 and 50 statements shaped like real ones — wildcard actions and resources,
a policy variable, IP/Bool/tag conditions, one Deny — and three requests each:

* **allow**: allowed by the last statement (every Deny and every Allow before it is examined);
* **implicit**: an action no statement allows (the whole policy is examined);
* **deny**: caught by the Deny statement.

Each figure is the median over ``--runs`` runs of the fastest of ``--repeat`` blocks of
``--number`` calls, timed in this process's CPU time (other processes on a busy host then
cost us less than on the wall clock; host noise only ever adds time). Run from the repository
root::

    .venv/bin/python -m bench.policy_micro --runs 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import timeit
from typing import Any

from signalite.identity.policy import Outcome, Policy, RequestContext, decide, parse_policy

ACCOUNT = "123456789012"
CHANNEL = f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/demo/1700000000000"


def statements(count: int) -> list[dict[str, Any]]:
    """``count`` statements: decoys, two Denies, and the Allow the request needs, last. Three
    decoys in four cover the requested action and fail only on the resource (a literal prefix,
    a policy variable, a wildcard region), so the allow case really examines them."""
    shapes = [
        lambda i: {"Effect": "Allow", "Action": ["kinesisvideo:Describe*", "kinesisvideo:ConnectAs*"],
                   "Resource": f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/cam-{i}/*"},
        lambda i: {"Effect": "Allow", "Action": "kinesisvideo:*",
                   "Resource": f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/${{aws:username}}-{i}/*"},
        lambda i: {"Effect": "Allow", "Action": ["kinesisvideo:GetIceServerConfig", "kinesisvideo:ConnectAsViewer"],
                   "Resource": f"arn:aws:kinesisvideo:*:{ACCOUNT}:channel/room-{i}/*",
                   "Condition": {"StringEquals": {"aws:ResourceTag/team": f"team-{i}"}}},
        lambda i: {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"],
                   "Resource": f"arn:aws:iam::{ACCOUNT}:user/group-{i}/*"},
    ]
    final = {"Effect": "Allow", "Action": ["kinesisvideo:ConnectAsViewer", "kinesisvideo:GetIceServerConfig"],
             "Resource": f"arn:aws:kinesisvideo:*:{ACCOUNT}:channel/demo/*",
             "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}, "Bool": {"aws:SecureTransport": "true"}}}
    if count == 1:
        return [final]
    denies = [
        {"Effect": "Deny", "Action": "kinesisvideo:*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Effect": "Deny", "Action": "kinesisvideo:Delete*", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}},
    ]
    decoys = [shapes[i % len(shapes)](i) for i in range(max(0, count - 3))]
    return [*decoys, *denies, final][-count:]


def document(count: int) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements(count)})


def request(action: str) -> RequestContext:
    return RequestContext(action=action, resource=CHANNEL, principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
                          account=ACCOUNT, username="alice", userid="AIDAEXAMPLEEXAMPLE01", source_ip="203.0.113.7",
                          secure_transport=True, current_time=1.7e9, resource_tags={"team": "blue"})


CASES = {
    "allow": ("kinesisvideo:ConnectAsViewer", Outcome.ALLOW),
    "implicit": ("kinesisvideo:UpdateSignalingChannel", Outcome.IMPLICIT_DENY),
    "deny": ("kinesisvideo:DeleteSignalingChannel", Outcome.EXPLICIT_DENY),
}


def ns_per_call(policy: Policy, ctx: RequestContext, number: int, repeat: int) -> float:
    policies = [policy]
    timer = timeit.Timer(lambda: decide(ctx, policies), timer=time.process_time)
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=20_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args(argv)
    print(f"decide() in ns per call, median of {args.runs} runs (fastest of {args.repeat} x {args.number} calls)")
    print(f"{'statements':>10} {'parse µs':>9} " + " ".join(f"{name:>9}" for name in CASES))
    for size in args.sizes:
        text = document(size)
        policy = parse_policy(text, name=f"bench-{size}")
        parse_us = min(timeit.repeat(lambda text=text: parse_policy(text), repeat=3, number=50)) / 50 * 1e6
        row = []
        for name, (action, expected) in CASES.items():
            ctx = request(action)
            if size == 1 and name == "deny":
                row.append(f"{'-':>9}")  # no Deny statement in a one-statement policy
                continue
            outcome = decide(ctx, [policy]).outcome
            assert outcome is expected, (size, name, outcome)
            runs = [ns_per_call(policy, ctx, args.number, args.repeat) for _ in range(args.runs)]
            row.append(f"{statistics.median(runs):9.0f}")
        print(f"{size:>10} {parse_us:9.1f} " + " ".join(row))


if __name__ == "__main__":
    main()
