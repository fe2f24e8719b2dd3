"""AWS Signature Version 4 verification, for header-signed requests and presigned URLs.

Pure code: it gets the request's parts and a key lookup, and returns the principal or raises
:class:`AuthError`. The canonical request is rebuilt from what the request itself declares
(its ``SignedHeaders`` list, its query parameters sorted here, not in the order they came),
because boto3, the AWS CLI, JS SDK v3 and the KVS C SDK each sign a different header set and
botocore puts presign parameters in a different order from the KVS JS SDK.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Callable, Iterable, Mapping, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, unquote_plus

from ..clock import Clock, SystemClock
from .principal import Caller, Principal

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AUTH_HEADER = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$"
)
MAX_PRESIGN_EXPIRES = 604800


class AuthError(Exception):
    """A request that must be refused; ``code`` is the AWS error code clients know."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class SigningKey:
    """What a key lookup returns: the secret and who it belongs to (``caller``; a root of
    ``account_id`` when absent)."""

    secret: str = dataclasses.field(repr=False)
    account_id: str
    user: str = "root"
    caller: Caller | None = None


KeyLookup = Callable[[str], "SigningKey | None"]


class Credential(NamedTuple):
    """The SigV4 credential a request names, read before anything is verified: enough to find
    its key (and the query service it is for), nothing trusted yet."""

    access_key_id: str
    region: str
    service: str
    session_token: str | None


def header_credential(headers: Mapping[str, str], query: str = "") -> Credential | None:
    """The credential of a header-signed request (or of one presigned in ``query``), or None when
    it names none the verifier would accept the form of (the verifier then says why)."""
    auth = headers.get("Authorization")
    if not auth:
        if "X-Amz-Credential" in query:
            return presigned_credential(split_presigned_query(query)[0])
        return None
    scope = _head_scope(auth.strip().rpartition("Signature=")[0])
    if scope is None:
        return None
    return Credential(scope[0], scope[1], scope[2], headers.get("X-Amz-Security-Token"))


@lru_cache(maxsize=256)
def _head_scope(head: str) -> tuple[str, str, str] | None:
    """(access key id, region, service) of the part of an Authorization header before
    ``Signature=``, or None: the same on every request a client signs in a day, so memoised."""
    parsed = _auth_head(head)
    if parsed is None:
        return None
    try:
        cred = _header_credential(parsed[0])
    except AuthError:
        return None
    return cred.access_key_id, cred.region, cred.service


def presigned_credential(params: Mapping[str, str]) -> Credential | None:
    """The credential of a presigned URL's decoded parameters, or None."""
    value = params.get("X-Amz-Credential")
    if not value:
        return None
    try:
        cred = _parse_credential(value)
    except AuthError:
        return None
    return Credential(cred.access_key_id, cred.region, cred.service, params.get("X-Amz-Security-Token"))


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    k = _hmac(("AWS4" + secret).encode("utf-8"), date)
    k = _hmac(k, region)
    k = _hmac(k, service)
    return _hmac(k, "aws4_request")


def uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((uri_encode(k), uri_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
"""A query component made only of these is the same decoded, encoded and canonical."""


def _decode_encode(raw: str) -> tuple[str, str | None]:
    """One raw name or value of a query string: decoded as ``parse_qsl`` decodes it, and
    ``uri_encode``-d for the canonical query (None if it cannot be encoded: a lone surrogate)."""
    if _UNRESERVED.fullmatch(raw):
        return raw, raw
    decoded = unquote(raw.replace("+", " "), errors="replace")
    try:
        return decoded, uri_encode(decoded)
    except UnicodeEncodeError:
        return decoded, None


_query_component = lru_cache(maxsize=4096)(_decode_encode)
""":func:`_decode_encode`, memoised: the names and the ARN, credential, date, algorithm, expiry and
signed-headers values of presigned connects repeat from one connect to the next."""

_PER_CONNECT = frozenset(("X-Amz-ClientId", "X-Amz-Signature"))
"""Parameters whose value is new on (almost) every connect: not worth a cache entry each."""


def split_presigned_query(query: str) -> tuple[dict[str, str], str | None]:
    """A raw query string in one pass: its parameters decoded (``dict(parse_qsl(query,
    keep_blank_values=True))``: the last of a repeated name wins) and its SigV4 canonical query
    without ``X-Amz-Signature`` (``canonical_query`` of the same pairs: every pair, sorted by
    encoded name then value), byte for byte what the two passes give. The canonical query is
    None when a component cannot be encoded; :meth:`SigV4Verifier.verify_presigned` then builds
    it the old way, which raises as it always did."""
    params: dict[str, str] = {}
    signed: list[tuple[str, str]] = []
    encodable = True
    component = _query_component
    for field in query.split("&") if query else ():
        if not field:
            continue
        raw_name, _, raw_value = field.partition("=")
        name, enc_name = component(raw_name)
        value, enc_value = (_decode_encode if name in _PER_CONNECT else component)(raw_value)
        params[name] = value
        if name == "X-Amz-Signature":  # not signed
            continue
        if enc_name is None or enc_value is None:
            encodable = False
        else:
            signed.append((enc_name, enc_value))
    if not encodable:
        return params, None
    signed.sort()
    return params, "&".join([f"{k}={v}" for k, v in signed])


@lru_cache(maxsize=1024)
def canonical_uri(raw_path: str) -> str:
    """Non-S3 services sign the already-encoded path encoded once more (botocore and JS v3 agree)."""
    return quote(raw_path or "/", safe="/~")


_AMZ_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")


@lru_cache(maxsize=256)
def _parse_amz_date(value: str) -> datetime:
    """``20261126T083942Z`` as an aware datetime. Cached: every client signs with the current
    second, so a busy server sees the same few values over and over (strptime is slow)."""
    m = _AMZ_DATE.match(value)
    try:
        if m is None:
            raise ValueError(value)
        year, month, day, hour, minute, second = map(int, m.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise AuthError(
            "IncompleteSignatureException",
            f"Date must be in ISO-8601 'basic format'. Got '{value}'. See http://en.wikipedia.org/wiki/ISO_8601",
            400,
        ) from None


def _fmt(ts: datetime) -> str:
    return ts.strftime("%Y%m%dT%H%M%SZ")


def _trim(value: str) -> str:
    """A header value as SigV4 canonicalizes it: trimmed, inner whitespace runs made one space."""
    # str.split() splits on exactly the characters ``\s`` matches (Py_UNICODE_ISSPACE) and drops
    # the ends: one pass in C, where the isprintable() check it replaces took ~5 µs on a session
    # token's 1.4 KB X-Amz-Security-Token.
    return " ".join(value.split())


def _values(headers: Mapping[str, str], name: str, get_all: Callable[[str], list[str]] | None) -> list[str]:
    """Every value of a header (repeated headers are joined with commas when signed), or []."""
    if get_all is not None:
        try:
            return get_all(name)
        except KeyError:  # aiohttp's getall() raises for a header that is absent
            return []
    value = headers.get(name)
    return [] if value is None else [value]


@dataclass(frozen=True)
class _Credential:
    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def _parse_credential(value: str) -> _Credential:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise AuthError(
            "IncompleteSignatureException",
            f"Credential should be scoped to a valid region, not '{value}'. "
            "Credential should be scoped with a valid terminator: 'aws4_request'.",
            400,
        )
    return _Credential(*parts[:4])


_AUTH_HEAD = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*$"
)
_HEX = re.compile(r"[0-9a-fA-F]+")


@lru_cache(maxsize=256)
def _auth_head(head: str) -> tuple[str, str] | None:
    """Credential and SignedHeaders of the part of an Authorization header before ``Signature=``:
    that part is the same on every request a client signs in a day, so its parse is memoised."""
    m = _AUTH_HEAD.match(head)
    return None if m is None else (m["cred"], m["signed"])


def _split_authorization(value: str) -> tuple[str, str, str] | None:
    """``_AUTH_HEADER.match(value.strip()).group("cred", "signed", "sig")``, or None where that
    does not match, without running the whole-header regex per request: the signature (hex only,
    so it contains no ``Signature=``) follows the last ``Signature=``, and what precedes it must
    match the rest of the same pattern."""
    head, sep, sig = value.strip().rpartition("Signature=")
    if not sep or not _HEX.fullmatch(sig):
        return None
    parsed = _auth_head(head)
    return None if parsed is None else (parsed[0], parsed[1], sig)


_header_credential = lru_cache(maxsize=256)(_parse_credential)
"""``_parse_credential`` for the Authorization header: a client signs with the same credential
scope (key id, day, region, service) on every request, so its parse is memoised. What is cached is
a pure parse of the string; nothing that depends on the signature or the key is."""


@lru_cache(maxsize=256)
def _signed_header_names(value: str) -> tuple[tuple[str, ...], str]:
    """``SignedHeaders`` as the lower-case names to canonicalize, and as the canonical list."""
    lowered = value.lower()
    return tuple(lowered.split(";")), lowered


_SINGLE_HEADERS = (
    ("Authorization", "IncompleteSignatureException", 400),
    ("X-Amz-Date", "IncompleteSignatureException", 400),
    ("X-Amz-Security-Token", "UnrecognizedClientException", 403),
    ("Host", "IncompleteSignatureException", 400),
)
"""Headers SigV4 reads one value of, and what a request that repeats one is refused with. AWS joins
a repeated header's values with a comma before it reads them, so a second Authorization header makes
the first unparseable (IncompleteSignatureException, 400, as observed), two dates are not a date
(the same), and two session tokens are not a token AWS minted (UnrecognizedClientException, 403).
Reading only the first value instead would let a signed request carry an unchecked second one."""

_SINGLE_PARAMS = frozenset(("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                            "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"))
"""Presigned-URL parameters that must appear once (the query split keeps only the last of a name)."""


def refuse_repeated(headers: Mapping[str, str], get_all: Callable[[str], list[str]] | None, query: str) -> None:
    """Raise :class:`AuthError` if a request repeats a header of :data:`_SINGLE_HEADERS` (only
    a multi-valued ``headers`` can: ``get_all`` is its ``getall``) or a SigV4 parameter of its
    query string (a name percent-encoded differently is the same name once decoded)."""
    if get_all is not None:
        for name, code, status in _SINGLE_HEADERS:
            if name in headers and len(get_all(name)) > 1:
                raise AuthError(code, f"The request must not repeat the '{name}' header.", status)
    if "X-Amz-" not in query and "%" not in query:
        return
    seen: set[str] = set()
    for field in query.split("&"):
        name = field.partition("=")[0]
        if "%" in name or "+" in name:
            name = unquote_plus(name, errors="replace")
        if name in _SINGLE_PARAMS:
            if name in seen:
                raise AuthError("IncompleteSignatureException",
                                f"AWS query-string parameters must not repeat '{name}'.", 400)
            seen.add(name)


class SigV4Verifier:
    """Verifies requests against keys the caller resolved, or else from ``lookup``.

    Signing keys are cached per (secret, date, region, service): deriving one costs four HMACs,
    and a busy server sees the same few scopes all day.
    """

    def __init__(self, lookup: KeyLookup | None = None, *, service: str = "kinesisvideo", skew_seconds: int = 300,
                 clock: Clock | None = None) -> None:
        self._lookup = lookup
        self._service = service
        self._skew = timedelta(seconds=skew_seconds)
        now = (clock or SystemClock()).now
        self._clock: Callable[[], datetime] = lambda: datetime.fromtimestamp(now(), UTC)
        self._key_cache: dict[tuple[str, str, str, str], bytes] = {}

    # -- public -------------------------------------------------------------------------------
    def verify_headers(self, method: str, raw_path: str, query: str, headers: Mapping[str, str],
                       body: bytes, get_all: Callable[[str], list[str]] | None = None, *,
                       key: SigningKey | None = None, service: str | None = None) -> Principal:
        """Verify a header-signed request. ``headers`` is case-insensitive (aiohttp's CIMultiDict).

        ``key`` is the signing key of the request's access key when the caller already resolved
        it (the edge does, asynchronously, from :func:`header_credential`); without it the
        verifier's own lookup is asked. ``service`` is the service the credential scope must
        name (default: the verifier's)."""
        refuse_repeated(headers, get_all, query)
        auth = headers.get("Authorization")
        if not auth:
            if "X-Amz-Signature" in query or "X-Amz-Credential" in query:
                return self.verify_presigned(method, raw_path, query, headers.get("Host", ""), key=key,
                                             service=service)
            raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
        parts = _split_authorization(auth)
        if parts is None:
            raise AuthError(
                "IncompleteSignatureException",
                f"Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters, "
                f"and the algorithm {ALGORITHM}. Authorization={auth[:64]}",
                400,
            )
        cred_text, signed_text, signature = parts
        cred = _header_credential(cred_text)
        signed, signed_list = _signed_header_names(signed_text)
        if "host" not in signed:
            raise AuthError("InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization.")
        amz_date = headers.get("X-Amz-Date")
        if not amz_date:
            raise AuthError("IncompleteSignatureException",
                            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.", 400)
        when = _parse_amz_date(amz_date)
        self._check_clock(when, amz_date)
        key = self._key_for(cred, key, service)
        # The canonical request as one list of pieces joined once (no per-header f-strings).
        creq_parts = [method.upper(), "\n", canonical_uri(raw_path), "\n",
                      canonical_query(parse_qsl(query, keep_blank_values=True)) if query else "", "\n"]
        add = creq_parts.append
        for name in signed:
            values = _values(headers, name, get_all)
            if not values:
                raise AuthError("InvalidSignatureException",
                                f"The request signature we calculated does not match the signature you provided. "
                                f"Signed header '{name}' is missing from the request.")
            add(name)
            add(":")
            add(_trim(values[0]) if len(values) == 1 else ",".join(map(_trim, values)))
            add("\n")
        payload_hash = hashlib.sha256(body).hexdigest()
        declared = headers.get("X-Amz-Content-Sha256")
        if declared and declared != "UNSIGNED-PAYLOAD" and declared.lower() != payload_hash:
            raise AuthError("InvalidSignatureException",
                            "The provided 'x-amz-content-sha256' header does not match what was computed.", 400)
        creq_parts += ("\n", signed_list, "\n", payload_hash)
        self._check_signature(cred, key, amz_date, "".join(creq_parts), signature)
        return Principal(cred.access_key_id, key.account_id, key.user, cred.region, cred.service,
                         headers.get("X-Amz-Security-Token"), key.caller)

    def verify_presigned(self, method: str, raw_path: str, query: str, host: str,
                         split: tuple[dict[str, str], str | None] | None = None, *,
                         key: SigningKey | None = None, service: str | None = None) -> Principal:
        """Verify a query-string presigned URL (the KVS WSS connect).

        ``split`` is ``split_presigned_query(query)`` if the caller already has it (the hub needs
        the parameters too); otherwise it is computed here. ``key`` and ``service``: as for
        :meth:`verify_headers`.
        """
        refuse_repeated({}, None, query)
        params, canonical = split if split is not None else split_presigned_query(query)
        for required in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"):
            if not params.get(required):
                if required == "X-Amz-Signature" and "X-Amz-Credential" not in params:
                    raise AuthError("MissingAuthenticationTokenException", "Missing Authentication Token", 403)
                raise AuthError("IncompleteSignatureException",
                                f"AWS query-string parameters must include '{required}'.", 400)
        if params["X-Amz-Algorithm"] != ALGORITHM:
            raise AuthError("IncompleteSignatureException", f"Unsupported AWS 'algorithm': '{params['X-Amz-Algorithm']}'", 400)
        cred = _parse_credential(params["X-Amz-Credential"])
        amz_date = params["X-Amz-Date"]
        self._check_clock(_parse_amz_date(amz_date), amz_date, params.get("X-Amz-Expires") or None)
        signed = params["X-Amz-SignedHeaders"].lower().split(";")
        if signed != ["host"]:
            raise AuthError("InvalidSignatureException",
                            "Only 'host' may be signed in a presigned WebSocket URL.")
        key = self._key_for(cred, key, service)
        if canonical is None:  # a component quote() cannot encode: fail here, as the two passes did
            canonical = canonical_query((k, v) for k, v in parse_qsl(query, keep_blank_values=True)
                                        if k != "X-Amz-Signature")
        creq = "\n".join([
            method.upper(),
            canonical_uri(raw_path),
            canonical,
            f"host:{host.strip()}\n",
            "host",
            EMPTY_SHA256,
        ])
        self._check_signature(cred, key, amz_date, creq, params["X-Amz-Signature"])
        return Principal(cred.access_key_id, key.account_id, key.user, cred.region, cred.service,
                         params.get("X-Amz-Security-Token"), key.caller)

    # -- internals ------------------------------------------------------------------------------
    def _key_for(self, cred: _Credential, given: SigningKey | None, service: str | None) -> SigningKey:
        key = given if given is not None else self._lookup(cred.access_key_id) if self._lookup else None
        if key is None:
            raise AuthError("UnrecognizedClientException", "The security token included in the request is invalid.")
        expected = service or self._service
        if cred.service != expected:
            raise AuthError("InvalidSignatureException",
                            f"Credential should be scoped to correct service: '{expected}'. ")
        return key

    def _check_clock(self, when: datetime, amz_date: str, expires_raw: str | None = None) -> None:
        """Refuse a signature dated ``when`` (``amz_date`` as sent) that is not current.

        Any signature dated more than the skew ahead of this server's clock is not yet current.
        One without ``X-Amz-Expires`` (``expires_raw`` None: every header-signed request, and a
        presigned URL that leaves it out) has expired once it is more than the skew old; a
        presigned one with it, once it is older than that many seconds, which must be 1 to 604800
        (read only for a date that is not too far ahead: that refusal comes first). One clock
        reading serves all the checks; with a skew of zero or more a date cannot be both too far
        ahead and too old, so the order of those two never decides a message.
        """
        now = self._clock()
        skew = self._skew
        if when - now > skew:
            raise AuthError("InvalidSignatureException",
                            f"Signature not yet current: {amz_date} is still later than {_fmt(now + skew)} "
                            f"({_fmt(now)} + {int(skew.total_seconds() // 60)} min.)")
        if expires_raw is None:
            if now - when > skew:
                raise AuthError("InvalidSignatureException",
                                f"Signature expired: {amz_date} is now earlier than {_fmt(now - skew)} "
                                f"({_fmt(now)} - {int(skew.total_seconds() // 60)} min.)")
            return
        try:
            seconds = int(expires_raw) if expires_raw.isdigit() else 0
        except ValueError:  # digits int() does not read, such as superscripts: refused, not a crash
            seconds = 0
        if not 1 <= seconds <= MAX_PRESIGN_EXPIRES:
            raise AuthError("AuthorizationQueryParametersError",
                            "X-Amz-Expires must be a number between 1 and 604800 seconds.", 400)
        expires = timedelta(seconds=seconds)
        if now > when + expires:
            raise AuthError("InvalidSignatureException",
                            f"Signature expired: {amz_date} is now earlier than {_fmt(now - expires)} "
                            f"({_fmt(now)} - {expires_raw} sec.)")

    def _check_signature(self, cred: _Credential, key: SigningKey, amz_date: str, creq: str, given: str) -> None:
        if not amz_date.startswith(cred.date):
            raise AuthError("InvalidSignatureException",
                            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                            f"'{cred.date}' != '{amz_date[:8]}', from '{amz_date}'.")
        cache_key = (key.secret, cred.date, cred.region, cred.service)
        kbytes = self._key_cache.get(cache_key)
        if kbytes is None:
            if len(self._key_cache) > 1024:
                self._key_cache.clear()
            kbytes = self._key_cache[cache_key] = signing_key(key.secret, cred.date, cred.region, cred.service)
        sts = "\n".join([ALGORITHM, amz_date, cred.scope, hashlib.sha256(creq.encode("utf-8")).hexdigest()])
        expected = hmac.digest(kbytes, sts.encode("utf-8"), "sha256").hex()  # one-shot C path
        if not hmac.compare_digest(expected, given.lower()):
            raise AuthError(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            )
