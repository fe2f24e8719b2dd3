"""Raw SigV4-signed HTTP for tests that must send what no SDK would (hostile bodies, odd
headers): botocore's own signer signs, urllib sends, and the answer comes back unparsed."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .server import ACCESS_KEY, REGION, SECRET_KEY


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_type(self) -> str | None:
        value = self.headers.get("x-amzn-ErrorType")
        return value.split(":", 1)[0] if value else None


def sign(method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None, *,
         region: str = REGION, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
         token: str | None = None) -> dict[str, str]:
    """Headers botocore's SigV4Auth puts on this request (it signs every header it is given)."""
    req = AWSRequest(method=method, url=url, data=body,
                     headers={"Content-Type": "application/json", **(headers or {})})
    SigV4Auth(Credentials(access_key, secret_key, token), "kinesisvideo", region).add_auth(req)
    return dict(req.headers.items())


def send(method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None, *,
         ca: str | None = None, timeout: float = 10) -> Reply:
    req = urllib.request.Request(url, data=body if method not in ("GET", "HEAD") or body else None,
                                 method=method, headers=dict(headers or {}))
    ctx = ssl.create_default_context(cafile=ca) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            return Reply(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.headers, e.read())


def signed(method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None,
           **sign_args: Any) -> Reply:
    return send(method, url, body, sign(method, url, body, headers, **sign_args))
