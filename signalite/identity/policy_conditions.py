"""The ``Condition`` element: operators, their values compiled at parse time, and how a block
decides against a request.

Semantics (AWS's documented ones):

* one block is ``{operator: {key: values}}``; every operator and every key in it must hold
  (AND); a key holds when the request value matches any of the policy values (OR), or, for a
  negated operator (``StringNotEquals``, ``NotIpAddress`` …), matches none of them;
* a key missing from the request makes the condition false, except for negated operators (true),
  ``…IfExists`` (true) and ``Null`` (which tests exactly that);
* ``ForAllValues:`` holds when every request value passes (and when the key is missing or
  empty); ``ForAnyValue:`` when at least one does (never when missing); without a set prefix a
  multivalued key passes when any value matches (negated: when none does);
* policy variables are substituted only in the string, ARN and ``Bool`` operators.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import operator as op
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum

from signalite.identity.policy_context import KeyValue, Request, RequestContext, key_getter, parse_ip
from signalite.identity.policy_glob import DynamicPattern, Lit, Matcher, Mode, Template, compile_any


class Family(Enum):
    STRING = "string"
    STRING_IGNORE_CASE = "string-ignore-case"
    STRING_LIKE = "string-like"
    NUMERIC = "numeric"
    DATE = "date"
    BOOL = "bool"
    BINARY = "binary"
    IP = "ip"
    ARN = "arn"
    NULL = "null"


class Compare(Enum):
    EQ = "eq"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"


_ORDERED = {
    "Equals": (Compare.EQ, False), "NotEquals": (Compare.EQ, True),
    "LessThan": (Compare.LT, False), "LessThanEquals": (Compare.LE, False),
    "GreaterThan": (Compare.GT, False), "GreaterThanEquals": (Compare.GE, False),
}

_BASE: dict[str, tuple[Family, Compare, bool]] = {}
for _suffix, (_compare, _negated) in _ORDERED.items():
    _BASE[f"numeric{_suffix}".lower()] = (Family.NUMERIC, _compare, _negated)
    _BASE[f"date{_suffix}".lower()] = (Family.DATE, _compare, _negated)
_BASE.update({
    "stringequals": (Family.STRING, Compare.EQ, False),
    "stringnotequals": (Family.STRING, Compare.EQ, True),
    "stringequalsignorecase": (Family.STRING_IGNORE_CASE, Compare.EQ, False),
    "stringnotequalsignorecase": (Family.STRING_IGNORE_CASE, Compare.EQ, True),
    "stringlike": (Family.STRING_LIKE, Compare.EQ, False),
    "stringnotlike": (Family.STRING_LIKE, Compare.EQ, True),
    "bool": (Family.BOOL, Compare.EQ, False),
    "binaryequals": (Family.BINARY, Compare.EQ, False),
    "ipaddress": (Family.IP, Compare.EQ, False),
    "notipaddress": (Family.IP, Compare.EQ, True),
    "arnequals": (Family.ARN, Compare.EQ, False),
    "arnlike": (Family.ARN, Compare.EQ, False),
    "arnnotequals": (Family.ARN, Compare.EQ, True),
    "arnnotlike": (Family.ARN, Compare.EQ, True),
    "null": (Family.NULL, Compare.EQ, False),
})

_VARIABLE_FAMILIES = frozenset({Family.STRING, Family.STRING_IGNORE_CASE, Family.STRING_LIKE, Family.ARN,
                                Family.BOOL})


class SetOperator(Enum):
    NONE = "none"
    ANY = "ForAnyValue"
    ALL = "ForAllValues"


@dataclass(frozen=True, slots=True)
class Operator:
    """A parsed operator name such as ``ForAllValues:StringLikeIfExists``."""

    name: str
    family: Family
    compare: Compare
    negated: bool
    if_exists: bool
    set_operator: SetOperator


def parse_operator(name: str) -> Operator | None:
    """The operator ``name`` denotes (names compare without case), or ``None`` if IAM does not
    know it."""
    set_operator = SetOperator.NONE
    base = name
    if ":" in name:
        prefix, base = name.split(":", 1)
        lowered = prefix.lower()
        if lowered == "foranyvalue":
            set_operator = SetOperator.ANY
        elif lowered == "forallvalues":
            set_operator = SetOperator.ALL
        else:
            return None
    lowered = base.lower()
    if_exists = lowered.endswith("ifexists")
    if if_exists:
        lowered = lowered[: -len("ifexists")]
    spec = _BASE.get(lowered)
    if spec is None or (if_exists and spec[0] is Family.NULL):
        return None
    family, compare, negated = spec
    return Operator(name, family, compare, negated, if_exists, set_operator)


# --- value parsers (policy side raises ValueError: the document is malformed) -------------

_ISO = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?")
_EPOCH = re.compile(r"-?\d+")
_INT64 = 2**63


def parse_date(text: str) -> float:
    """An ISO 8601 date (the W3C profiles: ``2024``, ``2024-05``, ``2024-05-01``,
    ``2024-05-01T10:00Z``, ``2024-05-01T10:00:00.5+02:00``; no zone means UTC) or epoch
    seconds, as epoch seconds."""
    if _EPOCH.fullmatch(text):
        value = int(text)
        if not -_INT64 <= value < _INT64:
            raise ValueError(f"epoch out of range: {text}")
        return float(value)
    match = _ISO.fullmatch(text)
    if match is None:
        raise ValueError(f"not a date: {text}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz: timezone = UTC
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    moment = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                      int(second or 0), tzinfo=tz)
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(text: str) -> float:
    """A decimal number (integer or not); no ``nan``/``inf``/``1_000`` Python spellings."""
    if not _NUMBER.fullmatch(text.strip()):
        raise ValueError(f"not a number: {text}")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text}")
    return value


def _request_date(value: str | float) -> float | None:
    if isinstance(value, float):
        return value
    try:
        return parse_date(value)
    except ValueError:
        try:
            return parse_number(value)  # epoch with a fraction, as some keys carry
        except ValueError:
            return None


def _request_number(value: str | float) -> float | None:
    if isinstance(value, float):
        return value
    try:
        return parse_number(value)
    except ValueError:
        return None


_COMPARATORS: dict[Compare, Callable[[float, float], bool]] = {
    Compare.EQ: op.eq, Compare.LT: op.lt, Compare.LE: op.le, Compare.GT: op.gt, Compare.GE: op.ge,
}
_NONE, _ANY, _ALL = 0, 1, 2


Network = tuple[int, int, int]
"""A CIDR block as (IP version, network address, mask), all integers: membership is one AND."""
Value = str | float
"""One request value as an operator sees it: the string from the context, or the epoch number
for ``aws:CurrentTime``/``aws:EpochTime`` in the date and numeric operators."""


def parse_network(text: str) -> Network:
    network = ipaddress.ip_network(text.strip(), strict=False)
    return network.version, int(network.network_address), int(network.netmask)


class Condition:
    """One ``operator: {key: values}`` entry, ready to evaluate.

    Everything that depends only on the policy is done here, once: values parsed (dates,
    numbers, networks), wildcard patterns compiled, and the family's match function chosen, so
    that :meth:`holds` does no parsing and no dispatch on the operator.
    """

    __slots__ = ("_absent", "_compare", "_dynamic", "_get", "_lowered", "_match", "_matchers", "_mode", "_negated",
                 "_networks", "_null", "_numbers", "_patterns", "_set", "_static", "key", "operator", "values",
                 "variables")

    def __init__(self, operator: Operator, key: str, values: Sequence[str], *, variables: bool) -> None:
        self.operator = operator
        self.key = key
        self.values = tuple(values)
        family = operator.family
        self._get = _value_getter(family, key)
        self._static: frozenset[str] = frozenset()
        self._lowered: frozenset[str] = frozenset()
        self._matchers: tuple[Matcher, ...] = ()
        self._numbers: tuple[float, ...] = ()
        self._networks: tuple[Network, ...] = ()
        self._mode = Mode.GLOB if family is Family.STRING_LIKE else Mode.ARN
        # hot-path copies of the operator (enum member access is slow in Python 3.11)
        self._null: tuple[bool, bool] | None = None
        self._negated = operator.negated
        self._set = {SetOperator.NONE: _NONE, SetOperator.ANY: _ANY, SetOperator.ALL: _ALL}[operator.set_operator]
        self._compare = _COMPARATORS[operator.compare]
        templates = [Template.parse(v, variables=variables and family in _VARIABLE_FAMILIES) for v in self.values]
        self.variables: frozenset[str] = frozenset().union(*(t.variables for t in templates))
        self._dynamic = tuple(t for t in templates if not t.static)
        self._patterns: tuple[DynamicPattern, ...] = ()
        static_literals = [[p for p in t.parts if isinstance(p, Lit)] for t in templates if t.static]
        static_texts = ["".join(p.text for p in parts) for parts in static_literals]
        self._match: Callable[[Value, Request], bool]
        if family is Family.STRING:
            self._static = frozenset(static_texts)
            self._match = self._match_string
        elif family in (Family.STRING_IGNORE_CASE, Family.BOOL):
            self._lowered = frozenset(t.lower() for t in static_texts)
            self._match = self._match_folded
        elif family is Family.STRING_LIKE or family is Family.ARN:
            matcher = compile_any(static_literals, self._mode)
            self._matchers = (matcher,) if matcher is not None else ()
            self._patterns = tuple(DynamicPattern(t, self._mode) for t in self._dynamic)
            self._match = self._match_pattern
        elif family is Family.NUMERIC:
            self._numbers = tuple(parse_number(v) for v in self.values)
            self._match = self._match_number
        elif family is Family.DATE:
            self._numbers = tuple(parse_date(v) for v in self.values)
            self._match = self._match_date
        elif family is Family.IP:
            self._networks = tuple(parse_network(v) for v in self.values)
            self._match = self._match_ip
        elif family is Family.BINARY:
            # bytes kept as text (undecodable bytes become surrogates, equal to no request string)
            self._static = frozenset(base64.b64decode(v, validate=True).decode("utf-8", "surrogateescape")
                                     for v in self.values)
            self._match = self._match_string
        else:  # Null: which of absent ("true") / present ("false") the values accept
            lowered = {v.lower() for v in self.values}
            self._null = ("true" in lowered, "false" in lowered)
            self._match = self._match_string
        if operator.if_exists or operator.set_operator is SetOperator.ALL:
            self._absent = True
        elif operator.set_operator is SetOperator.ANY:
            self._absent = False
        else:
            self._absent = operator.negated

    def __repr__(self) -> str:
        return f"Condition({self.operator.name!r}, {self.key!r}, {list(self.values)!r})"

    def holds(self, request: Request) -> bool:
        raw = self._get(request.ctx)
        if self._null is not None:
            return self._null[0] if raw is None else self._null[1]
        if raw is None:
            return self._absent
        negated = self._negated
        match = self._match
        if isinstance(raw, (str, float)):
            return match(raw, request) is not negated
        if self._set == _ALL:
            return all(match(v, request) is not negated for v in raw)
        if self._set == _ANY:
            return any(match(v, request) is not negated for v in raw)
        return any(match(v, request) for v in raw) is not negated

    # Each _match_* says whether one request value matches any of the policy values.

    def _match_string(self, value: Value, request: Request) -> bool:
        if value in self._static:
            return True
        if not self._dynamic:
            return False
        return any(t.text(request.variable) == value for t in self._dynamic)

    def _match_folded(self, value: Value, request: Request) -> bool:
        folded = str(value).lower()
        if folded in self._lowered:
            return True
        if not self._dynamic:
            return False
        return any((text := t.text(request.variable)) is not None and text.lower() == folded for t in self._dynamic)

    def _match_pattern(self, value: Value, request: Request) -> bool:
        text = str(value)
        for match in self._matchers:
            if match(text) is not None:
                return True
        lookup = request.variable
        return any(pattern.match(lookup, text) for pattern in self._patterns)

    def _match_number(self, value: Value, request: Request) -> bool:
        number = _request_number(value)
        compare = self._compare
        return number is not None and any(compare(number, bound) for bound in self._numbers)

    def _match_date(self, value: Value, request: Request) -> bool:
        moment = _request_date(value)
        compare = self._compare
        return moment is not None and any(compare(moment, bound) for bound in self._numbers)

    def _match_ip(self, value: Value, request: Request) -> bool:
        if isinstance(value, float):
            return False
        address = request.source_ip() if value is request.ctx.source_ip else parse_ip(value)
        if address is None:
            return False
        version, number = address
        for net_version, network, mask in self._networks:
            if net_version == version and number & mask == network:
                return True
        return False


def _value_getter(family: Family, key: str) -> Callable[[RequestContext], KeyValue | float]:
    """How the condition reads its key: as the context's string, except that the date and
    numeric operators read the clock keys as numbers (no formatting and re-parsing)."""
    lowered = key.lower()
    if family is Family.DATE and lowered == "aws:currenttime":
        return lambda ctx: float(ctx.current_time)
    if lowered == "aws:epochtime" and family in (Family.DATE, Family.NUMERIC):
        return lambda ctx: float(int(ctx.current_time))
    return key_getter(key)

