"""The REST edge: wire → auth → decode/validate → operation → encode, for every modeled service
(the three KVS services, the admin API, and IAM and STS).

The restJson1 services are routed by path (:meth:`RestEdge.handle`); IAM and STS, which speak
the query protocol at ``POST /``, by the service of the request's SigV4 credential scope (or,
unsigned, by the model that has its ``Action``) (:meth:`RestEdge.handle_query`). Both then go
through the same steps and the same error path (:meth:`RestEdge._operate`). Every answer carries
``x-amzn-RequestId`` in its service's protocol (JSON, or XML for the query services), and every
failure, including ones no operation raised (bad signature, unknown path, oversized or malformed
body, a bug), becomes an AWS-style error a client can map: never an HTML page, never a bare 500
without a code.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from time import perf_counter
from types import ModuleType
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import hdrs, web
from botocore.model import OperationModel

from ..aws.errors import ServiceError
from ..aws.principal import Principal
from ..aws.query import form_params
from ..aws.sigv4 import AuthError, header_credential
from ..aws.wire import Wire, WireService
from ..context import CLOCK, HUB, SETTINGS, STORE, Handler, OpContext
from ..identity import actions
from ..identity.authorize import AUTHORIZER, request_tags
from ..logs import DirectLog
from ..metrics import EdgeStats
from . import answers
from .auth import Authenticator

log = logging.getLogger("signalite.rest")
SELF_AUTHORIZED = frozenset({"signalite-admin"})
"""Services whose operations authorize for themselves (the admin API: roots only)."""
access_log = DirectLog(logging.getLogger("signalite.access"))
"""One line per request (``DirectLog``: the line costs a fifth of what a LogRecord does)."""


_SERVES = {
    "iam": "IAM users, access keys, inline and managed policies and roles",
    "sts": "GetCallerIdentity, GetSessionToken, GetFederationToken and AssumeRole",
}
"""What Signalite serves of a service, for the answer to an operation it does not serve."""


@lru_cache(maxsize=64)
def _is_json_content_type(value: str) -> bool:
    """Whether a request's Content-Type is one the JSON protocols accept (cached: clients send
    the same one or two values on every request)."""
    if not value:
        return True
    media = value.split(";", 1)[0].strip().lower()
    return media in ("application/json", "application/x-amz-json-1.0", "application/x-amz-json-1.1",
                     "binary/octet-stream", "text/plain", "") or media.endswith("+json")


OPERATION = web.RequestKey("signalite.operation", str)
"""Request key: the operation name the edge routed the request to (for the access log)."""
ACCOUNT = web.RequestKey("signalite.account", str)
"""Request key: the account of the authenticated principal."""
_UNROUTED = "unknown"


class RestEdge:
    def __init__(self, wire: Wire, auth: Authenticator, operations: Mapping[str, Handler],
                 max_body_bytes: int, stats: EdgeStats | None = None,
                 query_operations: Mapping[str, Mapping[str, Handler]] | None = None) -> None:
        self.wire = wire
        self.auth = auth
        self.operations = operations
        """The restJson1 services' operations, by name."""
        self.query_operations = query_operations or {}
        """The query services' operations: signing name (``iam``, ``sts``) → operation name → handler."""
        self.max_body_bytes = max_body_bytes
        self.stats = stats or EdgeStats()
        self._bound: tuple[Any, ...] | None = None

    async def preflight(self, request: web.Request) -> web.Response:
        return answers.preflight(request)

    def _resources(self, app: web.Application) -> tuple[Any, ...]:
        """What every OpContext gets from the app, read once: the resources are set when the
        app starts and never change while it serves (a request never arrives before that)."""
        bound = self._bound
        if bound is None:
            bound = self._bound = (app[SETTINGS], app[STORE], app[CLOCK], app[HUB], app)
        return bound

    async def handle(self, request: web.Request) -> web.Response:
        """One REST request, counted by operation and status and written to the access log."""
        return await self._counted(request, self._handle(request))

    async def handle_query(self, request: web.Request) -> web.Response:
        """One query-protocol request (``POST /``: IAM or STS), counted and logged likewise."""
        return await self._counted(request, self._handle_query(request))

    async def _counted(self, request: web.Request, handling: Awaitable[web.Response]) -> web.Response:
        start = perf_counter()
        response = await handling
        operation = request.get(OPERATION, _UNROUTED)
        self.stats.requests[operation, response.status] += 1
        if access_log.logger.isEnabledFor(logging.INFO):
            request_id = response.headers.get("x-amzn-RequestId", "")
            ms = (perf_counter() - start) * 1000
            status = response.status
            access_log.info(f"{request.method} {operation} {status} {ms:.1f} ms",
                            {"request_id": request_id, "operation": operation, "status": status,
                             "account": request.get(ACCOUNT), "duration_ms": round(ms, 3), "remote": request.remote})
        return response

    def _unrouted(self, request: web.Request, request_id: str) -> web.Response:
        return answers.error(request, self.wire.control_plane, "UnknownOperationException",
                             f"No operation is served at {request.method} {request.path[:200]}.",
                             request_id, status=404)

    async def _read(self, request: web.Request, svc: WireService, request_id: str) -> bytes | web.Response:
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return answers.error(request, svc, svc.validation_code,
                                 f"The request body is larger than {self.max_body_bytes} bytes.",
                                 request_id, status=413)

    async def _handle_query(self, request: web.Request) -> web.Response:
        request_id = answers.new_request_id()
        cred = header_credential(request.headers, request.query_string)
        signed_for = self.wire.query_service(cred.service) if cred is not None else None
        if cred is not None and signed_for is None:  # signed for another service: not a query request
            return self._unrouted(request, request_id)
        fallback = signed_for or self.wire.query["iam"]
        body = await self._read(request, fallback, request_id)
        if isinstance(body, web.Response):
            return body
        try:
            params = form_params(body)
        except ServiceError as exc:
            return answers.error(request, fallback, exc.code, exc.message, request_id, status=exc.status)
        svc = signed_for or self.wire.query_service(None, params.get("Action"))
        if svc is None:  # unsigned, and no IAM or STS action
            return self._unrouted(request, request_id)
        try:
            principal = await self.auth.authenticate(request, body, service=svc.signing_name)
        except AuthError as exc:
            return answers.error(request, svc, exc.code, exc.message, request_id, status=exc.status)
        request[ACCOUNT] = principal.account_id
        try:
            op = svc.operation(params)
        except ServiceError as exc:
            return answers.error(request, svc, exc.code, exc.message, request_id, status=exc.status)
        request[OPERATION] = op.name
        return await self._operate(request, svc, op, principal, request_id, lambda: svc.parse_params(op, params),
                                   self.query_operations.get(svc.signing_name, {}))

    async def _handle(self, request: web.Request) -> web.Response:
        request_id = answers.new_request_id()
        route = self.wire.route(request.path)
        if route is None:
            return self._unrouted(request, request_id)
        svc, op = route
        request[OPERATION] = op.name
        if request.method != op.http["method"]:
            return answers.error(request, svc, "UnknownOperationException",
                                 f"{op.name} takes {op.http['method']}, not {request.method}.", request_id, status=405)
        body = await self._read(request, svc, request_id)
        if isinstance(body, web.Response):
            return body
        try:
            principal = await self.auth.authenticate(request, body, service=svc.signing_name)
        except AuthError as exc:
            return answers.error(request, svc, exc.code, exc.message, request_id, status=exc.status)
        request[ACCOUNT] = principal.account_id
        content_type = request.headers.get(hdrs.CONTENT_TYPE, "")

        def parse() -> dict[str, Any]:
            if not _is_json_content_type(content_type):
                raise ServiceError("InvalidArgumentException",
                                   f"Unsupported Content-Type {content_type!r}; send application/json.")
            return svc.parse(op, body)

        return await self._operate(request, svc, op, principal, request_id, parse, self.operations)

    async def _authorize(self, request: web.Request, svc: WireService, op: OperationModel, principal: Principal,
                         params: dict[str, Any], ctx: OpContext) -> None:
        """The policy step: raises the operation's modeled authorization error unless allowed.
        The admin API answers for itself (roots only)."""
        service = svc.signing_name
        if svc.name in SELF_AUTHORIZED:
            return
        action = f"{service}:{op.name}"
        if action in actions.ALWAYS_ALLOWED or action == "sts:AssumeRole":  # AssumeRole: trust.py decides
            return
        authorizer = ctx.resource(AUTHORIZER)
        # The common case (policies cached, the resource named by ARN) runs without a coroutine.
        grants = authorizer.cached(principal) or await authorizer.grants(principal)
        caller_user_arn = principal.arn if principal.username is not None else None
        now = ctx.clock.now()
        found = actions.target_now(service, op, params, ctx.account, ctx.region, now,
                                   with_tags=grants.uses_resource_tags, caller_user_arn=caller_user_arn) or \
            await actions.target(service, op, params, ctx.account, ctx.region, ctx.store, now,
                                 with_tags=grants.uses_resource_tags, caller_user_arn=caller_user_arn)
        code, status = actions.denial_code(service, op)
        try:
            authorizer.enforce(principal, grants, found.action, found.resource, code=code, source_ip=request.remote,
                               secure=request.secure, resource_tags=found.tags, request_tags=request_tags(params))
        except ServiceError as exc:
            raise ServiceError(exc.code, exc.message, status) from None

    async def _operate(self, request: web.Request, svc: WireService, op: OperationModel, principal: Principal,
                       request_id: str, parse: Callable[[], dict[str, Any]],
                       handlers: Mapping[str, Handler]) -> web.Response:
        """Decode and validate (``parse``), run the operation, encode: the steps and the one error
        path every authenticated request shares."""
        try:
            params = parse()
            handler = handlers.get(op.name)
            if handler is None:
                serves = _SERVES.get(svc.signing_name, "the signaling APIs")
                raise ServiceError(svc.unsupported_code(op), f"Signalite does not support {op.name}; it serves {serves}.")
            ctx = OpContext(principal, request_id, *self._resources(request.app))
            if not principal.is_root or principal.who.temporary:
                await self._authorize(request, svc, op, principal, params, ctx)
            result = await handler(ctx, params)
            if svc.signing_name == "iam" and not op.name.startswith(("Get", "List")):
                ctx.resource(AUTHORIZER).changed()  # at once on this node, and on the others over the bus
            return answers.success(request, svc.serialize(op, result, request_id), request_id,
                                   content_type=svc.content_type)
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
