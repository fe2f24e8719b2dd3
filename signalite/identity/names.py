"""IAM's identifiers: unique ids, access keys, secrets, account ids and ARNs, as AWS forms them.

Unique ids are a four-letter prefix naming the kind (``AIDA`` user, ``AROA`` role, ``ANPA``
managed policy) and 17 characters of base32; access key ids ``AKIA`` (long-term) or ``ASIA``
(temporary) and 16 more; secrets 40 characters. ARNs: ``arn:aws:iam::ACCOUNT:user/path/name``,
``…:role/path/name``, ``…:policy/path/name``, ``…:root``, and for sessions
``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` and ``…:federated-user/NAME``.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

_BASE32 = string.ascii_uppercase + "234567"
_SECRET = string.ascii_letters + string.digits + "+/"

USER_ID = "AIDA"
ROLE_ID = "AROA"
POLICY_ID = "ANPA"
LONG_TERM_KEY = "AKIA"
TEMPORARY_KEY = "ASIA"


def unique_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_BASE32) for _ in range(17))


def access_key_id(prefix: str = LONG_TERM_KEY) -> str:
    return prefix + "".join(secrets.choice(_BASE32) for _ in range(16))


def secret_access_key() -> str:
    return "".join(secrets.choice(_SECRET) for _ in range(40))


def account_id() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def iam_arn(account: str, kind: str, path: str, name: str) -> str:
    """``arn:aws:iam::ACCOUNT:KIND/PATH/NAME`` (``path`` begins and ends with ``/``)."""
    return f"arn:aws:iam::{account}:{kind}{path}{name}"


def assumed_role_arn(account: str, role: str, session: str) -> str:
    return f"arn:aws:sts::{account}:assumed-role/{role}/{session}"


def federated_user_arn(account: str, name: str) -> str:
    return f"arn:aws:sts::{account}:federated-user/{name}"


_IAM_ARN = re.compile(r"arn:aws:iam::(?P<account>\d{12}|aws):(?P<kind>user|role|policy)(?P<path>/(?:[^/]+/)*)(?P<name>[^/]+)")


@dataclass(frozen=True)
class IamArn:
    account: str
    kind: str
    path: str
    name: str


def parse_iam_arn(value: str, kind: str) -> IamArn | None:
    """The parts of an IAM ARN of ``kind`` (``user``, ``role``, ``policy``), or None."""
    m = _IAM_ARN.fullmatch(value)
    if m is None or m["kind"] != kind:
        return None
    return IamArn(m["account"], kind, m["path"], m["name"])
