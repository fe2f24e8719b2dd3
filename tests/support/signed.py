"""Raw SigV4-signed HTTP for tests that must send what no SDK would (hostile bodies, odd
headers): botocore's own signer signs, urllib sends, and the answer comes back unparsed."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

from botocore.auth import SigV4Auth, _host_from_url
from botocore.awsrequest import AWSRequest, HTTPHeaders
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


class ExactHeadersSigV4Auth(SigV4Auth):
    """botocore's signer, told exactly which headers to sign (botocore itself signs all it is
    given except a blacklist that includes user-agent, which the KVS C SDK does sign)."""

    def __init__(self, credentials: Credentials, service: str, region: str, names: set[str]) -> None:
        super().__init__(credentials, service, region)
        self.names = names

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self.names:
                chosen[name.lower()] = value
        if "host" in self.names and "host" not in chosen:
            chosen["host"] = _host_from_url(request.url)
        return chosen


def sign(method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None, *,
         region: str = REGION, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
         token: str | None = None, signed_headers: set[str] | None = None,
         service: str = "kinesisvideo") -> dict[str, str]:
    """Headers botocore's SigV4Auth puts on this request. By default it signs every header it is
    given (as boto3 does); ``signed_headers`` names an exact set instead (JS v3, C SDK)."""
    given = dict(headers or {})
    if not any(k.lower() == "content-type" for k in given):
        given["Content-Type"] = "application/json"
    req = AWSRequest(method=method, url=url, data=body, headers=given)
    creds = Credentials(access_key, secret_key, token)
    if signed_headers is None:
        SigV4Auth(creds, service, region).add_auth(req)
    else:
        ExactHeadersSigV4Auth(creds, service, region, signed_headers).add_auth(req)
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
