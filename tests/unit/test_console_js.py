"""The console decodes trace events in JavaScript (console/src/decode.js) exactly as the CLI does in
Python (signalite/tracing.py): both run on the same events here and must agree. And the operation
paths the console calls are botocore's (its table in console/src/aws.js is checked against the
models, so a typo cannot hide until a browser hits it)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import botocore.session
import pytest

from signalite import operator, tracing

ROOT = Path(__file__).resolve().parents[2]
DECODE = ROOT / "console" / "src" / "decode.js"
AWS_JS = ROOT / "console" / "src" / "aws.js"

OFFER = "\r\n".join([
    "v=0", "o=- 4611731400430051336 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9", "c=IN IP4 0.0.0.0", "a=ice-ufrag:Ab3d", "a=ice-pwd:x",
    "a=fingerprint:sha-256 CC:85:90:D7:C1:93:AC:D2:06:4A:21:F5:66:87:70:4F:C8:F0:1B:DD:63:0C:15:FF:02:6E:3E:D0:DA:A1:6C:EB",
    "a=mid:0", "a=sendrecv", "a=rtpmap:111 opus/48000/2", "a=rtpmap:63 red/48000/2", "a=rtpmap:9 G722/8000",
    "a=candidate:3080707704 1 udp 2122260223 127.0.0.1 50431 typ host generation 0",
    "a=candidate:842163049 1 udp 1686052607 203.0.113.7 61000 typ srflx raddr 10.0.0.2 rport 50431",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98", "a=ice-ufrag:Ab3d", "a=mid:1", "a=recvonly",
    "a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000", "a=rtpmap:98 VP8/90000",
    "a=candidate:1 1 TCP 1518280447 127.0.0.1 9 typ host tcptype active",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "a=mid:2", "a=candidate:bad", "",
])
ANSWER = "v=0\nm=video 9 UDP/TLS/RTP/SAVPF 96\na=ice-ufrag:Zz9\na=mid:0\na=inactive\na=rtpmap:96 H264/90000\n"


def _b64(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(raw).decode()


def _events() -> list[dict]:
    t = 1796119830.0
    ev = lambda kind, mt, sender, recipient, payload, at: {  # noqa: E731
        "event": kind, "messageType": mt, "sender": sender, "recipient": recipient, "payload": payload, "time": at}
    return [
        {"event": "connect", "messageType": None, "sender": None, "recipient": None, "role": "master", "time": t},
        ev("sent", "SDP_OFFER", "v1", None, _b64({"type": "offer", "sdp": OFFER}), t + 0.0101),
        ev("delivered", "SDP_OFFER", "v1", None, _b64({"type": "offer", "sdp": OFFER}), t + 0.0102),
        ev("sent", "ICE_CANDIDATE", "v1", None, _b64({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host",
                                                      "sdpMid": "0"}), t + 0.0213),
        ev("sent", "ICE_CANDIDATE", "v1", None, _b64({"candidate": "a=candidate:2 2 UDP 16777215 198.51.100.1 3478 typ relay raddr 0.0.0.0 rport 0"}), t + 0.03),
        ev("sent", "SDP_ANSWER", None, "v1", _b64({"type": "answer", "sdp": ANSWER}), t + 0.1184),
        ev("sent", "ICE_CANDIDATE", None, "v1", _b64({"candidate": ""}), t + 0.2296),
        ev("sent", "ICE_CANDIDATE", None, "v1", _b64({"candidate": "not a candidate"}), t + 0.3),
        ev("sent", "SDP_OFFER", "v2", None, "not base64!", t + 1.0),
        ev("sent", "SDP_OFFER", "v2", None, _b64(b"\xff\xfe not json"), t + 1.1),
        ev("sent", "SDP_OFFER", "v2", None, _b64("just a string"), t + 1.2),
        ev("sent", "SDP_OFFER", "v2", None, _b64(42), t + 1.3),
        ev("sent", "SDP_OFFER", "v2", None, _b64({"sdp": 5}), t + 1.4),
        ev("sent", "SDP_ANSWER", None, "v2", _b64({"type": "answer", "sdp": ANSWER}), t + 1.4567),
        ev("sent", "GO_AWAY", None, "v2", None, t + 2),
        ev("sent", "SDP_ANSWER", None, None, _b64({"sdp": ANSWER}), t + 2.5),
        ev("buffered", "SDP_OFFER", "v3", None, "eA", None),
    ]


@pytest.mark.node
@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
def test_javascript_decoding_matches_the_cli():
    events = _events()
    script = "\n".join([
        f"import {{ enrich, Timeline }} from {json.dumps(DECODE.as_uri())};",
        "import { readFileSync } from 'node:fs';",
        "const events = JSON.parse(readFileSync(0, 'utf8'));",
        "const timeline = new Timeline();",
        "process.stdout.write(JSON.stringify(events.map((e) => enrich(e, timeline))));",
    ])
    r = subprocess.run(["node", "--input-type=module", "-e", script], input=json.dumps(events),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    from_js = json.loads(r.stdout)
    timeline = tracing.Timeline()
    from_python = [tracing.enrich(e, timeline) for e in events]
    for i, (js, py) in enumerate(zip(from_js, from_python, strict=True)):
        assert js == py, f"event {i} ({events[i]['messageType']}): JS {js} != Python {py}"
    # And the cases are real ones: SDPs and candidates were decoded, steps were timed.
    assert from_python[1]["decoded"]["sdp"]["media"][1]["codecs"] == ["VP8", "rtx"]
    assert from_python[4]["decoded"]["candidate"]["relatedAddress"] == "0.0.0.0"
    assert from_python[5]["step"] == "answer +108 ms after the offer"
    assert {"raw"} == set(from_python[8]["decoded"])


def _js_table(name: str) -> dict[str, str]:
    text = AWS_JS.read_text()
    body = re.search(rf"export const {name} = \{{(.*?)\}};", text, re.S)
    assert body, name
    return dict(re.findall(r"(\w+): '([^']+)'", body.group(1)))


def test_the_console_calls_the_paths_of_the_models():
    session = botocore.session.get_session()
    for table, model in (("OPERATIONS", session.get_service_model("kinesisvideo")),
                         ("SIGNALING_OPERATIONS", session.get_service_model("kinesis-video-signaling")),
                         ("ADMIN_OPERATIONS", operator.service_model())):
        paths = _js_table(table)
        assert paths, table
        for op, path in paths.items():
            http = model.operation_model(op).http
            assert (http["method"], http["requestUri"]) == ("POST", path), (table, op)
    trace = re.search(r"export const TRACE_PATH = '([^']+)'", AWS_JS.read_text())
    from signalite.operator.trace import TRACE_PATH
    assert trace and trace.group(1) == TRACE_PATH
