"""Who is asking: the caller a signing key belongs to, and the principal of one request.

A :class:`Caller` is what a key stands for, the same on every request it signs: an account's
root, an IAM user, a role session or a federated user, with what authorization needs to evaluate
its policies (the ARN and id of the IAM identity whose policies apply, the session policies of
temporary credentials). A :class:`Principal` is one request's view of it: the caller plus the
access key, region and service of the request's SigV4 credential scope.
"""

from __future__ import annotations

from dataclasses import dataclass

ROOT = "root"
USER = "user"
ASSUMED_ROLE = "assumed-role"
FEDERATED_USER = "federated-user"
KINDS = (ROOT, USER, ASSUMED_ROLE, FEDERATED_USER)

LONG_TERM = "long-term"
"""An access key that does not expire (a root key, an IAM user's key)."""
SESSION_TOKEN = "session-token"
"""Temporary credentials from GetSessionToken (the caller's own identity, nothing narrower)."""
ASSUME_ROLE = "assume-role"
FEDERATION_TOKEN = "federation-token"
SOURCES = (LONG_TERM, SESSION_TOKEN, ASSUME_ROLE, FEDERATION_TOKEN)


def root_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a signing key belongs to.

    ``kind`` is one of :data:`KINDS`; ``source`` (one of :data:`SOURCES`) says how the credentials
    were obtained. ``arn`` and ``user_id`` are what GetCallerIdentity answers
    (``arn:aws:iam::ACCOUNT:root`` and the account id for a root; ``…:user/path/name`` and
    ``AIDA…`` for a user; ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` and
    ``AROA…:SESSION``; ``arn:aws:sts::ACCOUNT:federated-user/NAME`` and ``ACCOUNT:NAME``).

    ``identity_arn``/``identity_id`` name the IAM identity whose policies apply: the user or
    root itself, the role of a role session, the user (or root) that called GetFederationToken.
    ``session_policy`` and ``session_policy_arns`` are the session policies of temporary
    credentials (None and () when none were passed). AWS's rule for federated users: without any
    session policy a federated session has no permissions at all; a role session without one
    has its role's permissions.
    """

    account_id: str
    kind: str = ROOT
    name: str = "root"
    """The user name, role name or federated user name; ``root`` for a root."""
    arn: str = ""
    user_id: str = ""
    source: str = LONG_TERM
    identity_arn: str = ""
    identity_id: str = ""
    session_name: str | None = None
    """The RoleSessionName of a role session."""
    session_policy: str | None = None
    session_policy_arns: tuple[str, ...] = ()
    expires: float | None = None
    """Epoch seconds at which temporary credentials stop working; None for long-term keys."""

    @classmethod
    def root(cls, account_id: str) -> "Caller":
        arn = root_arn(account_id)
        return cls(account_id, ROOT, "root", arn, account_id, LONG_TERM, arn, account_id)

    @property
    def temporary(self) -> bool:
        return self.source != LONG_TERM


@dataclass(frozen=True, slots=True)
class Principal:
    """One request's caller, as the SigV4 check established it.

    ``user`` is ``root`` for a root and the caller's ARN otherwise (kept for code that predates
    IAM; never ``root`` for anyone else, even an IAM user of that name, but prefer
    :attr:`is_root`); ``caller`` holds everything else (built from ``account_id`` as a root when
    absent).
    """

    access_key_id: str
    account_id: str
    user: str
    region: str
    service: str
    session_token: str | None = None
    caller: Caller | None = None

    @property
    def who(self) -> Caller:
        if self.caller is not None:
            return self.caller
        if self.user == "root":
            return Caller.root(self.account_id)
        arn = f"arn:aws:iam::{self.account_id}:user/{self.user}"
        return Caller(self.account_id, USER, self.user, arn, self.user, LONG_TERM, arn, self.user)

    @property
    def kind(self) -> str:
        return self.who.kind

    @property
    def arn(self) -> str:
        return self.who.arn

    @property
    def user_id(self) -> str:
        return self.who.user_id

    @property
    def source(self) -> str:
        return self.who.source

    @property
    def username(self) -> str | None:
        """``aws:username``: the IAM user's name, for users only (as AWS sets that key)."""
        who = self.who
        return who.name if who.kind == USER else None

    @property
    def is_root(self) -> bool:
        return self.who.kind == ROOT
