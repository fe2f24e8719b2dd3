"""The REST edge: wire → auth → decode/validate → operation → encode, for every modeled service
(the three KVS services and the admin API).

Every answer is restJson1 JSON with ``x-amzn-RequestId``, and every failure, including ones no
operation raised (bad signature, unknown path, oversized or malformed body, a bug), becomes an
AWS-style error a client can map: never an HTML page, never a bare 500 without a code.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from time import perf_counter
from types import ModuleType
from typing import Mapping

from aiohttp import hdrs, web
from botocore.model import OperationModel

from ..aws.errors import ServiceError
from ..aws.sigv4 import AuthError
from ..aws.wire import Wire
from ..context import CLOCK, HUB, SETTINGS, STORE, Handler, OpContext
from ..metrics import EdgeStats
from . import answers
from .auth import Authenticator

log = logging.getLogger("signalite.rest")
access_log = logging.getLogger("signalite.access")


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


OPERATION = "signalite.operation"
"""Request key: the operation name the edge routed the request to (for the access log)."""
ACCOUNT = "signalite.account"
"""Request key: the account of the authenticated principal."""
_UNROUTED = "unknown"


class RestEdge:
    def __init__(self, wire: Wire, auth: Authenticator, operations: Mapping[str, Handler],
                 max_body_bytes: int, stats: EdgeStats | None = None) -> None:
        self.wire = wire
        self.auth = auth
        self.operations = operations
        self.max_body_bytes = max_body_bytes
        self.stats = stats or EdgeStats()

    async def preflight(self, request: web.Request) -> web.Response:
        return answers.preflight(request)

    async def handle(self, request: web.Request) -> web.Response:
        """One REST request, counted by operation and status and written to the access log."""
        start = perf_counter()
        response = await self._handle(request)
        operation = request.get(OPERATION, _UNROUTED)
        self.stats.requests[operation, response.status] += 1
        if access_log.isEnabledFor(logging.INFO):
            request_id = response.headers.get("x-amzn-RequestId", "")
            ms = (perf_counter() - start) * 1000
            access_log.info("%s %s %d %.1f ms", request.method, operation, response.status, ms,
                            extra={"request_id": request_id, "operation": operation, "status": response.status,
                                   "account": request.get(ACCOUNT), "duration_ms": round(ms, 3),
                                   "remote": request.remote})
        return response

    async def _handle(self, request: web.Request) -> web.Response:
        request_id = answers.new_request_id()
        route = self.wire.route(request.path)
        if route is None:
            return answers.error(request, self.wire.control_plane, "UnknownOperationException",
                                 f"No operation is served at {request.method} {request.path[:200]}.",
                                 request_id, status=404)
        svc, op = route
        request[OPERATION] = op.name
        if request.method != op.http["method"]:
            return answers.error(request, svc, "UnknownOperationException",
                                 f"{op.name} takes {op.http['method']}, not {request.method}.", request_id, status=405)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return answers.error(request, svc, "InvalidArgumentException",
                                 f"The request body is larger than {self.max_body_bytes} bytes.",
                                 request_id, status=413)
        try:
            principal = self.auth.authenticate(request, body)
        except AuthError as exc:
            return answers.error(request, svc, exc.code, exc.message, request_id, status=exc.status)
        request[ACCOUNT] = principal.account_id
        headers = request.headers
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
            app = request.app
            ctx = OpContext(principal, request_id, app[SETTINGS], app[STORE], app[CLOCK], app[HUB], app)
            result = await handler(ctx, params)
            return answers.success(request, svc.serialize(op, result), request_id)
        except ServiceError as exc:
            return answers.error(request, svc, exc.code, exc.message, request_id, status=exc.status)
        except ConnectionError as exc:  # the store or the bus is unreachable: retriable, at once
            return answers.error(request, svc, "ServiceUnavailableException",
                                 f"Signalite cannot serve this request right now ({exc}); retry.",
                                 request_id, status=503)
        except Exception:  # a bug must still answer in the AWS form, and be logged
            log.exception("unhandled error in %s (request %s)", op.name, request_id)
            return answers.error(request, svc, "InternalFailure",
                                 "The request processing has failed because of an unknown error.",
                                 request_id, status=500)


def operation_table(*modules: ModuleType) -> dict[str, Handler]:
    """Merge the ``OPERATIONS`` maps of operation modules, refusing duplicates."""
    table: dict[str, Handler] = {}
    for module in modules:
        for name, handler in module.OPERATIONS.items():
            if name in table:
                raise RuntimeError(f"operation {name} is defined twice")
            table[name] = handler
    return table
