"""The web console in headless Chromium, used as a person would: sign in, create a channel, open
it, open a master tab and a viewer tab from it (the fake camera on both), and watch the video play
and the exchange appear in the live trace.

Run inside a lo-only network namespace (``unshare -n``, ``lo`` up; the WebRTC media stays on
127.0.0.1): it starts the real server and Debian's chromium through Playwright (``executable_path``;
no downloaded browser), loads ``https://127.0.0.1:PORT/console`` from the server itself, and prints
one JSON line with what it saw. Screenshots go to ``--artifacts``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.support.server import ACCESS_KEY, REGION, SECRET_KEY, running_server  # noqa: E402

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--ignore-certificate-errors", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
CHANNEL = "console-demo"

PLAYING = """(sel) => { const v = document.querySelector(sel); return !!v && v.videoWidth > 0 && v.currentTime > 0; }"""
ADVANCED = """([sel, t]) => { const v = document.querySelector(sel); return !!v && v.currentTime > t; }"""
VIDEO_STATE = """(sel) => { const v = document.querySelector(sel);
  return v ? { width: v.videoWidth, height: v.videoHeight, time: v.currentTime, paused: v.paused } : null; }"""


def _errors(page: Any) -> list[str]:
    """The error boxes the page shows."""
    return [t.strip() for t in page.locator(".error").all_inner_texts()]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--artifacts", required=True, help="folder for the screenshots")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    shots = Path(args.artifacts)
    shots.mkdir(parents=True, exist_ok=True)
    timeout_ms = args.timeout * 1000

    from playwright.sync_api import sync_playwright

    result: dict[str, Any] = {"ok": False, "screenshots": [], "page_errors": []}
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp) / "srv") as srv:
        base = srv.url
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as udd:
            ctx = pw.chromium.launch_persistent_context(
                udd, executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1440, "height": 960}, ignore_https_errors=True)
            ctx.set_default_timeout(timeout_ms)
            ctx.grant_permissions(["camera", "microphone"], origin=base)

            def watch(page: Any, label: str) -> Any:
                page.on("pageerror", lambda exc: result["page_errors"].append(f"{label}: {exc}"))
                page.on("console", lambda m: m.type == "error" and result["page_errors"].append(f"{label} console: {m.text}"))
                return page

            started = time.monotonic()

            def mark(name: str) -> None:  # how long each part took, for a slow run's report
                result.setdefault("seconds", {})[name] = round(time.monotonic() - started, 2)

            def shot(page: Any, name: str, full: bool = True) -> None:
                path = shots / f"{name}.png"
                page.screenshot(path=str(path), full_page=full)
                result["screenshots"].append(str(path))

            try:
                console = watch(ctx.pages[0] if ctx.pages else ctx.new_page(), "console")
                # 1. Sign in (a wrong secret first: the error is shown in the page).
                console.goto(base + "/console")
                console.fill("input[name=accessKeyId]", ACCESS_KEY)
                console.fill("input[name=secretAccessKey]", "not-the-secret")
                console.fill("input[name=region]", REGION)
                console.click("form.signin button[type=submit]")
                console.wait_for_selector("form.signin .error")
                result["sign_in_error"] = _errors(console)
                console.fill("input[name=secretAccessKey]", SECRET_KEY)
                shot(console, "01-sign-in")
                console.click("form.signin button[type=submit]")
                console.wait_for_selector("h1:has-text('Signaling channels')")

                mark('before 2')
                # 2. Create a channel with a TTL and tags; a bad name's error is shown too.
                console.fill("input[name=channelName]", "bad name!")
                console.evaluate("() => document.querySelector('input[name=channelName]').removeAttribute('pattern')")
                console.click("form.inline-form button[type=submit]")
                console.wait_for_selector("section.channels .error")
                result["create_error"] = _errors(console)
                console.fill("input[name=channelName]", CHANNEL)
                console.fill("input[name=ttl]", "30")
                console.fill("input[name=tags]", "team=video, env=test")
                console.click("form.inline-form button[type=submit]")
                console.wait_for_selector(f"a.channel-link:text-is('{CHANNEL}')")
                console.wait_for_selector("section.channels .error", state="detached")
                shot(console, "02-channels")

                mark('before 3')
                # 3. The channel page: settings, tags, peers, the trace following.
                console.click(f"a.channel-link:text-is('{CHANNEL}')")
                console.wait_for_selector(".trace .pill.state.on")
                console.wait_for_selector(".tags td:text-is('team')")
                result["tags"] = console.locator(".tags td.mono").all_inner_texts()
                result["ttl"] = console.input_value(".channel input[name=ttl]")
                kv = srv.boto()
                arn = kv.describe_signaling_channel(ChannelName=CHANNEL)["ChannelInfo"]["ChannelARN"]
                # TTL update and tag changes go through to the server.
                console.fill(".channel input[name=ttl]", "45")
                console.click(".channel button:text-is('Update TTL')")
                console.wait_for_selector(".channel .ok:text-is('saved')")
                result["ttl_on_server"] = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"][
                    "SingleMasterConfiguration"]["MessageTtlSeconds"]
                console.fill("input[name=tagKey]", "owner")
                console.fill("input[name=tagValue]", "console")
                console.click("button:text-is('Add tag')")
                console.wait_for_selector(".tags td:text-is('owner')")
                console.click(".tags button[title='remove env']")
                console.wait_for_selector(".tags td:text-is('env')", state="detached")
                result["tags_on_server"] = kv.list_tags_for_resource(ResourceARN=arn)["Tags"]

                mark('before 4')
                # 4. A master tab, then a viewer tab, opened from the channel page.
                with ctx.expect_page() as opened:
                    console.click(".try-links a[data-role=master]")
                master = watch(opened.value, "master")
                master.wait_for_selector("li[data-step=signaling].ok")
                with ctx.expect_page() as opened:
                    console.click(".try-links a[data-role=viewer]")
                viewer = watch(opened.value, "viewer")

                mark('before 5')
                # 5. Video plays both ways: a frame size, and the clock moving on.
                for page in (viewer, master):
                    page.wait_for_function(PLAYING, arg="video.remote")
                    t0 = page.evaluate(VIDEO_STATE, "video.remote")["time"]
                    page.wait_for_function(ADVANCED, arg=["video.remote", t0])
                result["viewer_video"] = viewer.evaluate(VIDEO_STATE, "video.remote")
                result["master_video"] = master.evaluate(VIDEO_STATE, "video.remote")
                viewer.wait_for_function("() => /frames/.test(document.querySelector('.tile .stats').textContent)")
                result["viewer_stats"] = viewer.inner_text(".tile .stats")
                result["viewer_steps"] = viewer.locator(".steps li").all_inner_texts()
                result["master_steps"] = master.locator(".steps li").all_inner_texts()

                mark('before 6')
                # 6. The exchange in the trace, decoded, with the step timing; the peers listed.
                for kind in ("SDP_OFFER", "SDP_ANSWER", "ICE_CANDIDATE"):
                    console.wait_for_selector(f".timeline li[data-event=sent][data-type={kind}]")
                console.wait_for_selector(".timeline li[data-event=delivered][data-type=SDP_ANSWER]")
                console.wait_for_selector(".timeline .step:has-text('answer +')")
                console.wait_for_selector(".peers li[data-role=viewer]")
                console.wait_for_selector(".peers li[data-role=master]")
                offer = console.locator(".timeline li[data-event=sent][data-type=SDP_OFFER]").first
                result["offer_media"] = offer.locator(".sdp .media tbody tr").all_inner_texts()
                result["offer_facts"] = offer.locator(".sdp .facts").inner_text()
                result["candidate"] = console.locator(
                    ".timeline li[data-event=sent][data-type=ICE_CANDIDATE] .candidate").first.inner_text()
                result["steps"] = console.locator(".timeline .step").all_inner_texts()
                result["timing"] = console.locator(".timing tbody tr").all_inner_texts()
                result["events"] = console.locator(".timeline li").count()
                result["connects"] = console.locator(".timeline li[data-event=connect]").count()
                result["peers"] = [[li.get_attribute("data-role"), li.inner_text()]
                                   for li in console.locator(".peers li.peer").all()]
                shot(viewer, "04-viewer")
                shot(master, "03-master")
                shot(console, "05-channel-trace")
                result["errors_shown"] = {"console": _errors(console), "master": _errors(master),
                                          "viewer": _errors(viewer)}

                mark('before 7')
                # 7. Errors of "try it" are shown in its page: a channel that does not exist.
                missing = arn.rsplit("/", 2)[0] + "/no-such-channel/1234567890123"
                broken = watch(ctx.new_page(), "broken")
                broken.goto(f"{base}/console#/try/{urllib.parse.quote(missing, safe='')}?role=viewer&start=1")
                broken.wait_for_selector(".try .error")
                result["try_error"] = _errors(broken)
                result["try_failed_step"] = broken.locator(".steps li.failed").all_inner_texts()
                shot(broken, "07-try-error", full=False)
                broken.close()

                mark('before 8')
                # 8. Delete the channel from the list: gone on the server, both tabs told.
                console.click("a:text-is('← Channels')")
                row = console.locator(f"tr[data-arn='{arn}']")
                row.locator("button:text-is('Delete')").click()
                row.locator("button:text-is('Really delete?')").click()
                console.wait_for_selector(f"tr[data-arn='{arn}']", state="detached")
                result["channels_after_delete"] = [c["ChannelName"] for c in kv.list_signaling_channels()["ChannelInfoList"]]
                viewer.wait_for_selector(".try .pill.state.closed")
                result["viewer_state_after_delete"] = viewer.inner_text(".try .title-row .pill.state")

                mark('before 9')
                # 9. The landing page a browser gets at GET /.
                landing = ctx.new_page()
                landing.goto(base + "/")
                result["landing_title"] = landing.title()
                shot(landing, "06-landing")
                mark("done")
                result["ok"] = True
            except Exception as exc:  # report what was on screen, then fail
                result["failure"] = f"{exc.__class__.__name__}: {exc}"
                for i, page in enumerate(ctx.pages):
                    try:
                        shot(page, f"failed-{i}")
                        result.setdefault("failed_errors", []).append(_errors(page))
                    except Exception:
                        pass
                result["server_log"] = srv.log()[-4000:]
            finally:
                ctx.close()
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
