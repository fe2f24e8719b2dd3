"""In-process micro-benchmark of the wire layer's hot path, this tree against a git revision.

What a REST request costs in ``signalite.aws.wire`` alone, without HTTP, SigV4 or the store:

* **parse**: ``Wire().route('/getSignalingChannelEndpoint')`` then ``svc.parse(op, body)`` of
  the body boto3 sends (the call every WSS client makes before it connects);
* **serialize**: ``svc.serialize(op, output)`` of that operation's answer (two endpoints);
* **parse-create**: a CreateSignalingChannel body with tags (deeper shapes: a list of
  structures);
* **parse-invalid**: a body that breaks two constraints (the error path, for information).

The baseline is the revision's ``signalite/aws/wire.py`` loaded as a separate module (its
per-shape caches renamed so the two never share a validator), with a ``Wire()`` of its own.
Both are timed in the same process in alternating blocks of ``--number`` calls; a run's figure
for one implementation is its fastest block (host noise only ever adds time), and the result is
the median of ``--runs`` runs (≥ 3) in ns per call, with the median of the per-run ratios.

Run from the repository root::

    .venv/bin/python -m bench.wire_micro --baseline main --runs 5
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from signalite.aws import wire as current
from signalite.aws.errors import ServiceError

ARN = "arn:aws:kinesisvideo:us-west-2:123412341234:channel/demo/1700000000000"
ENDPOINT_BODY = json.dumps({
    "ChannelARN": ARN,
    "SingleMasterChannelEndpointConfiguration": {"Protocols": ["WSS", "HTTPS"], "Role": "MASTER"},
}).encode()
ENDPOINT_OUTPUT = {"ResourceEndpointList": [
    {"Protocol": "WSS", "ResourceEndpoint": "wss://127.0.0.1:8443"},
    {"Protocol": "HTTPS", "ResourceEndpoint": "https://127.0.0.1:8443"},
]}
CREATE_BODY = json.dumps({
    "ChannelName": "demo-channel", "ChannelType": "SINGLE_MASTER",
    "SingleMasterConfiguration": {"MessageTtlSeconds": 60},
    "Tags": [{"Key": f"key{i}", "Value": f"value {i}"} for i in range(5)],
}).encode()
INVALID_BODY = json.dumps({"ChannelName": "bad name", "ChannelType": "X"}).encode()


def resolve(revision: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", revision], check=True, capture_output=True,
                          text=True).stdout.strip()


def load_baseline(revision: str) -> ModuleType:
    """``signalite/aws/wire.py`` at ``revision`` as the module ``signalite.aws._wire_baseline``."""
    source = subprocess.run(["git", "show", f"{revision}:signalite/aws/wire.py"], check=True,
                            capture_output=True, text=True).stdout
    for cache in ("_signalite_checker", "_signalite_cleaner"):  # per-shape caches of its own
        source = source.replace(cache, cache.replace("_signalite_", "_baseline_"))
    with tempfile.TemporaryDirectory(prefix="wire-baseline-") as folder:
        path = Path(folder) / "wire_baseline.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("signalite.aws._wire_baseline", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def cases(module: ModuleType) -> dict[str, Callable[[], Any]]:
    """The timed calls against one wire module, each with its own ``Wire()``."""
    wire = module.Wire()
    endpoint_svc, endpoint_op = wire.route("/getSignalingChannelEndpoint")
    create_svc, create_op = wire.route("/createSignalingChannel")

    def parse() -> Any:
        svc, op = wire.route("/getSignalingChannelEndpoint")
        return svc.parse(op, ENDPOINT_BODY)

    def invalid() -> Any:
        try:
            create_svc.parse(create_op, INVALID_BODY)
        except ServiceError as exc:
            return exc.message
        raise AssertionError("the invalid body was accepted")

    return {
        "parse": parse,
        "serialize": lambda: endpoint_svc.serialize(endpoint_op, ENDPOINT_OUTPUT),
        "parse-create": lambda: create_svc.parse(create_op, CREATE_BODY),
        "parse-invalid": invalid,
    }


def ns_per_call(fn: Callable[[], Any], number: int) -> float:
    return timeit.timeit(fn, number=number) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="main", help="git revision to compare with ('' for none)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=10, help="timed blocks per case, implementation and run")
    parser.add_argument("--number", type=int, default=2000, help="calls per block")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3 (the median of the runs is reported)")
    impls = {"current": cases(current)}
    if args.baseline:
        impls = {"baseline": cases(load_baseline(args.baseline)), **impls}
    for by_case in impls.values():  # same answers, and every validator built, before timing
        for fn in by_case.values():
            fn()
    if args.baseline:
        for name in impls["current"]:
            assert impls["current"][name]() == impls["baseline"][name](), name
    samples: dict[tuple[str, str], list[float]] = {(i, c): [] for i in impls for c in impls[i]}
    order = list(impls)
    for run in range(args.runs):
        for case in impls["current"]:
            best = {impl: float("inf") for impl in impls}
            for block in range(args.blocks):
                # alternating, one then the other first, so both see the same host load
                for impl in order if (run + block) % 2 == 0 else order[::-1]:
                    best[impl] = min(best[impl], ns_per_call(impls[impl][case], args.number))
            for impl in impls:
                samples[impl, case].append(best[impl])
    print(f"ns per call: median over {args.runs} runs of the fastest of {args.blocks} blocks of "
          f"{args.number} calls" + (f"; baseline = {args.baseline} ({resolve(args.baseline)})" if args.baseline else ""))
    print(f"{'case':<14}" + "".join(f"{impl:>12}" for impl in impls) + ("   current/baseline" if args.baseline else ""))
    for case in impls["current"]:
        medians = {impl: statistics.median(samples[impl, case]) for impl in impls}
        line = f"{case:<14}" + "".join(f"{medians[impl]:>12.0f}" for impl in impls)
        if args.baseline:
            ratio = statistics.median(c / b for c, b in zip(samples["current", case], samples["baseline", case]))
            line += f"   {ratio:>8.3f}"
        print(line)


if __name__ == "__main__":
    main()
