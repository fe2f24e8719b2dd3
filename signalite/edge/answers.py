"""Every HTTP answer the server gives to an AWS client, success or error, in one form.

REST operations, the WSS handshake and the admin API all answer through :func:`error` and
:func:`success`: restJson1 JSON (XML for the query services, IAM and STS) with
``x-amzn-RequestId``, CORS headers for browser clients, and, on errors, the modeled body (JSON
``__type`` and ``x-amzn-ErrorType``, or the XML ``ErrorResponse``) whose status comes from the
service model (a handshake refusal says its own status: the WSS endpoint has no model).
"""

from __future__ import annotations

from random import getrandbits
from typing import Mapping

from aiohttp import hdrs, web
from multidict import CIMultiDict, istr

from ..aws.wire import WireService

CORS_ALLOW_HEADERS = ("authorization, content-type, content-length, x-amz-date, x-amz-security-token, "
                      "x-amz-user-agent, x-amz-content-sha256, amz-sdk-invocation-id, amz-sdk-request, "
                      "x-amz-target, x-amz-client-context, user-agent")
CORS_EXPOSE_HEADERS = "x-amzn-requestid, x-amzn-errortype, x-amz-request-id, x-amz-apigw-id, date"
_REQUEST_ID = istr("x-amzn-RequestId")
_ERROR_TYPE = istr("x-amzn-ErrorType")
_ALLOW_ORIGIN = hdrs.ACCESS_CONTROL_ALLOW_ORIGIN
_JSON_HEADERS: CIMultiDict[str] = CIMultiDict({
    hdrs.CONTENT_TYPE: "application/json",
    hdrs.ACCESS_CONTROL_EXPOSE_HEADERS: CORS_EXPOSE_HEADERS,
    hdrs.VARY: "Origin",
})
"""The headers every JSON answer carries, built once: a copy of a CIMultiDict is a C-level copy,
about half the cost of building one from a dict of str keys on every response."""


def new_request_id() -> str:
    """A version-4 UUID string for ``x-amzn-RequestId``. Request ids correlate logs and client
    errors and are not secrets, so they come from ``random`` rather than ``os.urandom`` (a
    syscall per request, and uuid4() costs about 3x as much on the hot path)."""
    n = getrandbits(128)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[n & 3]}{h[17:20]}-{h[20:]}"


def cors_headers(request: web.Request) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": request.headers.get("Origin", "*"),
        "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS,
        "Vary": "Origin",
    }


_XML_HEADERS: CIMultiDict[str] = _JSON_HEADERS.copy()
_XML_HEADERS[hdrs.CONTENT_TYPE] = "text/xml"
_HEADERS = {"application/json": _JSON_HEADERS, "text/xml": _XML_HEADERS}


def success(request: web.Request, body: bytes, request_id: str, status: int = 200,
            extra: Mapping[str, str] | None = None, content_type: str = "application/json") -> web.Response:
    """An answer of ``content_type`` (a service's: JSON, or XML for the query services)."""
    headers = _HEADERS[content_type].copy()
    headers[_REQUEST_ID] = request_id
    headers[_ALLOW_ORIGIN] = request.headers.get(hdrs.ORIGIN, "*")
    if extra:
        headers.update(extra)
    return web.Response(status=status, body=body, headers=headers)


def error(request: web.Request, svc: WireService, code: str, message: str, request_id: str,
          status: int | None = None) -> web.Response:
    """The AWS error ``code`` as ``svc``'s model renders it; ``status`` defaults to the model's."""
    status = status if status is not None else svc.error_status(code)
    error_type = svc.error_type_header(code)
    return success(request, svc.error_body(code, message, request_id, status), request_id, status,
                   {_ERROR_TYPE: error_type} if error_type is not None else None, svc.content_type)


def preflight(request: web.Request) -> web.Response:
    """A CORS preflight: browser clients (the KVS JS SDK's page, the console) call every plane."""
    headers = cors_headers(request)
    headers.update({
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", CORS_ALLOW_HEADERS),
        "Access-Control-Max-Age": "600",
        "x-amzn-RequestId": new_request_id(),
    })
    return web.Response(status=200, headers=headers)
