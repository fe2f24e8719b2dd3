"""Identity on the request path (issue #9): the root key vs a federation token with policies, as a ratio.

    .venv/bin/python -m bench.identity --runs 3 --seconds 3      # the figures (a quiet machine)
    .venv/bin/python -m bench.identity --runs 1 --seconds 1      # smoke run

One real ``signalite serve --quotas relaxed`` process on 127.0.0.1 (plain ``--http-port``
listener, so the figures are the server's work and not TLS), set up with boto3 against its own
IAM and STS:

* a channel, and an IAM user with a **10-statement managed policy** attached (Allow and Deny,
  wildcards, NotAction, a policy variable, source-IP and request-tag conditions; none reads a
  resource tag, which would add a store read per request);
* that user's ``sts:GetFederationToken`` with a **session policy** scoped to the channel: the
  federated credentials (``ASIA…`` + session token) are evaluated against both policy sets on
  every request, after the token is opened and checked.

Two operations, each signed by (a) the root key and (b) the federation token, against the same
server launch, interleaved in ``--slice``-second slices (the order alternates between runs):

* **GetSignalingChannelEndpoint** with full SigV4 headers (``X-Amz-Security-Token`` for the token),
  driven by ``--connections`` keep-alive connections from this process, pre-signed at the start
  of each slice (:mod:`bench.rest_endpoint`'s client and CPU accounting);
* **WSS connects**: presigned ``ConnectAsViewer`` URLs (the token in the query, as the KVS SDKs
  send it), each opened (handshake complete) then closed, ``--wss-concurrency`` in flight, by
  :mod:`bench.loadgen`'s ``churn`` scenario in its own process.

For each, requests (connects) per second, the client's CPU share, and the server's CPU per
operation from ``/proc/<pid>/stat``; the federated/root ratio is computed per run and the median
of ``--runs`` runs is reported (goal: ≥ 0.9×). A client near 100 % CPU makes a rate a lower bound
(the server-CPU ratio is then the better figure). Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from .relay import ACCESS_KEY, ACCOUNT, REGION, SECRET_KEY, Signalite, loadgen
from .rest_endpoint import PATH, Side, measure_slice, presign

MAX_SECONDS = 30.0
MAX_CONNECTIONS = 512
CHANNEL = "bench-identity"
GOAL = 0.9


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def ten_statements(account: str) -> str:
    """The IAM user's attached policy: ten statements a real backend user might carry, all of
    which the evaluator has to look at (a Deny anywhere wins, so none can be skipped)."""
    channels = f"arn:aws:kinesisvideo:*:{account}:channel"
    return policy(
        {"Sid": "Read", "Effect": "Allow", "Action": ["kinesisvideo:Describe*", "kinesisvideo:List*"], "Resource": "*"},
        {"Sid": "Signal", "Effect": "Allow", "Resource": f"{channels}/bench-*/*",
         "Action": ["kinesisvideo:GetSignalingChannelEndpoint", "kinesisvideo:ConnectAs*"]},
        {"Sid": "Ice", "Effect": "Allow", "Resource": f"{channels}/*",
         "Action": ["kinesisvideo:GetIceServerConfig", "kinesisvideo:SendAlexaOfferToMaster"]},
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "kinesisvideo:Delete*", "Resource": "*"},
        {"Sid": "NotSecret", "Effect": "Deny", "Action": "kinesisvideo:*", "Resource": f"{channels}/secret-*/*"},
        {"Sid": "Tagging", "Effect": "Allow", "Action": "kinesisvideo:TagResource", "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestTag/team": "red"}}},
        {"Sid": "Mint", "Effect": "Allow", "Action": "sts:GetFederationToken", "Resource": "*"},
        {"Sid": "OnlyVideo", "Effect": "Deny", "NotAction": ["kinesisvideo:*", "sts:*"], "Resource": "*"},
        {"Sid": "FromHere", "Effect": "Allow", "Action": "kinesisvideo:GetSignalingChannelEndpoint",
         "Resource": "*", "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"]}}},
        {"Sid": "OwnPrivate", "Effect": "Deny", "Action": "kinesisvideo:ConnectAsMaster",
         "Resource": f"{channels}/${{aws:username}}-private/*"},
    )


def setup(server: Signalite) -> tuple[str, dict[str, str]]:
    """The channel's ARN and the federated credentials (after checking they are really scoped)."""
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    url = f"http://127.0.0.1:{server.http_port}"

    def client(service: str, key: str = ACCESS_KEY, secret: str = SECRET_KEY, token: str | None = None) -> Any:
        return session.create_client(service, region_name="us-east-1" if service == "iam" else REGION,
                                     endpoint_url=url, aws_access_key_id=key, aws_secret_access_key=secret,
                                     aws_session_token=token, config=Config(retries={"max_attempts": 1}))

    arn = client("kinesisvideo").create_signaling_channel(ChannelName=CHANNEL)["ChannelARN"]
    iam = client("iam")
    iam.create_user(UserName="bench-backend")
    managed = iam.create_policy(PolicyName="bench-ten", PolicyDocument=ten_statements(ACCOUNT))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="bench-backend", PolicyArn=managed)
    key = iam.create_access_key(UserName="bench-backend")["AccessKey"]
    sts = client("sts", key["AccessKeyId"], key["SecretAccessKey"])
    creds = sts.get_federation_token(Name="bench-viewer", DurationSeconds=3600, Policy=policy(
        {"Effect": "Allow", "Resource": arn,
         "Action": ["kinesisvideo:ConnectAsViewer", "kinesisvideo:GetSignalingChannelEndpoint"]}))["Credentials"]
    federated = {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                 "token": creds["SessionToken"]}
    # The token's scope is enforced (so the path measured does evaluate): outside it, refused.
    kv = client("kinesisvideo", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    try:
        kv.describe_signaling_channel(ChannelARN=arn)
    except kv.exceptions.AccessDeniedException:
        pass
    else:
        raise RuntimeError("the federation token was allowed outside its session policy")
    return arn, federated


def credentials(creds: dict[str, str] | None) -> Any:
    from botocore.credentials import Credentials

    if creds is None:
        return Credentials(ACCESS_KEY, SECRET_KEY)
    return Credentials(creds["access_key"], creds["secret_key"], creds["token"])


async def rest_slice(session: Any, url: str, body: bytes, creds: dict[str, str] | None, args: argparse.Namespace,
                     seconds: float, side: Side) -> None:
    headers = presign(url, body, credentials(creds))
    with urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST", headers=headers)) as r:
        assert json.loads(r.read())["ResourceEndpointList"]  # a real answer, before it is timed
    await measure_slice(session, url, body, headers, args.connections, seconds, args.warmup, side)


def wss_slice(server: Signalite, arn: str, creds: dict[str, str] | None, args: argparse.Namespace,
              seconds: float, tag: str) -> dict[str, Any]:
    spec = {"scenario": "churn", "url": server.plain_url, "ca": server.ca, "server_pid": server.pid,
            "creds": creds or {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY}, "channels": [arn],
            "concurrency": args.wss_concurrency, "seconds": seconds, "warmup": args.warmup, "tag": tag}
    result = loadgen(spec, timeout=60 + seconds)
    if "error" in result:
        raise RuntimeError(f"WSS churn ({tag}): {result['error']}")
    return result


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def med(values: list[Any]) -> Any:
    vals = [v for v in values if v is not None]
    return round(statistics.median(vals), 3) if vals else None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    who: dict[str, dict[str, str] | None]
    runs: list[dict[str, Any]] = []
    slices = max(1, round(args.seconds / args.slice))
    per_slice = args.seconds / slices
    with tempfile.TemporaryDirectory(prefix="signalite-bench-identity-") as tmp:
        server = Signalite(Path(tmp))
        server.start()
        try:
            arn, federated = setup(server)
            who = {"root": None, "federated": federated}
            url = f"http://127.0.0.1:{server.http_port}{PATH}"
            body = json.dumps({"ChannelARN": arn, "SingleMasterChannelEndpointConfiguration": {
                "Protocols": ["WSS", "HTTPS"], "Role": "VIEWER"}}).encode()
            connector = aiohttp.TCPConnector(limit=args.connections, force_close=False)
            async with aiohttp.ClientSession(connector=connector) as session:
                for i in range(args.runs):
                    order = list(who) if i % 2 == 0 else list(reversed(who))
                    rest = {name: Side(server.pid) for name in who}
                    wss: dict[str, list[dict[str, Any]]] = {name: [] for name in who}
                    for s in range(slices):
                        for name in order:
                            await rest_slice(session, url, body, who[name], args, per_slice, rest[name])
                        for name in order:
                            wss[name].append(wss_slice(server, arn, who[name], args, per_slice, f"{name[0]}{i}s{s}"))
                    for name, side in rest.items():
                        if side.errors:
                            raise RuntimeError(f"{side.errors} non-200 answers to {name}")
                    runs.append(summarise(i + 1, rest, wss))
                    print(json.dumps(runs[-1]), flush=True)
        finally:
            server.stop()
    return {
        "rest_ratio": med([r["rest"]["ratio"] for r in runs]),
        "rest_server_cpu_ratio": med([r["rest"]["server_cpu_ratio"] for r in runs]),
        "wss_ratio": med([r["wss"]["ratio"] for r in runs]),
        "wss_server_cpu_ratio": med([r["wss"]["server_cpu_ratio"] for r in runs]),
        **{f"{op}_{name}_{k}": med([r[op][name][k] for r in runs])
           for op in ("rest", "wss") for name in ("root", "federated") for k in ("per_s", "server_us", "client_cpu")},
        "goal": f"federated/root ≥ {GOAL}×",
        "runs": args.runs, "seconds": args.seconds, "connections": args.connections,
        "wss_concurrency": args.wss_concurrency,
    }


def summarise(run_no: int, rest: dict[str, Side], wss: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """One run's figures: per operation and signer, rate, server µs per op and client CPU share;
    the federated/root ratios of rate and of server CPU per op (root's / federated's)."""
    out: dict[str, Any] = {"run": run_no, "rest": {}, "wss": {}}
    for name, side in rest.items():
        out["rest"][name] = {"per_s": round(side.rps), "server_us": round(side.server_us_per_request),
                             "client_cpu": round(side.client_cpu / side.seconds, 2)}
    for name, parts in wss.items():
        n = sum(p["connects"] for p in parts)
        wall = sum(p["wall_s"] for p in parts)
        server_cpu = sum(p["server_cpu_s"] or 0.0 for p in parts)
        client = sum(p["client_cpu_pct"] * p["wall_s"] for p in parts) / 100.0
        out["wss"][name] = {"per_s": round(n / wall), "server_us": round(server_cpu / n * 1e6) if n else None,
                            "client_cpu": round(client / wall, 2)}
    for op in ("rest", "wss"):
        root, fed = out[op]["root"], out[op]["federated"]
        out[op]["ratio"] = ratio(fed["per_s"], root["per_s"])
        out[op]["server_cpu_ratio"] = ratio(root["server_us"], fed["server_us"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="runs (the median is reported; 3 or more for figures)")
    p.add_argument("--seconds", type=float, default=3.0, help="measured seconds per operation and signer per run")
    p.add_argument("--slice", type=float, default=1.0, help="seconds per interleaved slice")
    p.add_argument("--warmup", type=float, default=0.2, help="unmeasured seconds of load before each slice")
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections for the REST load")
    p.add_argument("--wss-concurrency", type=int, default=32, help="WSS connects in flight")
    args = p.parse_args(argv)
    if args.runs < 1 or not 0 < args.seconds <= MAX_SECONDS or not 0 < args.connections <= MAX_CONNECTIONS \
            or not 0 < args.wss_concurrency <= MAX_CONNECTIONS:
        p.error(f"--runs ≥ 1, --seconds in (0, {MAX_SECONDS}], --connections and --wss-concurrency in "
                f"(0, {MAX_CONNECTIONS}]")
    if args.runs < 3:
        print("note: fewer than 3 runs: a smoke run, not figures", file=sys.stderr)
    import uvloop

    t0 = time.monotonic()
    summary = uvloop.run(run(args))
    summary["elapsed_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
