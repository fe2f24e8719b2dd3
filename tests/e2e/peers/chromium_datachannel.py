"""Headless Chromium pages (one master, N viewers) open real data channels through Signalite.

Run inside a lo-only network namespace (``unshare -n``, ``lo`` up): it starts the real server,
a static server for the page and the official KVS SDK bundle, and Debian's chromium through
Playwright (``executable_path``; no downloaded browser). Prints one JSON line with the result and
exits 0 only if every viewer got its own pong back over its data channel.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.support.server import ACCESS_KEY, REGION, SECRET_KEY, running_server  # noqa: E402

BUNDLE = ROOT / "tests/node/node_modules/amazon-kinesis-video-streams-webrtc/dist/kvs-webrtc.min.js"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--ignore-certificate-errors",
]


class _Static(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        name = urllib.parse.urlsplit(path).path
        if name == "/kvs-webrtc.min.js":
            return str(BUNDLE)
        return str(Path(__file__).parent / "page.html")

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, default=2)
    parser.add_argument("--relay-only", action="store_true")
    parser.add_argument("--ice-servers", default="[]", help="JSON list of RTCIceServer dicts")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for signalite serve")
    parser.add_argument("--ice-from-server", action="store_true",
                        help="use GetIceServerConfig (HTTPS endpoint) for the pages' iceServers")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp) / "srv", *args.server_arg) as srv:
        kv = srv.boto()
        arn = kv.create_signaling_channel(ChannelName="chromium-pair")["ChannelARN"]
        wss = {
            role: next(e["ResourceEndpoint"] for e in kv.get_signaling_channel_endpoint(
                ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS"], "Role": role}
            )["ResourceEndpointList"])
            for role in ("MASTER", "VIEWER")
        }
        if args.ice_from_server:
            https = kv.get_signaling_channel_endpoint(
                ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["HTTPS"], "Role": "MASTER"}
            )["ResourceEndpointList"][0]["ResourceEndpoint"]
            ice = srv.boto("kinesis-video-signaling", endpoint=https).get_ice_server_config(ChannelARN=arn)
            args.ice_servers = json.dumps([{"urls": s["Uris"], "username": s.get("Username"),
                                            "credential": s.get("Password")} for s in ice["IceServerList"]])
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Static))  # the kernel picks
        port = httpd.server_address[1]
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

        def url(role: str, client_id: str = "") -> str:
            q = {"role": role, "endpoint": wss[role], "arn": arn, "region": REGION, "ak": ACCESS_KEY,
                 "sk": SECRET_KEY, "iceServers": args.ice_servers}
            if client_id:
                q["clientId"] = client_id
            if args.relay_only:
                q["relayOnly"] = "1"
            return f"http://127.0.0.1:{port}/page.html?" + urllib.parse.urlencode(q)

        result: dict[str, object] = {}
        timeout_ms = args.timeout * 1000
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as udd:
            ctx = pw.chromium.launch_persistent_context(udd, executable_path="/usr/bin/chromium", headless=True,
                                                        args=CHROMIUM_ARGS)
            ctx.grant_permissions(["microphone", "camera"], origin=f"http://127.0.0.1:{port}")
            master = ctx.new_page()
            master.goto(url("MASTER"))
            master.wait_for_function("() => R.open || R.error", timeout=timeout_ms)
            viewers = {}
            for i in range(args.viewers):
                cid = f"viewer-{i}"
                page = ctx.new_page()
                page.goto(url("VIEWER", cid))
                viewers[cid] = page
            for cid, page in viewers.items():
                try:
                    page.wait_for_function("() => R.messages.length > 0 || R.error", timeout=timeout_ms)
                except Exception as exc:  # report, then fail below
                    result.setdefault("timeouts", []).append(f"{cid}: {exc.__class__.__name__}")
            result["viewer_messages"] = {cid: p.evaluate("() => R.messages") for cid, p in viewers.items()}
            result["viewer_candidate_types"] = {cid: p.evaluate("() => R.candidateType") for cid, p in viewers.items()}
            result["viewer_errors"] = {cid: p.evaluate("() => R.error") for cid, p in viewers.items()}
            result["master_messages"] = master.evaluate("() => R.messages")
            result["master_offers"] = master.evaluate("() => R.offers")
            result["master_error"] = master.evaluate("() => R.error")
            ctx.close()
        httpd.shutdown()
        ok = all(result["viewer_messages"][cid] == [f"pong: ping from {cid}"] for cid in viewers)  # type: ignore[index]
        result["ok"] = ok
        if not ok:
            result["server_log"] = srv.log()[-4000:]
        print(json.dumps(result))
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
