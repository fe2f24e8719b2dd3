"""Who is asking: the one authentication step of every entry point.

REST operations, the WSS handshake and the admin API all call :meth:`Authenticator.authenticate`
and get a :class:`~signalite.aws.sigv4.Principal` or an :class:`~signalite.aws.sigv4.AuthError`
(the AWS code and status to answer with). Authorisation of what the principal may do is the
operation's (or, with IAM policies, the step that follows this one).
"""

from __future__ import annotations

from typing import Mapping

from aiohttp import web

from ..aws.sigv4 import AuthError, Principal, SigV4Verifier, split_presigned_query

__all__ = ["AuthError", "Authenticator", "Principal"]


class Authenticator:
    def __init__(self, verifier: SigV4Verifier) -> None:
        self.verifier = verifier

    def authenticate(self, request: web.Request, body: bytes = b"") -> Principal:
        """A header-signed request (REST, admin), or one presigned in its query string."""
        raw_path = request.raw_path
        if "?" in raw_path:
            raw_path, query = raw_path.split("?", 1)[0], request.query_string
        else:
            query = ""  # the common case: no query string, and no URL parsing to find that out
        headers = request.headers
        return self.verifier.verify_headers(request.method, raw_path, query, headers, body, get_all=headers.getall)

    def authenticate_presigned(self, request: web.Request) -> tuple[Principal, Mapping[str, str]]:
        """A presigned URL (the WSS connect): the principal and the decoded query parameters.

        The query is split once, for the signature and for the parameters, and not through
        ``request.query``, whose cache would live as long as the socket."""
        url = request.rel_url
        raw_query = url.raw_query_string
        split = split_presigned_query(raw_query)
        principal = self.verifier.verify_presigned("GET", url.raw_path, raw_query, request.headers.get("Host", ""), split)
        return principal, split[0]
