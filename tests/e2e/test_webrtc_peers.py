"""Real WebRTC peers signal through Signalite and open data channels (issue #3 tests b and c,
and the relay-only browser path of issue #4). Each peer program starts the real server itself
inside a lo-only network namespace, so all WebRTC traffic stays on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from tests.support.coturn import needs_coturn
from tests.support.netns import needs_netns, run_python_in_netns

pytestmark = [needs_netns, pytest.mark.netns]


def _result(r) -> dict:
    lines = [line for line in r.output.splitlines() if line.startswith("{")]
    assert lines, f"peer program printed no result:\n{r}"
    return json.loads(lines[-1])


def test_aiortc_master_and_viewers_open_data_channels():
    # Four sockets at once exceed AWS's 3 connects/s per channel, so this runs on the relaxed profile.
    r = run_python_in_netns("tests/e2e/peers/aiortc_datachannel.py", "--viewers", "3",
                            "--server-arg=--quotas", "--server-arg=relaxed", timeout=120)
    result = _result(r)
    assert r.ok and result["ok"], r
    assert result["viewer_messages"] == {f"aiortc-viewer-{i}": [f"pong: ping from aiortc-viewer-{i}"] for i in range(3)}
    assert sorted(result["master_messages"]) == sorted(f"aiortc-viewer-{i}:ping from aiortc-viewer-{i}" for i in range(3))


@pytest.mark.browser
def test_chromium_pages_with_the_kvs_sdk_open_data_channels():
    r = run_python_in_netns("tests/e2e/peers/chromium_datachannel.py", "--viewers", "3", timeout=180)
    result = _result(r)
    assert r.ok and result["ok"], r
    assert result["master_offers"] == 3
    assert result["viewer_messages"] == {f"viewer-{i}": [f"pong: ping from viewer-{i}"] for i in range(3)}
    assert all(t == "host" for t in result["viewer_candidate_types"].values()), result


@pytest.mark.browser
@needs_coturn
def test_chromium_relay_only_through_supervised_coturn_with_ice_config_credentials():
    r = run_python_in_netns("tests/e2e/peers/chromium_datachannel.py", "--viewers", "1", "--relay-only",
                            "--ice-from-server", "--server-arg=--turn", timeout=180)
    result = _result(r)
    assert r.ok and result["ok"], r
    assert result["viewer_candidate_types"] == {"viewer-0": "relay"}, result
