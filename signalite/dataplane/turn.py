"""TURN REST API credentials ("A REST API For Access To TURN Services", draft-uberti-behave-turn-rest)
and the grouping of configured ICE URIs into the ``IceServer`` entries GetIceServerConfig returns.

coturn's ``use-auth-secret`` mode checks exactly this scheme: the username is
``<expiry unix seconds>:<id>`` and the password is ``base64(HMAC-SHA1(secret, username))``.

About the output model: ``IceServer.Username`` and ``IceServer.Password`` carry the pattern
``[a-zA-Z0-9_.-]+``. A TURN REST username contains ``:`` (coturn's default ``rest-api-separator``,
which every TURN REST deployment uses) and a base64 password contains ``+``, ``/`` and ``=``. No
client validates output shapes (botocore, JS v3 and the C SDK only copy the strings), the real
service's credentials are TURN REST credentials as well, and a TURN server only accepts the exact
strings it can recompute. So Signalite returns the standard TURN REST form and keeps only the *id*
part inside the pattern; it never rewrites the credentials into something coturn would refuse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_SERVERS = 5
"""The C SDK uses at most 5 IceServers (MAX_ICE_CONFIG_COUNT)."""
MAX_URIS_PER_SERVER = 4
"""The C SDK refuses more than 4 URIs in one IceServer (MAX_ICE_CONFIG_URI_COUNT)."""
MAX_FIELD = 256
"""Model and C SDK limit for a URI, a username and a password."""
MIN_TTL, MAX_TTL = 31, 86400
"""The C SDK needs Ttl > 30 s (its refresh grace period); the model allows up to 86400."""
SCHEMES = ("turn", "turns", "stun", "stuns")


def turn_rest_credentials(secret: str, ident: str, expiry: int) -> tuple[str, str]:
    """``(username, password)`` valid until the unix time ``expiry`` on a TURN server that shares
    ``secret`` (coturn ``--use-auth-secret --static-auth-secret=<secret>``)."""
    username = f"{expiry}:{ident}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def check_uri(uri: str) -> str:
    """Validate one configured ICE URI (RFC 7064/7065 form); returns it stripped."""
    uri = uri.strip()
    scheme = uri.split(":", 1)[0].lower()
    if scheme not in SCHEMES or ":" not in uri:
        raise ValueError(f"ICE URI {uri!r} must start with one of {', '.join(s + ':' for s in SCHEMES)}")
    if len(uri) > MAX_FIELD:
        raise ValueError(f"ICE URI {uri!r} is longer than {MAX_FIELD} characters")
    if not uri_host(uri):
        raise ValueError(f"ICE URI {uri!r} has no host")
    return uri


def uri_host(uri: str) -> str:
    """The host part of ``turn:host:port?transport=udp`` (brackets kept for IPv6)."""
    rest = uri.split(":", 1)[1].split("?", 1)[0]
    if rest.startswith("["):
        return rest[: rest.find("]") + 1] if "]" in rest else ""
    return rest.rsplit(":", 1)[0] if rest.count(":") == 1 else rest


def uri_address(uri: str, default_port: int = 3478) -> tuple[str, int, str]:
    """``(host, port, transport)`` of a ``turn:``/``stun:`` URI, for clients such as aioice."""
    parts = urlsplit(uri.replace(":", "://", 1))
    transport = "udp"
    if parts.query:
        for item in parts.query.split("&"):
            key, _, value = item.partition("=")
            if key == "transport":
                transport = value.lower()
    return parts.hostname or "", parts.port or default_port, transport


@dataclass(frozen=True)
class IceServerGroup:
    """One ``IceServer`` entry: up to 4 URIs of one server and, for TURN, the shared secret."""

    uris: tuple[str, ...]
    secret: str | None = None

    def entry(self, ident: str, ttl: int, now: float) -> dict[str, object]:
        out: dict[str, object] = {"Uris": list(self.uris), "Ttl": ttl}
        if self.secret is not None:
            username, password = turn_rest_credentials(self.secret, ident, int(now) + ttl)
            out["Username"] = username
            out["Password"] = password
        return out


def group_uris(uris: list[str] | tuple[str, ...], secret: str | None) -> list[IceServerGroup]:
    """Group URIs by host, in order of first appearance, 4 per entry (as AWS does: one entry per
    TURN host with its udp/tcp/tls variants)."""
    by_host: dict[str, list[str]] = {}
    for given in uris:
        uri = check_uri(given)
        by_host.setdefault(uri_host(uri).lower(), []).append(uri)
    groups: list[IceServerGroup] = []
    for host_uris in by_host.values():
        for i in range(0, len(host_uris), MAX_URIS_PER_SERVER):
            groups.append(IceServerGroup(tuple(host_uris[i:i + MAX_URIS_PER_SERVER]), secret))
    return groups
