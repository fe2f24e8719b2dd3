"""A headless Chromium master (the official KVS SDK, the fake camera and microphone) streams into
Signalite's storage peer; the recording is decoded with PyAV.

Run inside a lo-only network namespace: it starts the real server and a static server for the
page and the SDK bundle, opens the master page in Debian's chromium through Playwright, calls
JoinStorageSession (boto3, WEBRTC endpoint), waits until the browser has encoded ``--frames``
video frames for the storage peer (its own getStats), then closes the page's peer connection and
signaling client, and waits for the recording to be finished. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.support.media import endpoints, finished_recordings, inspect, storage_channel  # noqa: E402
from tests.support.server import ACCESS_KEY, REGION, SECRET_KEY, free_port, running_server  # noqa: E402

BUNDLE = ROOT / "tests/node/node_modules/amazon-kinesis-video-streams-webrtc/dist/kvs-webrtc.min.js"
PAGE = Path(__file__).parent / "storage_master.html"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--ignore-certificate-errors", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]


class _Static(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        return str(BUNDLE if urllib.parse.urlsplit(path).path == "/kvs-webrtc.min.js" else PAGE)

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    result: dict[str, Any] = {"ok": False}
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp) / "srv") as srv:
        httpd = None
        try:
            kv = srv.boto()
            arn, _ = storage_channel(kv, "browser")
            eps = endpoints(kv, arn)
            storage = srv.boto("kinesis-video-webrtc-storage", endpoint=eps["WEBRTC"])
            port = free_port()
            httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_Static))
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            query = urllib.parse.urlencode({"endpoint": eps["WSS"], "arn": arn, "region": REGION,
                                            "ak": ACCESS_KEY, "sk": SECRET_KEY})
            timeout_ms = args.timeout * 1000
            with sync_playwright() as pw, tempfile.TemporaryDirectory() as udd:
                ctx = pw.chromium.launch_persistent_context(udd, executable_path="/usr/bin/chromium",
                                                            headless=True, args=CHROMIUM_ARGS)
                ctx.grant_permissions(["microphone", "camera"], origin=f"http://127.0.0.1:{port}")
                page = ctx.new_page()
                page.goto(f"http://127.0.0.1:{port}/storage_master.html?{query}")
                page.wait_for_function("() => R.open || R.error", timeout=timeout_ms)
                began = time.monotonic()
                storage.join_storage_session(channelArn=arn)
                page.wait_for_function("() => R.offers.length > 0 || R.error", timeout=timeout_ms)
                sender = page.evaluate("() => R.offers[0]")
                deadline = time.monotonic() + args.timeout
                sent: dict[str, Any] = {"frames": 0}
                while time.monotonic() < deadline and not page.evaluate("() => R.error"):
                    sent = page.evaluate("(id) => sent(id)", sender)
                    if sent["frames"] >= args.frames:
                        break
                    page.wait_for_timeout(100)  # poll the browser's own counters
                result["sent"] = sent
                result["sender"] = sender
                result["states"] = page.evaluate("(id) => R.states[id]", sender)
                result["page_error"] = page.evaluate("() => R.error")
                page.evaluate("() => leave()")
                result["streamed_seconds"] = time.monotonic() - began
                ctx.close()
            listed = finished_recordings(srv.data_dir, 1, args.timeout)
            result["recordings"] = listed
            result["inspected"] = [inspect(r["path"]) for r in listed]
            result["ok"] = True
        except Exception as exc:  # report what happened; the test asserts on it
            result["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            if httpd is not None:
                httpd.shutdown()
        result["server_log"] = srv.log()[-6000:]
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
