"""The policy document grammar: what IAM accepts from PutUserPolicy, CreatePolicy, CreateRole's
AssumeRolePolicyDocument and STS session policies, and the reason it gives when it refuses.

IAM checks a document in passes, and the first failing pass names the error, so the passes here
run in the same order: JSON and element shapes ("Syntax errors in policy."), principals where
none may be, the legacy parser's stricter reading (exact-case ``Effect``, dates, ARN shapes:
"The policy failed legacy parsing"), statement ids, the elements each statement must have, and
finally the format of resources and actions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from signalite.identity.policy_conditions import Condition, parse_operator

Kind = Literal["identity", "trust", "session"]

SYNTAX = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing"
NEEDS_2012 = "Policy document must be version 2012-10-17 or greater."
NO_PRINCIPAL_HERE = "Policy document should not specify a principal."
MISSING_EFFECT = "Missing required field Effect"
MISSING_PRINCIPAL = "Missing required field Principal"
MISSING_ACTIONS = "Policy statement must contain actions."
MISSING_RESOURCES = "Policy statement must contain resources."
TRUST_MISSING_ACTION = "Missing required field Action"
TRUST_ACTIONS = "AssumeRole policy may only specify STS AssumeRole actions."
DUPLICATE_SID = "Statement IDs (SID) in a single policy must be unique."
SID_FORMAT = ("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular "
              "expression [0-9A-Za-z]*")
NO_VENDOR = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
ONE_COLON = "Actions/Condition can contain only one colon."
VENDOR_REGEX = "Resource vendor must be fully qualified and cannot contain regexes."

VERSIONS = ("2012-10-17", "2008-10-17")
VARIABLES_VERSION = "2012-10-17"

_TOP_LEVEL = frozenset({"Version", "Id", "Statement"})
_STATEMENT = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal",
                        "NotPrincipal", "Condition"})
_PRINCIPAL_TYPES = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})
_PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f",
                         "aws-eusc"})
_IAM_PATHS = ("user/", "federated-user/", "role/", "group/", "instance-profile/", "mfa/", "server-certificate/",
              "policy/", "sms-mfa/", "saml-provider/", "oidc-provider/", "report/", "access-report/")
_IAM_PATH_MESSAGE = ('IAM resource path must either be "*" or start with ' + ", ".join(_IAM_PATHS) + ".")
_STS_ASSUME_ACTIONS = ("assumerole", "assumerolewithsaml", "assumerolewithwebidentity", "tagsession",
                       "setsourceidentity", "setcontext")
_VENDOR = re.compile(r"[A-Za-z0-9_.-]+")
_SID = re.compile(r"[0-9A-Za-z]*")
_ACCOUNT = re.compile(r"\d{12}")
_PRINCIPAL_ARN = re.compile(
    r"arn:(?P<partition>[a-z-]+):(?:iam::(?P<iam_account>\d{12}):(?P<iam>root|user/[^*?]+|role/[^*?]+)"
    r"|sts::(?P<sts_account>\d{12}):(?P<sts>assumed-role/[^/*?]+/[^*?]+|federated-user/[^*?]+))")


class MalformedPolicy(ValueError):
    """IAM's ``MalformedPolicyDocument``; ``reason`` is the message AWS gives."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Number(str):
    """A JSON number, kept as the text it was written as (IAM compares condition values as
    text, and ``1.0`` is not ``1`` to ``StringEquals``)."""

    __slots__ = ()


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _number(text: str) -> _Number:
    """A JSON number as written; absurdly long or non-finite ones are a syntax error (they
    could not be written back as JSON)."""
    if len(text) > 64 or not math.isfinite(float(text)):
        raise ValueError(f"number out of range: {text[:20]}")
    return _Number(text)


