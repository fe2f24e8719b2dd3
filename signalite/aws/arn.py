"""ARNs as AWS mints them: 12-digit account, 13-digit creation millis (the KVS C SDK checks both)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import invalid

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-zA-Z-]*):(?P<service>kinesisvideo):(?P<region>[a-z0-9-]+):(?P<account>[0-9]+):"
    r"(?P<kind>[a-z]+)/(?P<name>[a-zA-Z0-9_.-]+)/(?P<millis>[0-9]+)$"
)


@dataclass(frozen=True)
class Arn:
    partition: str
    region: str
    account: str
    kind: str
    name: str
    millis: str

    def __str__(self) -> str:
        return f"arn:{self.partition}:kinesisvideo:{self.region}:{self.account}:{self.kind}/{self.name}/{self.millis}"


def make(region: str, account: str, kind: str, name: str, created_ms: int) -> str:
    return str(Arn("aws", region, account, kind, name, f"{created_ms:013d}"))


@lru_cache(maxsize=1024)
def parse(value: str) -> Arn | None:
    """The parts of an ARN, or None. Memoised (a pure parse into an immutable value): clients
    name the same few channels on every call."""
    m = _ARN.match(value)
    if not m:
        return None
    return Arn(m["partition"], m["region"], m["account"], m["kind"], m["name"], m["millis"])


def require(value: str, kind: str, member: str) -> Arn:
    """``value`` parsed, or the InvalidArgumentException AWS answers for a malformed ARN or one of
    another resource type in member ``member``."""
    parsed = parse(value)
    if parsed is None:
        raise invalid(f"{member} '{value}' is not a valid ARN.")
    if parsed.kind != kind:
        raise invalid(f"{member} '{value}' is not a {kind} ARN.")
    return parsed
