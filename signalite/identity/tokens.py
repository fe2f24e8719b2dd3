"""Session tokens: temporary credentials that carry themselves.

A token is the temporary access key id, its secret and the :class:`~signalite.aws.principal.Caller`
it stands for (expiry and session policies included), sealed with AES-GCM under the server key
(:mod:`signalite.identity.crypto`). Nothing is stored: any node with the server key opens a
token another node minted, so temporary credentials work across a cluster and survive restarts.
The secret is inside the ciphertext because tokens travel in places secrets must not, such as
the query of a presigned WSS URL that proxies may log: whoever reads a token still cannot sign.
A token that was altered, or sealed under another key, does not open.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..aws.principal import Caller
from . import names
from .crypto import TOKENS, ServerKey, Unsealed

PREFIX = "SLT1"
"""Marks (and versions) Signalite's tokens; what follows is the sealed payload."""
_BOUND = "signalite session token v1"


class InvalidToken(Exception):
    """A token that is not one of this server's, or was altered."""


@dataclass(frozen=True)
class Temporary:
    """Temporary credentials: what STS answers with, and what an opened token gives back."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    caller: Caller

    @property
    def expires(self) -> float:
        assert self.caller.expires is not None
        return self.caller.expires


def mint(key: ServerKey, caller: Caller) -> Temporary:
    """New temporary credentials for ``caller`` (whose ``expires`` must be set)."""
    if caller.expires is None:
        raise ValueError("temporary credentials need an expiry")
    key_id, secret = names.access_key_id(names.TEMPORARY_KEY), names.secret_access_key()
    payload = {"k": key_id, "s": secret, "c": _caller_fields(caller)}
    sealed = key.seal(TOKENS, json.dumps(payload, separators=(",", ":")).encode("utf-8"), _BOUND)
    return Temporary(key_id, secret, PREFIX + sealed, caller)


def open_token(key: ServerKey, token: str) -> Temporary:
    """The credentials ``token`` carries, or :class:`InvalidToken` (expiry is the caller's to check)."""
    if not token.startswith(PREFIX):
        raise InvalidToken("not a Signalite session token")
    try:
        payload = json.loads(key.open(TOKENS, token[len(PREFIX):], _BOUND))
        fields = payload["c"]
        fields["session_policy_arns"] = tuple(fields.get("session_policy_arns", ()))
        caller = Caller(**fields)
        return Temporary(str(payload["k"]), str(payload["s"]), token, caller)
    except Unsealed:
        raise InvalidToken("altered, or not sealed by this server") from None
    except (ValueError, KeyError, TypeError):  # cannot happen for a token this code sealed
        raise InvalidToken("unreadable payload") from None


def _caller_fields(caller: Caller) -> dict[str, Any]:
    return {f.name: getattr(caller, f.name) for f in dataclasses.fields(caller)
            if getattr(caller, f.name) != f.default}
