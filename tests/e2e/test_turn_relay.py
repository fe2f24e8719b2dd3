"""A relay-only aiortc data channel through coturn, with the credentials GetIceServerConfig returns.

Runs inside a lo-only network namespace (tests/support/netns.py): coturn, the Signalite server and
both aiortc peers are started there, so no WebRTC packet can leave 127.0.0.1. The SDP is exchanged
in-process (signaling over WSS is tested elsewhere); the point is TURN with our credentials and
``iceTransportPolicy: relay``, once through a test coturn (``--turn-uri``/``--turn-secret``, over
TURN/UDP and TURN/TCP, plus a tampered password that gathers nothing) and once through the coturn
that ``signalite serve --turn`` runs. The outer pytest test runs this file as a script in the
namespace.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.coturn import needs_coturn
from tests.support.netns import needs_netns, run_python_in_netns


@pytest.mark.netns
@needs_netns
@needs_coturn
def test_relay_only_data_channel_through_coturn_in_netns():
    result = run_python_in_netns(__file__, timeout=120)
    assert result.ok, str(result)
    assert "RELAY DATA CHANNEL OK" in result.output, str(result)


@pytest.mark.netns
@needs_netns
def test_netns_helper_gives_a_lo_only_namespace():
    """The helper other WebRTC tests rely on: only ``lo``, up, and 127.0.0.1 reachable inside."""
    script = ("import os, socket; print(sorted(n for _, n in socket.if_nameindex()));"
              "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); c = socket.create_connection(s.getsockname());"
              "print('loopback ok', os.environ['SIGNALITE_TEST_NETNS'])")
    result = run_python_in_netns("-c", script)
    assert result.ok, str(result)
    assert result.output.splitlines() == ["['lo']", "loopback ok 1"], str(result)


# --------------------------------------------------------------------------------------------
# Everything below runs inside the namespace.

async def _peers(ice_servers: list[dict], channel_label: str = "kvsDataChannel") -> dict:
    from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    def config() -> RTCConfiguration:
        return RTCConfiguration(
            iceServers=[RTCIceServer(urls=e["Uris"], username=e.get("Username"), credential=e.get("Password"))
                        for e in ice_servers],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY)

    viewer, master = RTCPeerConnection(config()), RTCPeerConnection(config())
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    @master.on("datachannel")
    def on_datachannel(channel):  # noqa: ANN001
        @channel.on("message")
        def on_message(message):  # noqa: ANN001
            channel.send(f"pong: {message}")

    dc = viewer.createDataChannel(channel_label)

    @dc.on("open")
    def on_open() -> None:
        dc.send("ping")

    @dc.on("message")
    def on_message(message) -> None:  # noqa: ANN001
        if not got.done():
            got.set_result(message)

    try:
        await viewer.setLocalDescription(await viewer.createOffer())
        offer_sdp = viewer.localDescription.sdp
        await master.setRemoteDescription(viewer.localDescription)
        await master.setLocalDescription(await master.createAnswer())
        answer_sdp = master.localDescription.sdp
        if "a=candidate" not in offer_sdp:  # gathering failed (e.g. refused credentials)
            return {"offer": offer_sdp, "answer": answer_sdp, "message": None}
        await viewer.setRemoteDescription(master.localDescription)
        message = await asyncio.wait_for(got, 30)
        return {"offer": offer_sdp, "answer": answer_sdp, "message": message}
    finally:
        await viewer.close()
        await master.close()


def _candidates(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate")]


def main() -> int:
    import aioice.ice

    from tests.e2e.test_ice import https_endpoint
    from tests.support.coturn import running_coturn
    from tests.support.server import PICK_PORT, running_server

    # aioice skips 127.0.0.1 when listing host addresses; in a lo-only netns that is all there is.
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with running_coturn(tmp_path / "coturn", extra=("--verbose",)) as turn, \
                running_server(tmp_path / "server", "--turn-uri", turn.uri_list, "--turn-secret", turn.secret) as srv:
            kv = srv.boto()
            arn = kv.create_signaling_channel(ChannelName="relay-test")["ChannelARN"]
            sig = srv.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, arn))
            ice = sig.get_ice_server_config(ChannelARN=arn, ClientId="aiortc-viewer")["IceServerList"]
            print("IceServerList:", ice, flush=True)

            for transport in ("udp", "tcp"):
                only = [{**e, "Uris": [u for u in e["Uris"] if u.endswith(f"transport={transport}")]} for e in ice]
                result = asyncio.run(_peers(only))
                for side in ("offer", "answer"):
                    cands = _candidates(result[side])
                    assert cands, f"no candidates in the {side} over {transport}"
                    assert all(" typ relay" in c for c in cands), cands
                assert result["message"] == "pong: ping", result
                print(f"relay-only data channel over TURN/{transport}: {result['message']}", flush=True)

            # The same run with a tampered password gathers no relay candidate at all.
            bad = [{**e, "Password": "A" + e["Password"][1:] if e["Password"][0] != "A" else "B" + e["Password"][1:]}
                   for e in ice]
            result = asyncio.run(_peers(bad))
            assert not _candidates(result["offer"]), result["offer"]
            log = turn.log()
            assert "aiortc-viewer" in log, log[-2000:]

        # The coturn that `signalite serve --turn` runs itself (plain turn: URIs; aiortc would check
        # the turns: certificate against the system CAs, which do not include Signalite's local CA).
        with running_server(tmp_path / "server-turn", "--turn", "--turn-port", PICK_PORT) as srv:
            kv = srv.boto()
            arn = kv.create_signaling_channel(ChannelName="relay-test-managed")["ChannelARN"]
            sig = srv.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, arn))
            ice = sig.get_ice_server_config(ChannelARN=arn, ClientId="aiortc-master")["IceServerList"]
            plain = [{**e, "Uris": [u for u in e["Uris"] if u.startswith("turn:")]} for e in ice]
            result = asyncio.run(_peers(plain))
            assert all(" typ relay" in c for c in _candidates(result["offer"]) + _candidates(result["answer"]))
            assert result["message"] == "pong: ping", result
            print("relay-only data channel through the coturn of serve --turn:", result["message"], flush=True)
        print("RELAY DATA CHANNEL OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
