"""Frames the server sends are always valid UTF-8, even when a client's string is not encodable
(a lone surrogate written as a JSON escape): found by the WSS fuzzer (tests/fuzz_corpus/wss/)."""

from __future__ import annotations

import json

from signalite.signaling import frames


def test_a_lone_surrogate_payload_is_relayed_escaped():
    payload = frames.parse('{"action":"ICE_CANDIDATE","messagePayload":"\\ud800x"}').payload
    out = frames.message("ICE_CANDIDATE", payload, "v")
    out.encode("utf-8")  # what Session.send does: must not raise
    assert json.loads(out)["messagePayload"] == "\ud800x"  # the same string to any JSON reader


def test_ascii_and_other_payloads_are_unchanged():
    assert frames.message("SDP_OFFER", "eA==", None) == '{"messagePayload":"eA==","messageType":"SDP_OFFER"}'
    out = frames.message("SDP_OFFER", "é", None)
    assert json.loads(out)["messagePayload"] == "é"


def test_a_status_response_echoing_a_surrogate_is_encodable():
    out = frames.status_response("\udc00", "InvalidArgumentException", "bad")
    out.encode("utf-8")
    assert json.loads(out)["statusResponse"]["correlationId"] == "\udc00"
