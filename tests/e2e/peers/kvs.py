"""What the aiortc peer scripts share: presigned WSS URLs (botocore's signer, the test root key)
and the KVS envelope of an SDP (base64 of the JSON RTCSessionDescription, as the SDKs send it)."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

from aiortc import RTCSessionDescription
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support.server import ACCESS_KEY, REGION, SECRET_KEY


def presign(endpoint: str, arn: str, client_id: str | None = None) -> str:
    params = {"X-Amz-ChannelARN": arn}
    if client_id:
        params["X-Amz-ClientId"] = client_id
    req = AWSRequest(method="GET", url=endpoint.replace("wss://", "https://", 1) + "/?" + urlencode(params))
    SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "kinesisvideo", REGION, expires=299).add_auth(req)
    return str(req.url).replace("https://", "wss://", 1)


def encode(desc: RTCSessionDescription) -> str:
    return base64.b64encode(json.dumps({"type": desc.type, "sdp": desc.sdp}).encode()).decode()


def decode(payload: str) -> RTCSessionDescription:
    d = json.loads(base64.b64decode(payload))
    return RTCSessionDescription(sdp=d["sdp"], type=d["type"])
