"""An example of testing a KVS WebRTC app offline with the ``signalite_env`` fixture.

``pip install signalite`` makes the fixture available; the test below runs a master and a viewer
(aiortc) that find each other through Signalite exactly as they would through AWS: boto3 with no
endpoint or credentials in code, GetSignalingChannelEndpoint, GetIceServerConfig, presigned WSS
connects, and a data-channel message from the viewer to the master and back.

Keep WebRTC on loopback when you run it in CI (e.g. ``unshare -n`` with ``lo`` up): aiortc then
needs to be told to use 127.0.0.1, which the ``loopback_ice`` line below does.
"""

import asyncio
import base64
import json
import os
import ssl
from urllib.parse import urlencode

import aioice.ice
import boto3
import websockets
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.session import get_session

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []  # loopback_ice


def presign(wss: str, arn: str, client_id: str | None = None) -> str:
    params = {"X-Amz-ChannelARN": arn, **({"X-Amz-ClientId": client_id} if client_id else {})}
    request = AWSRequest(method="GET", url=wss.replace("wss://", "https://", 1) + "/?" + urlencode(params))
    credentials = get_session().get_credentials()
    SigV4QueryAuth(credentials, "kinesisvideo", os.environ["AWS_REGION"], expires=299).add_auth(request)
    return request.url.replace("https://", "wss://", 1)


def pack(desc: RTCSessionDescription) -> str:
    return base64.b64encode(json.dumps({"type": desc.type, "sdp": desc.sdp}).encode()).decode()


def unpack(payload: str) -> RTCSessionDescription:
    d = json.loads(base64.b64decode(payload))
    return RTCSessionDescription(sdp=d["sdp"], type=d["type"])


async def exchange() -> str:
    kv = boto3.client("kinesisvideo")
    arn = kv.create_signaling_channel(ChannelName="example")["ChannelARN"]
    endpoints = {e["Protocol"]: e["ResourceEndpoint"] for e in kv.get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS", "HTTPS"], "Role": "MASTER"},
    )["ResourceEndpointList"]}
    signaling = boto3.client("kinesis-video-signaling", endpoint_url=endpoints["HTTPS"])
    ice = signaling.get_ice_server_config(ChannelARN=arn)["IceServerList"]
    config = RTCConfiguration([RTCIceServer(s["Uris"], s.get("Username"), s.get("Password")) for s in ice])
    tls = ssl.create_default_context(cafile=os.environ["AWS_CA_BUNDLE"])

    async with websockets.connect(presign(endpoints["WSS"], arn), ssl=tls) as master_ws, \
            websockets.connect(presign(endpoints["WSS"], arn, "viewer-1"), ssl=tls) as viewer_ws:
        master, viewer = RTCPeerConnection(config), RTCPeerConnection(config)

        @master.on("datachannel")
        def on_channel(channel) -> None:  # noqa: ANN001
            channel.on("message", lambda text: channel.send(f"pong: {text}"))

        channel = viewer.createDataChannel("chat")
        reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        channel.on("open", lambda: channel.send("ping"))
        channel.on("message", lambda text: reply.done() or reply.set_result(text))

        await viewer.setLocalDescription(await viewer.createOffer())
        await viewer_ws.send(json.dumps({"action": "SDP_OFFER", "messagePayload": pack(viewer.localDescription)}))
        offer = json.loads(await master_ws.recv())
        await master.setRemoteDescription(unpack(offer["messagePayload"]))
        await master.setLocalDescription(await master.createAnswer())
        await master_ws.send(json.dumps({"action": "SDP_ANSWER", "recipientClientId": offer["senderClientId"],
                                         "messagePayload": pack(master.localDescription)}))
        await viewer.setRemoteDescription(unpack(json.loads(await viewer_ws.recv())["messagePayload"]))
        try:
            return await asyncio.wait_for(reply, 30)
        finally:
            await viewer.close()
            await master.close()


def test_viewer_and_master_talk_through_signalite(signalite_env):
    assert asyncio.run(exchange()) == "pong: ping"
