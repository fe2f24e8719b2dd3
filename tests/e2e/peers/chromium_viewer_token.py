"""A browser viewer with a federation token: the KVS JS SDK in headless Chromium, given only the
temporary credentials a backend minted for it, connects on its channel and is refused on another.

Run inside a lo-only network namespace (``unshare -n``, ``lo`` up): it starts the real server,
plays the backend with boto3 (an IAM user allowed ``sts:GetFederationToken``, which mints a
token whose session policy allows ``ConnectAsViewer`` on one channel only), serves the SDK
bundle and tests/e2e/peers/page.html, and opens one Chromium page per channel with
``{accessKeyId, secretAccessKey, sessionToken}`` (Debian's chromium through Playwright,
``executable_path``). Prints one JSON line: what each page saw (the SDK's open / error / close
events, the URL its WebSocket asked for) and the server's handshake counters before and after.
"""

from __future__ import annotations

import functools
import http.server
import json
import ssl
import sys
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.e2e.peers.chromium_datachannel import CHROMIUM_ARGS, _Static  # noqa: E402
from tests.support.server import REGION, Server, running_server  # noqa: E402


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def handshakes(srv: Server) -> dict[str, float]:
    """``signalite_handshakes_total`` by outcome, from the server's /metrics."""
    ctx = ssl.create_default_context(cafile=srv.ca)
    with urllib.request.urlopen(srv.url + "/metrics", context=ctx, timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("signalite_handshakes_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = float(line.rsplit(" ", 1)[1])
    return out


def main() -> int:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp) / "srv") as srv:
        kv = srv.boto()
        allowed = kv.create_signaling_channel(ChannelName="browser-token-a")["ChannelARN"]
        other = kv.create_signaling_channel(ChannelName="browser-token-b")["ChannelARN"]
        wss = kv.get_signaling_channel_endpoint(ChannelARN=allowed, SingleMasterChannelEndpointConfiguration={
            "Protocols": ["WSS"], "Role": "VIEWER"})["ResourceEndpointList"][0]["ResourceEndpoint"]
        # The backend: an IAM user that may mint tokens; the token's rights are the user's
        # intersected with the session policy (as on AWS).
        iam = srv.boto("iam", region="us-east-1")
        iam.create_user(UserName="backend")
        iam.put_user_policy(UserName="backend", PolicyName="mint", PolicyDocument=policy(
            {"Effect": "Allow", "Action": ["sts:GetFederationToken", "kinesisvideo:*"], "Resource": "*"}))
        key = iam.create_access_key(UserName="backend")["AccessKey"]
        sts = srv.boto("sts", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
        creds = sts.get_federation_token(Name="browser-viewer", DurationSeconds=900, Policy=policy(
            {"Effect": "Allow", "Action": "kinesisvideo:ConnectAsViewer", "Resource": allowed}))["Credentials"]

        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Static))
        port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

        def url(arn: str) -> str:
            q = {"role": "VIEWER", "clientId": "browser-viewer-1", "endpoint": wss, "arn": arn, "region": REGION,
                 "ak": creds["AccessKeyId"], "sk": creds["SecretAccessKey"], "st": creds["SessionToken"]}
            return f"http://127.0.0.1:{port}/page.html?" + urllib.parse.urlencode(q)

        result: dict[str, Any] = {"before": handshakes(srv)}
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as udd:
            ctx = pw.chromium.launch_persistent_context(udd, executable_path="/usr/bin/chromium", headless=True,
                                                        args=CHROMIUM_ARGS)
            for name, arn in (("allowed", allowed), ("other", other)):
                page = ctx.new_page()
                sockets: list[str] = []
                page.on("websocket", lambda ws, sockets=sockets: sockets.append(ws.url))
                page.goto(url(arn))
                # The SDK reports either way: 'open' on success, 'error' (then 'close') on a refusal.
                page.wait_for_function("() => R.open || R.error", timeout=30_000)
                state = page.evaluate("() => ({open: R.open, error: R.error, log: R.log})")
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(sockets[0]).query) if sockets else {}
                state["socket_token"] = query.get("X-Amz-Security-Token", [None])[0] == creds["SessionToken"]
                state["socket_channel"] = query.get("X-Amz-ChannelARN", [None])[0]
                result[name] = state
                page.close()
                result[f"after_{name}"] = handshakes(srv)
            ctx.close()
        httpd.shutdown()

        def delta(after: str, before: str, outcome: str) -> float:
            return result[after].get(outcome, 0.0) - result[before].get(outcome, 0.0)

        result["allowed_accepted"] = delta("after_allowed", "before", "accepted")
        result["other_denied"] = delta("after_other", "after_allowed", "AccessDeniedException")
        result["other_accepted"] = delta("after_other", "after_allowed", "accepted")
        ok = (result["allowed"]["open"] and not result["allowed"]["error"] and result["allowed_accepted"] == 1
              and not result["other"]["open"] and bool(result["other"]["error"])
              and result["other_denied"] == 1 and result["other_accepted"] == 0)
        result["ok"] = bool(ok)
        if not ok:
            result["server_log"] = srv.log()[-4000:]
        print(json.dumps(result))
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
