"""The REST edge: wire → auth → decode/validate → operation → encode, for all three services.

Every answer is restJson1 JSON with ``x-amzn-RequestId``, and every failure, including ones no
operation raised (bad signature, unknown path, oversized or malformed body, a bug), becomes an
AWS-style error a client can map: never an HTML page, never a bare 500 without a code.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from random import getrandbits
from typing import Any, Mapping

from aiohttp import hdrs, web
from botocore.model import OperationModel
from multidict import CIMultiDict, istr

from ..aws.errors import ServiceError
from ..aws.sigv4 import AuthError, SigV4Verifier
from ..aws.wire import ServiceWire, Wire
from ..services import Handler, OpContext, Services

log = logging.getLogger("signalite.rest")

CORS_ALLOW_HEADERS = ("authorization, content-type, content-length, x-amz-date, x-amz-security-token, "
                      "x-amz-user-agent, x-amz-content-sha256, amz-sdk-invocation-id, amz-sdk-request, "
                      "x-amz-target, x-amz-client-context, user-agent")
CORS_EXPOSE_HEADERS = "x-amzn-requestid, x-amzn-errortype, x-amz-request-id, x-amz-apigw-id, date"
_REQUEST_ID = istr("x-amzn-RequestId")
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


def json_response(request: web.Request, status: int, body: bytes, request_id: str,
                  extra: Mapping[str, str] | None = None) -> web.Response:
    headers = _JSON_HEADERS.copy()
    headers[_REQUEST_ID] = request_id
    headers[_ALLOW_ORIGIN] = request.headers.get(hdrs.ORIGIN, "*")
    if extra:
        headers.update(extra)
    return web.Response(status=status, body=body, headers=headers)


def error_response(request: web.Request, svc: ServiceWire, code: str, message: str, request_id: str,
                   status: int | None = None) -> web.Response:
    return json_response(
        request,
        status if status is not None else svc.error_status(code),
        svc.error_body(code, message),
        request_id,
        {"x-amzn-ErrorType": svc.error_type_header(code)},
    )


def _unsupported_code(op: OperationModel) -> str:
    codes = [e.name for e in op.error_shapes]
    return "InvalidArgumentException" if "InvalidArgumentException" in codes else (codes[0] if codes else "InvalidArgumentException")


@lru_cache(maxsize=64)
def _is_json_content_type(value: str) -> bool:
    """Whether a request's Content-Type is one the JSON protocols accept (cached: clients send
    the same one or two values on every request)."""
    if not value:
        return True
    media = value.split(";", 1)[0].strip().lower()
    return media in ("application/json", "application/x-amz-json-1.0", "application/x-amz-json-1.1",
                     "binary/octet-stream", "text/plain", "") or media.endswith("+json")


class RestEdge:
    def __init__(self, services: Services, wire: Wire, verifier: SigV4Verifier,
                 operations: Mapping[str, Handler]) -> None:
        self.services = services
        self.wire = wire
        self.verifier = verifier
        self.operations = operations

    async def preflight(self, request: web.Request) -> web.Response:
        headers = cors_headers(request)
        headers.update({
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", CORS_ALLOW_HEADERS),
            "Access-Control-Max-Age": "600",
            "x-amzn-RequestId": new_request_id(),
        })
        return web.Response(status=200, headers=headers)

    async def handle(self, request: web.Request) -> web.Response:
        request_id = new_request_id()
        route = self.wire.route(request.path)
        control = self.wire.control_plane
        if route is None:
            return error_response(request, control, "UnknownOperationException",
                                  f"No operation is served at {request.method} {request.path[:200]}.",
                                  request_id, status=404)
        svc, op = route
        if request.method != op.http["method"]:
            return error_response(request, svc, "UnknownOperationException",
                                  f"{op.name} takes {op.http['method']}, not {request.method}.", request_id, status=405)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return error_response(request, svc, "InvalidArgumentException",
                                  f"The request body is larger than {self.services.settings.max_body_bytes} bytes.",
                                  request_id, status=413)
        raw_path = request.raw_path
        if "?" in raw_path:
            raw_path, query = raw_path.split("?", 1)[0], request.query_string
        else:
            query = ""  # the common case: no query string, and no URL parsing to find that out
        headers = request.headers
        try:
            principal = self.verifier.verify_headers(request.method, raw_path, query, headers, body,
                                                     get_all=headers.getall)
        except AuthError as exc:
            return error_response(request, svc, exc.code, exc.message, request_id, status=exc.status)
        try:
            if not _is_json_content_type(headers.get(hdrs.CONTENT_TYPE, "")):
                raise ServiceError("InvalidArgumentException",
                                   f"Unsupported Content-Type {headers.get(hdrs.CONTENT_TYPE)!r}; "
                                   "send application/json.")
            params = svc.parse(op, body)
            handler = self.operations.get(op.name)
            if handler is None:
                raise ServiceError(_unsupported_code(op),
                                   f"Signalite does not support {op.name}; it serves the signaling APIs.")
            result = await handler(OpContext(principal, self.services, request_id), params)
            return json_response(request, 200, svc.serialize(op, result), request_id)
        except ServiceError as exc:
            return error_response(request, svc, exc.code, exc.message, request_id, status=exc.status)
        except Exception:  # a bug must still answer in the AWS form, and be logged
            log.exception("unhandled error in %s (request %s)", op.name, request_id)
            return error_response(request, svc, "InternalFailure",
                                  "The request processing has failed because of an unknown error.",
                                  request_id, status=500)


def operation_table(*modules: Any) -> dict[str, Handler]:
    """Merge the ``OPERATIONS`` maps of operation modules, refusing duplicates."""
    table: dict[str, Handler] = {}
    for module in modules:
        for name, handler in module.OPERATIONS.items():
            if name in table:
                raise RuntimeError(f"operation {name} is defined twice")
            table[name] = handler
    return table
