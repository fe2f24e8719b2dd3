"""Who is asking: the one authentication step of every entry point.

REST operations, IAM and STS, the WSS handshake and the admin API all call
:meth:`Authenticator.authenticate` (or :meth:`~Authenticator.authenticate_presigned`) and get a
:class:`~signalite.aws.sigv4.Principal` or an :class:`~signalite.aws.sigv4.AuthError` (the AWS
code and status to answer with). The signing key is resolved first, asynchronously, from the
credential the request names (:class:`KeySource`: the root key, IAM and account keys from the
store, temporary keys from their session token); the signature is then verified against it.
Authorisation of what the principal may do is the step that follows this one.
"""

from __future__ import annotations

from typing import Mapping, Protocol

from aiohttp import web

from ..aws.principal import Principal
from ..aws.sigv4 import (
    AuthError,
    Credential,
    SigningKey,
    SigV4Verifier,
    header_credential,
    presigned_credential,
    split_presigned_query,
)

__all__ = ["AuthError", "Authenticator", "KeySource", "Principal"]


class KeySource(Protocol):
    async def resolve(self, cred: Credential, service: str) -> SigningKey:
        """The signing key of ``cred`` for a request to ``service``, or the :class:`AuthError`
        AWS answers (unknown or inactive key, bad or expired session token)."""
        ...


class Authenticator:
    def __init__(self, verifier: SigV4Verifier, keys: KeySource | None = None) -> None:
        self.verifier = verifier
        self.keys = keys

    async def _key(self, cred: Credential | None, service: str) -> SigningKey | None:
        if cred is None or self.keys is None:
            return None  # no credential the verifier would accept: it says why (or asks its lookup)
        return await self.keys.resolve(cred, service)

    async def authenticate(self, request: web.Request, body: bytes = b"", service: str = "kinesisvideo") -> Principal:
        """A header-signed request (REST, admin, IAM, STS), or one presigned in its query string;
        its credential scope must name ``service``."""
        raw_path = request.raw_path
        if "?" in raw_path:
            raw_path, query = raw_path.split("?", 1)[0], request.query_string
        else:
            query = ""  # the common case: no query string, and no URL parsing to find that out
        headers = request.headers
        key = await self._key(header_credential(headers, query), service)
        return self.verifier.verify_headers(request.method, raw_path, query, headers, body, get_all=headers.getall,
                                            key=key, service=service)

    async def authenticate_presigned(self, request: web.Request,
                                     service: str = "kinesisvideo") -> tuple[Principal, Mapping[str, str]]:
        """A presigned URL (the WSS connect): the principal and the decoded query parameters.

        The query is split once, for the signature and for the parameters, and not through
        ``request.query``, whose cache would live as long as the socket."""
        url = request.rel_url
        raw_query = url.raw_query_string
        split = split_presigned_query(raw_query)
        key = await self._key(presigned_credential(split[0]), service)
        principal = self.verifier.verify_presigned("GET", url.raw_path, raw_query, request.headers.get("Host", ""),
                                                   split, key=key, service=service)
        return principal, split[0]
