"""The web console (``GET /console``) and the landing page browsers get at ``GET /``.

Plain HTTP against the real server: the page and its assets, their content types and cache
headers, revalidation, what is not served; the landing page only for ``Accept: text/html`` (the
JSON error for everything else stays, tests/signaling/test_wss_protocol.py). Then the console as a
person uses it, in Debian's headless Chromium inside a lo-only network namespace
(tests/e2e/peers/console_browser.py): sign in, create a channel, a master tab and a viewer tab
with the fake camera, remote video playing both ways, the exchange in the live trace. Its
screenshots stay under the test's tmp dir (the path is printed). Last, the committed build is
what ``console/build.mjs`` makes from the sources, byte for byte (where Node and npm exist).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.netns import needs_netns, run_python_in_netns

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "signalite" / "console"
SOURCE = ROOT / "console"


def _get(url: str, ca: str | None = None, **headers: str) -> tuple[int, dict[str, str], bytes]:
    context = ssl.create_default_context(cafile=ca) if url.startswith("https://") else None
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def _assets(html: bytes) -> list[str]:
    return re.findall(r'(?:src|href)="(/console/static/[^"]+)"', html.decode())


def test_console_page_is_html_and_names_its_assets(server):
    for path in ("/console", "/console/"):
        status, headers, body = _get(server.http_url + path)
        assert status == 200, body
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["cache-control"] == "no-cache"
        assert "script-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert b"<title>Signalite console</title>" in body
    assets = _assets(body)
    assert any(a.endswith(".js") and "/kvs-webrtc-" in a for a in assets), assets  # the KVS SDK's own build
    assert any(a.endswith(".js") and "/app-" in a for a in assets), assets
    assert any(a.endswith(".css") for a in assets), assets
    assert not re.search(rb"<script(?![^>]*\bsrc=)", body), "no inline script (the CSP forbids it)"


def test_console_is_served_on_the_tls_listener_too(server):
    status, headers, body = _get(server.url + "/console", ca=server.ca)
    assert status == 200 and headers["content-type"].startswith("text/html")


def test_assets_have_content_types_and_long_cache_headers(server):
    _, _, page = _get(server.http_url + "/console")
    kinds = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    for path in _assets(page):
        status, headers, body = _get(server.http_url + path)
        assert status == 200, path
        assert headers["content-type"] == kinds[Path(path).suffix], path
        assert headers["cache-control"] == "public, max-age=31536000, immutable", path  # content-hashed names
        assert headers["x-content-type-options"] == "nosniff"
        assert body == (BUILT / "static" / Path(path).name).read_bytes()
    status, headers, body = _get(server.http_url + "/console/static/THIRD-PARTY-NOTICES.txt")
    assert status == 200 and headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["cache-control"] == "no-cache"  # not hashed: revalidated
    assert b"amazon-kinesis-video-streams-webrtc" in body and b"aws4fetch" in body


def test_pages_and_assets_revalidate_by_etag(server):
    _, headers, page = _get(server.http_url + "/console")
    status, again, body = _get(server.http_url + "/console", **{"If-None-Match": headers["etag"]})
    assert status == 304 and body == b"" and again["etag"] == headers["etag"]
    asset = _assets(page)[0]
    _, headers, _ = _get(server.http_url + asset)
    assert _get(server.http_url + asset, **{"If-None-Match": headers["etag"]})[0] == 304
    assert _get(server.http_url + asset, **{"If-None-Match": '"something-else"'})[0] == 200


@pytest.mark.parametrize("path", ["/console/static/nope.js", "/console/static/__init__.py",
                                  "/console/static/..%2F__init__.py", "/console/static/.hidden",
                                  "/console/static/%2e%2e%2fpyproject.toml"])
def test_what_is_not_a_console_file_is_404(server, path):
    status, headers, body = _get(server.http_url + path)
    assert status == 404, (path, body)
    assert b"import" not in body


def test_head_of_the_console_has_no_body(server):
    request = urllib.request.Request(server.http_url + "/console", method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/html") and r.read() == b""


def test_get_root_gives_browsers_the_landing_page_and_others_the_json_error(server):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"  # what Chromium sends
    for base, ca in ((server.http_url, None), (server.url, server.ca)):
        status, headers, body = _get(base + "/", ca=ca, Accept=browser)
        assert status == 200, body
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert b'href="/console"' in body
        for accept in ("*/*", "application/json", None):
            status, headers, body = _get(base + "/", ca=ca, **({"Accept": accept} if accept else {}))
            assert status == 400, accept
            assert json.loads(body)["__type"] == "InvalidArgumentException"
    _, _, landing = _get(server.http_url + "/", Accept="text/html")
    for path in _assets(landing):
        assert _get(server.http_url + path)[0] == 200


@needs_netns
@pytest.mark.netns
@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian chromium")
def test_console_in_chromium_sign_in_channel_master_and_viewer_video_and_the_trace(tmp_path, record_property):
    shots = tmp_path / "screenshots"
    print(f"console screenshots: {shots}")
    record_property("screenshots", str(shots))  # in the JUnit XML of a CI run, too
    r = run_python_in_netns("tests/e2e/peers/console_browser.py", "--artifacts", str(shots), timeout=240)
    lines = [line for line in r.output.splitlines() if line.startswith("{")]
    assert lines, f"the browser program printed no result:\n{r}"
    result = json.loads(lines[-1])
    assert r.ok and result["ok"], r
    # Errors are shown in the page: a wrong secret at sign-in, a bad channel name at create.
    assert any("InvalidSignatureException" in e or "SignatureDoesNotMatch" in e for e in result["sign_in_error"]), result
    assert any("InvalidArgumentException" in e for e in result["create_error"]), result
    assert result["errors_shown"] == {"console": [], "master": [], "viewer": []}, result
    assert [e for e in result["page_errors"] if "Failed to load resource" not in e] == [], result["page_errors"]
    assert result["tags"] == ["env", "test", "team", "video"] and result["ttl"] == "30"
    assert result["ttl_on_server"] == 45 and result["tags_on_server"] == {"team": "video", "owner": "console"}, result
    assert any("ResourceNotFoundException" in e for e in result["try_error"]), result["try_error"]
    assert result["try_failed_step"] and result["try_failed_step"][0].startswith("GetSignalingChannelEndpoint"), result
    assert result["channels_after_delete"] == [] and result["viewer_state_after_delete"] == "signaling closed", result
    # Remote video plays in both tabs: frames of a size, the clock moving on.
    for side in ("viewer_video", "master_video"):
        assert result[side]["width"] > 0 and result[side]["height"] > 0 and not result[side]["paused"], result[side]
    assert "frames" in result["viewer_stats"] and "host/udp 127.0.0.1" in result["viewer_stats"], result
    for steps in (result["viewer_steps"], result["master_steps"]):
        assert any(s.startswith("GetIceServerConfig") for s in steps) and any("Remote video playing" in s for s in steps), steps
    # The trace: the exchange decoded (media sections, codecs, ufrag, fingerprint, candidates), timed.
    media = {row.split("\t")[0]: row for row in result["offer_media"]}
    assert set(media) == {"audio", "video"} and "VP8" in media["video"] and "opus" in media["audio"], media
    assert "ICE ufrag" in result["offer_facts"] and "sha-256" in result["offer_facts"], result["offer_facts"]
    assert re.match(r"host udp 127\.0\.0\.1:\d+ prio \d+", result["candidate"]), result["candidate"]
    assert any(re.fullmatch(r"answer \+\d+ ms after the offer", s) for s in result["steps"]), result["steps"]
    assert result["connects"] == 2 and result["timing"], result
    assert sorted(role for role, _ in result["peers"]) == ["master", "viewer"], result["peers"]
    assert all(re.search(r"connected .* · \d+ in · \d+ out", text) for _, text in result["peers"]), result["peers"]
    assert result["landing_title"] == "Signalite"
    assert len(result["screenshots"]) == 7 and all(Path(p).stat().st_size > 10_000 for p in result["screenshots"])


def _node_modules_for(build_dir: Path) -> None:
    """The pinned packages for a build in ``build_dir``: the tree's own (``make console``) when it
    matches the lock file, else a fresh ``npm ci``."""
    own = SOURCE / "node_modules"
    installed = own / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= (SOURCE / "package-lock.json").stat().st_mtime:
        (build_dir / "node_modules").symlink_to(own)
        return
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=build_dir,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.node
@pytest.mark.skipif(shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js and npm")
def test_the_committed_console_is_what_the_pinned_build_makes(tmp_path):
    build_dir = tmp_path / "console"
    shutil.copytree(SOURCE, build_dir, ignore=shutil.ignore_patterns("node_modules"))
    _node_modules_for(build_dir)
    out = tmp_path / "out"
    r = subprocess.run(["node", "build.mjs", "--out", str(out)], cwd=build_dir, capture_output=True, text=True,
                       timeout=300, env={**os.environ, "NODE_ENV": "production"})
    assert r.returncode == 0, r.stdout + r.stderr

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts}

    built, committed = files(out), files(BUILT)
    assert sorted(built) == sorted(committed), "run `make console` and commit signalite/console"
    different = [name for name in built if built[name] != committed[name]]
    assert not different, f"rebuilt files differ from the committed ones: {different} (run `make console`)"
    size = sum(len(b) for name, b in built.items() if name.startswith("static/") and name.endswith((".js", ".css")))
    assert size < 200_000, f"the console's assets grew to {size} bytes"