@dataclass(frozen=True, slots=True)
class RawStatement:
    """One statement, checked and normalised (strings and lists of strings become tuples)."""

    index: int
    sid: str | None
    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...] | None
    not_resource: bool
    principals: tuple[tuple[str, tuple[str, ...]], ...] | None
    not_principal: bool
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Document:
    version: str | None
    statements: tuple[RawStatement, ...]
    canonical: str

    @property
    def variables(self) -> bool:
        """Whether policy variables are substituted (only from Version 2012-10-17 on)."""
        return self.version == VARIABLES_VERSION


def _plain(value: Any) -> Any:
    """The document back in plain JSON types (numbers as numbers) for the canonical text."""
    if isinstance(value, _Number):
        return json.loads(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _is_text(value: Any) -> bool:
    return type(value) is str


def _strings(value: Any) -> tuple[str, ...]:
    """A string-or-list-of-strings element; anything else is a syntax error."""
    if _is_text(value):
        return (value,)
    if isinstance(value, list) and all(_is_text(v) for v in value):
        return tuple(value)
    raise MalformedPolicy(SYNTAX)


def _condition_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # text or _Number
        return str(value)
    raise MalformedPolicy(SYNTAX)


def _condition_values(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(_condition_value(v) for v in value)
    return (_condition_value(value),)


def _check_principal_shape(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if _is_text(value):
        if value != "*":
            raise MalformedPolicy(SYNTAX)
        return (("AWS", ("*",)),)
    if not isinstance(value, dict) or not value:
        raise MalformedPolicy(MISSING_PRINCIPAL if isinstance(value, dict) else SYNTAX)
    out: list[tuple[str, tuple[str, ...]]] = []
    for kind, names in value.items():
        if kind not in _PRINCIPAL_TYPES:
            raise MalformedPolicy(f'Invalid principal in policy: "{kind}"')
        out.append((kind, _strings(names)))
    return tuple(out)


@dataclass
class _Draft:
    """A statement between passes."""

    index: int
    body: dict[str, Any]
    sid: str | None = None
    effect: str = ""
    actions: tuple[str, ...] = ()
    not_action: bool = False
    resources: tuple[str, ...] | None = None
    not_resource: bool = False
    principals: tuple[tuple[str, tuple[str, ...]], ...] | None = None
    not_principal: bool = False
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()


def _syntax(index: int, body: Any, kind: Kind) -> _Draft:
    if not isinstance(body, dict):
        raise MalformedPolicy(SYNTAX)
    if any(key not in _STATEMENT for key in body):
        raise MalformedPolicy(SYNTAX)
    draft = _Draft(index, body)
    if "Sid" in body:
        if not _is_text(body["Sid"]):
            raise MalformedPolicy(SYNTAX)
        draft.sid = body["Sid"]
    if "Effect" not in body:
        raise MalformedPolicy(MISSING_EFFECT)
    effect = body["Effect"]
    if not _is_text(effect) or effect.lower() not in ("allow", "deny"):
        raise MalformedPolicy(SYNTAX)
    draft.effect = effect
    if "Action" in body and "NotAction" in body:
        raise MalformedPolicy(SYNTAX)
    if "Resource" in body and "NotResource" in body:
        raise MalformedPolicy(SYNTAX)
    if "Principal" in body and "NotPrincipal" in body:
        raise MalformedPolicy(SYNTAX)
    for name in ("Action", "NotAction"):
        if name in body:
            draft.actions = _strings(body[name])
            draft.not_action = name == "NotAction"
    for name in ("Resource", "NotResource"):
        if name in body:
            draft.resources = _strings(body[name])
            draft.not_resource = name == "NotResource"
    for name in ("Principal", "NotPrincipal"):
        if name in body:
            # outside trust policies any principal is refused as such, whatever its shape
            draft.principals = _check_principal_shape(body[name]) if kind == "trust" else ()
            draft.not_principal = name == "NotPrincipal"
    if "Condition" in body:
        draft.conditions = _condition_syntax(body["Condition"])
    return draft


def _condition_syntax(block: Any) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    if not isinstance(block, dict):
        raise MalformedPolicy(SYNTAX)
    entries: list[tuple[str, str, tuple[str, ...]]] = []
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            raise MalformedPolicy(SYNTAX)
        if not keys:
            continue  # an empty operator block constrains nothing (IAM accepts it, even unknown)
        if parse_operator(operator) is None:
            raise MalformedPolicy(SYNTAX)
        for key, values in keys.items():
            if not key:
                raise MalformedPolicy(SYNTAX)
            entries.append((operator, key, _condition_values(values)))
    return tuple(entries)


def _legacy(draft: _Draft, variables: bool) -> tuple[Condition, ...]:
    """The legacy parser's reading: exact-case Effect, resource ARNs with a known partition
    but too few fields, variables before the resource part, and condition values of the typed
    operators. Returns the compiled conditions."""
    if draft.effect not in ("Allow", "Deny"):
        raise MalformedPolicy(LEGACY)
    for resource in draft.resources or ():
        parts = resource.split(":")
        if parts[0] == "arn" and len(parts) >= 4 and _partition_ok(parts[1]) and (len(parts) == 5 or not parts[2]):
            raise MalformedPolicy(LEGACY)
        # a variable may stand only in the resource part, after the fifth colon
        if variables and any("${" in segment for segment in resource.split(":", 5)[:5]):
            raise MalformedPolicy(LEGACY)
    compiled: list[Condition] = []
    for operator_name, key, values in draft.conditions:
        operator = parse_operator(operator_name)
        assert operator is not None  # checked by the syntax pass
        try:
            compiled.append(Condition(operator, key, values, variables=variables))
        except ValueError:
            raise MalformedPolicy(LEGACY) from None
    return tuple(compiled)


def _partition_ok(partition: str) -> bool:
    return partition in _PARTITIONS or "*" in partition or "?" in partition


def _check_resource(resource: str) -> None:
    if resource == "*":
        return
    if ":" not in resource:
        raise MalformedPolicy(f'Resource {resource} must be in ARN format or "*".')
    parts = resource.split(":")
    if not _partition_ok(parts[1]):
        shown = ":".join(["arn", *parts[1:], *(["*"] * (6 - len(parts)))])
        raise MalformedPolicy(f'Partition "{parts[1]}" is not valid for resource "{shown}".')
    if parts[0] != "arn":
        raise MalformedPolicy(f'Resource {resource} must be in ARN format or "*".')
    if len(parts) == 2 or "*" in parts[2] or "?" in parts[2]:
        raise MalformedPolicy(VENDOR_REGEX)
    service = parts[2]
    region = parts[3] if len(parts) > 3 else ""
    if service == "iam":
        if region:
            raise MalformedPolicy(f"IAM resource {resource} cannot contain region information.")
        if len(parts) >= 6:
            path = ":".join(parts[5:])
            if not _iam_path_ok(path):
                raise MalformedPolicy(_IAM_PATH_MESSAGE)
    elif service == "s3" and region and region != "*":
        raise MalformedPolicy(f"Resource {resource} can not contain region information.")


def _iam_path_ok(path: str) -> bool:
    if path in ("*", "root") or path.startswith(_IAM_PATHS):
        return True
    wild = min((i for i in (path.find("*"), path.find("?")) if i >= 0), default=-1)
    if wild < 0:
        return False
    head = path[:wild]  # "us*" could still name users
    return any(prefix.startswith(head) or head.startswith(prefix) for prefix in _IAM_PATHS)


def _check_action(action: str) -> None:
    if action == "*":
        return
    if ":" not in action:
        raise MalformedPolicy(NO_VENDOR)
    vendor, _, rest = action.partition(":")
    if ":" in rest:
        raise MalformedPolicy(ONE_COLON)
    if not _VENDOR.fullmatch(vendor):
        raise MalformedPolicy(f"Vendor {vendor} is not valid")


def _trust_action_ok(action: str) -> bool:
    if action == "*":
        return True
    vendor, _, name = action.partition(":")
    if vendor.lower() != "sts" or not name:
        return False
    if "*" in name or "?" in name:
        pattern = re.compile(re.escape(name.lower()).replace(r"\*", ".*").replace(r"\?", "."))
        return any(pattern.fullmatch(candidate) for candidate in _STS_ASSUME_ACTIONS)
    return name.lower() in _STS_ASSUME_ACTIONS


def _check_trust_principals(principals: Iterable[tuple[str, Sequence[str]]]) -> None:
    for kind, names in principals:
        if kind != "AWS":
            continue
        for name in names:
            if name == "*" or _ACCOUNT.fullmatch(name) or _PRINCIPAL_ARN.fullmatch(name):
                continue
            raise MalformedPolicy(f'Invalid principal in policy: "AWS":"{name}"')


def read_document(text: str, kind: Kind, *, managed: bool = False) -> Document:
    """Check ``text`` as IAM would for a policy of ``kind`` and return it normalised; raises
    :class:`MalformedPolicy` with IAM's reason. ``managed`` (CreatePolicy/CreatePolicyVersion)
    additionally requires Version 2012-10-17."""
    try:
        doc = json.loads(text, parse_int=_number, parse_float=_number, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise MalformedPolicy(SYNTAX) from None
    if not isinstance(doc, dict):
        raise MalformedPolicy(SYNTAX)
    version = doc.get("Version")
    if managed and version != VARIABLES_VERSION:
        raise MalformedPolicy(NEEDS_2012)
    # pass 1: shapes
    if any(key not in _TOP_LEVEL for key in doc):
        raise MalformedPolicy(SYNTAX)
    if version is not None and (not _is_text(version) or version not in VERSIONS):
        raise MalformedPolicy(SYNTAX)
    if "Id" in doc and not _is_text(doc["Id"]):
        raise MalformedPolicy(SYNTAX)
    if "Statement" not in doc:
        raise MalformedPolicy(SYNTAX)
    bodies = doc["Statement"]
    if isinstance(bodies, dict):
        bodies = [bodies]
    if not isinstance(bodies, list) or not bodies:
        raise MalformedPolicy(SYNTAX)
    drafts = [_syntax(index, body, kind) for index, body in enumerate(bodies)]
    # pass 2: principals belong to trust policies only
    if kind != "trust" and any(d.principals is not None for d in drafts):
        raise MalformedPolicy(NO_PRINCIPAL_HERE)
    # pass 3: the legacy parser
    variables = version == VARIABLES_VERSION
    conditions = [_legacy(d, variables) for d in drafts]
    # pass 4: statement ids
    seen: set[str] = set()
    for draft in drafts:
        if draft.sid:
            if not _SID.fullmatch(draft.sid):
                raise MalformedPolicy(SID_FORMAT)
            if draft.sid in seen:
                raise MalformedPolicy(DUPLICATE_SID)
            seen.add(draft.sid)
    # pass 5: required and prohibited elements
    for draft in drafts:
        if kind == "trust":
            if draft.principals is None:
                raise MalformedPolicy(MISSING_PRINCIPAL)
            if "Resource" in draft.body:
                raise MalformedPolicy("Has prohibited field Resource")
            if "NotResource" in draft.body:
                raise MalformedPolicy("Has prohibited field NotResource")
            if not draft.actions:
                raise MalformedPolicy(TRUST_MISSING_ACTION)
        else:
            if not draft.actions:
                raise MalformedPolicy(MISSING_ACTIONS)
            if not draft.resources:
                raise MalformedPolicy(MISSING_RESOURCES)
    # pass 6: formats
    for draft in drafts:
        for resource in draft.resources or ():
            _check_resource(resource)
    for draft in drafts:
        for action in draft.actions:
            _check_action(action)
        if kind == "trust":
            if not all(_trust_action_ok(a) for a in draft.actions):
                raise MalformedPolicy(TRUST_ACTIONS)
            _check_trust_principals(draft.principals or ())
    statements = tuple(
        RawStatement(d.index, d.sid, d.effect, d.actions, d.not_action, d.resources, d.not_resource, d.principals,
                     d.not_principal, compiled)
        for d, compiled in zip(drafts, conditions))
    canonical = json.dumps(_plain(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Document(version, statements, canonical)
