"""Policy documents as IAM and STS take them: validated when put, sized as AWS counts, returned
URL-encoded as IAM returns them.

:func:`validate_document` is the one place a document is checked when it is put or created
(PutUserPolicy, CreatePolicy, CreateRole's trust policy, STS session policies…), so that a
malformed document is refused then (``MalformedPolicyDocument`` with the reason), never at
request time. It hands the text to the policy language's parser
(:func:`signalite.identity.policy.parse_policy`) when that module is present, and otherwise
checks that the text is a JSON object with a ``Statement``.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any
from urllib.parse import quote

from ..aws.errors import ServiceError

IDENTITY = "identity"
TRUST = "trust"
SESSION = "session"

_WHITESPACE = re.compile(r"\s+")


def malformed(reason: str) -> ServiceError:
    return ServiceError("MalformedPolicyDocument", reason)


def validate_document(text: str, kind: str = IDENTITY, *, managed: bool = False) -> None:
    """Refuse ``text`` with ``MalformedPolicyDocument`` (and the reason) unless it is a policy
    document of ``kind`` (:data:`IDENTITY`, :data:`TRUST` or :data:`SESSION`); ``managed``: a
    managed policy's document (CreatePolicy, CreatePolicyVersion), which IAM holds to more."""
    try:  # the policy language lands beside this module (imported by name until it has)
        policy = importlib.import_module(f"{__package__}.policy")
    except ImportError:
        _check_json(text)
        return
    parse: Any = getattr(policy, "parse_policy", None)
    error: Any = getattr(policy, "MalformedPolicy", None)
    if parse is None or error is None:
        _check_json(text)
        return
    try:
        if managed:
            parse(text, kind=kind, managed=True)
        else:
            parse(text, kind=kind)
    except error as exc:
        raise malformed(str(getattr(exc, "reason", exc))) from None


def _check_json(text: str) -> None:
    try:
        document = json.loads(text)
    except ValueError:
        raise malformed("Syntax errors in policy.") from None
    if not isinstance(document, dict):
        raise malformed("Syntax errors in policy.")
    if "Statement" not in document:
        raise malformed("Missing required field Statement")


def size(text: str) -> int:
    """A document's size as IAM's quotas count it: characters, whitespace not counted."""
    return len(_WHITESPACE.sub("", text))


def encoded(text: str) -> str:
    """A document as IAM returns it: URL-encoded (botocore and the AWS CLI decode it)."""
    return quote(text, safe="-_.~")
