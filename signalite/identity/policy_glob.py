"""The policy language's wildcards (``*`` any run of characters, ``?`` exactly one) compiled to
regular expressions, and policy-variable templates (``${aws:username}``, ``${*}`` …).

Three matching modes:

* **glob** (actions, ``StringLike``): the whole string, a wildcard matches any character;
* **arn** (``ArnLike``/``ArnEquals``): the six colon-separated components of an ARN compared one
  by one; a wildcard in the first five never crosses a colon, the sixth (resource) component may
  contain colons;
* **resource** (the ``Resource``/``NotResource`` elements): as ``arn``, and a pattern with fewer
  than six components whose last component ends in ``*`` lets that ``*`` match the rest of the
  ARN, colons included (``arn:aws:kinesisvideo:*`` covers every KVS resource).

The regular expressions never backtrack more than linearly: a ``*`` between two literal runs
becomes an atomic lazy group ``(?>.*?run)`` (the leftmost occurrence of a fixed-length run is
always the right one for a glob), so a policy author cannot make the request path spin on a
pattern such as ``a*a*a*a*a*b``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum


class Mode(Enum):
    GLOB = "glob"
    ARN = "arn"
    RESOURCE = "resource"


@dataclass(frozen=True, slots=True)
class Lit:
    """Literal text of a pattern; ``wild`` says whether its ``*`` and ``?`` are wildcards
    (``False`` for the ``${*}``/``${?}`` escapes and for substituted variable values)."""

    text: str
    wild: bool = True


@dataclass(frozen=True, slots=True)
class Var:
    """A policy variable: a lower-cased condition key name and the optional default value of
    ``${name, 'default'}``."""

    name: str
    default: str | None = None


Part = Lit | Var

_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_WITH_DEFAULT = re.compile(r"\s*([^,]*?)\s*,\s*'([^']*)'\s*")
_ESCAPES = frozenset({"*", "?", "$"})


@dataclass(frozen=True, slots=True)
class Template:
    """A policy string, split into literal text and policy variables."""

    parts: tuple[Part, ...]

    @classmethod
    def parse(cls, text: str, *, variables: bool) -> Template:
        """Split ``text``; with ``variables`` false (a policy older than Version 2012-10-17)
        ``${…}`` is ordinary text, as on AWS."""
        if not variables or "${" not in text:
            return cls((Lit(text),))
        parts: list[Part] = []
        position = 0
        for match in _VARIABLE.finditer(text):
            if match.start() > position:
                parts.append(Lit(text[position:match.start()]))
            inner = match.group(1)
            if inner.strip() in _ESCAPES:
                parts.append(Lit(inner.strip(), wild=False))
            else:
                default = _WITH_DEFAULT.fullmatch(inner)
                if default is not None:
                    parts.append(Var(default.group(1).lower(), default.group(2)))
                else:
                    parts.append(Var(inner.strip().lower()))
            position = match.end()
        if position < len(text):
            parts.append(Lit(text[position:]))
        return cls(tuple(parts))

    @property
    def variables(self) -> frozenset[str]:
        """The names this template needs from the request (those without a default)."""
        return frozenset(p.name for p in self.parts if isinstance(p, Var) and p.default is None)

    @property
    def static(self) -> bool:
        return all(isinstance(p, Lit) for p in self.parts)

    @property
    def has_wildcards(self) -> bool:
        return any(isinstance(p, Lit) and p.wild and ("*" in p.text or "?" in p.text) for p in self.parts)

    def text(self, lookup: Callable[[str], str | None]) -> str | None:
        """The string with every variable substituted, or ``None`` if a variable has neither
        a value nor a default (for exact comparisons)."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, Lit):
                out.append(part.text)
                continue
            value = lookup(part.name)
            if value is None:
                value = part.default
            if value is None:
                return None
            out.append(value)
        return "".join(out)


Token = tuple[str, bool] | int
"""One character of a pattern and whether it is a wildcard, or (an int) the slot of a policy
variable whose value is filled in per request."""
Fragment = str | int
"""A piece of a regular expression, or the slot of a variable's (escaped) value."""


def _tokens(parts: Iterable[Part]) -> tuple[list[Token], list[Var]]:
    tokens: list[Token] = []
    variables: list[Var] = []
    for part in parts:
        if isinstance(part, Var):
            tokens.append(len(variables))
            variables.append(part)
        else:
            tokens.extend((ch, part.wild) for ch in part.text)
    return tokens, variables


def _component(tokens: Sequence[Token], dot: str, *, open_tail: bool = False) -> list[Fragment]:
    """The regex of one component (no anchors). ``dot`` is what a wildcard may match (``.`` or
    ``[^:]``); with ``open_tail`` a final ``*`` matches anything at all (colons included)."""
    chunks: list[list[Fragment]] = [[]]
    for token in tokens:
        if isinstance(token, int):
            chunks[-1].append(token)
            continue
        ch, wild = token
        if wild and ch == "*":
            if chunks[-1] or len(chunks) == 1:
                chunks.append([])
            continue  # a run of stars is one star
        chunks[-1].append(dot if (wild and ch == "?") else re.escape(ch))
    if len(chunks) == 1:
        return chunks[0]
    head, middle, tail = chunks[0], chunks[1:-1], chunks[-1]
    out: list[Fragment] = list(head)
    for chunk in middle:
        if chunk:
            out.extend(["(?>", f"{dot}*?", *chunk, ")"])
    if tail:
        out.extend([f"{dot}*", *tail])
    else:
        out.append(".*" if open_tail else f"{dot}*")
    return out


def _split_components(tokens: list[Token]) -> list[list[Token]]:
    """Split at the first five colons (the sixth component keeps its own colons)."""
    components: list[list[Token]] = [[]]
    for token in tokens:
        if not isinstance(token, int) and token[0] == ":" and len(components) < 6:
            components.append([])
        else:
            components[-1].append(token)
    return components


def _fragments(parts: Sequence[Part], mode: Mode) -> tuple[list[Fragment], list[Var]]:
    """The pattern as regex fragments (to be matched in full) and its variables in slot order."""
    tokens, variables = _tokens(parts)
    if mode is Mode.GLOB:
        return _component(tokens, "."), variables
    if tokens == [("*", True)]:
        return [".*"], variables  # "*" alone is every resource / every ARN
    components = _split_components(tokens)
    out: list[Fragment] = []
    last = len(components) - 1
    for index, component in enumerate(components):
        if index:
            out.append(":")
        if index == 5:
            out.extend(_component(component, "."))
        else:
            open_tail = mode is Mode.RESOURCE and index == last
            out.extend(_component(component, "[^:]", open_tail=open_tail))
    return out, variables


def regex(parts: Sequence[Lit], mode: Mode) -> str:
    """The regular expression (for ``fullmatch``) of a pattern without variables."""
    fragments, _ = _fragments(parts, mode)
    return "".join(f for f in fragments if isinstance(f, str))


Matcher = Callable[[str], "re.Match[str] | None"]


def compile_pattern(parts: Sequence[Lit], mode: Mode) -> Matcher:
    """A ``fullmatch`` for a static pattern (compiled once, at parse time)."""
    return re.compile(regex(parts, mode), re.DOTALL).fullmatch


def compile_any(patterns: Sequence[Sequence[Lit]], mode: Mode) -> Matcher | None:
    """One ``fullmatch`` for several static patterns (an alternation: one call into the regex
    engine instead of one per pattern), or ``None`` for no patterns."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{regex(parts, mode)})" for parts in patterns), re.DOTALL).fullmatch


def literal_prefix(parts: Sequence[Lit]) -> str | None:
    """The text before the pattern's only wildcard when that is one final ``*`` (``prefix*``:
    a ``str.startswith`` test, in glob and resource modes alike), else ``None``."""
    tokens, _ = _tokens(parts)
    if not tokens or tokens[-1] != ("*", True):
        return None
    head = [t for t in tokens[:-1] if not isinstance(t, int)]
    if any(wild and ch in "*?" for ch, wild in head):
        return None
    return "".join(ch for ch, _ in head)


_DYNAMIC_CACHE = 256  # compiled patterns kept per DynamicPattern (one per distinct variable values)


class DynamicPattern:
    """A wildcard pattern with policy variables. The request's values are literal text (a
    ``*`` in a user name is no wildcard). When the pattern's own wildcards are none or one final
    ``*`` — the usual ``…/${aws:username}/*`` — the substituted text is compared with ``==`` or
    ``str.startswith``; otherwise its regular expression, built at parse time with a slot per
    variable, is completed with the escaped values and compiled once per distinct set of values
    (a bounded cache of its own)."""

    __slots__ = ("_cache", "_fragments", "_kind", "_texts", "_variables")

    def __init__(self, template: Template, mode: Mode) -> None:
        tokens, variables = _tokens(template.parts)
        self._variables = tuple(variables)
        wild = [i for i, t in enumerate(tokens) if not isinstance(t, int) and t[1] and t[0] in "*?"]
        texts: list[str | int] = []
        for token in tokens if not wild else tokens[:-1]:
            if isinstance(token, int):
                texts.append(token)
            elif texts and isinstance(texts[-1], str):
                texts[-1] += token[0]
            else:
                texts.append(token[0])
        self._texts = tuple(texts)
        if not wild:
            self._kind = "exact"
        elif wild == [len(tokens) - 1] and tokens[-1] == ("*", True):
            self._kind = "prefix"
        else:
            self._kind = "regex"
        fragments, _ = _fragments(template.parts, mode)
        merged: list[Fragment] = []
        for fragment in fragments:
            if isinstance(fragment, str) and merged and isinstance(merged[-1], str):
                merged[-1] += fragment
            else:
                merged.append(fragment)
        self._fragments = tuple(merged)
        self._cache: dict[tuple[str, ...], Matcher] = {}

    def match(self, lookup: Callable[[str], str | None], value: str) -> bool:
        """``value`` matches with the request's variables substituted (``False`` when a variable
        has neither a value nor a default)."""
        values: list[str] = []
        for variable in self._variables:
            resolved = lookup(variable.name)
            if resolved is None:
                resolved = variable.default
                if resolved is None:
                    return False
            values.append(resolved)
        kind = self._kind
        if kind != "regex":
            text = "".join([t if isinstance(t, str) else values[t] for t in self._texts])
            return value == text if kind == "exact" else value.startswith(text)
        key = tuple(values)
        matcher = self._cache.get(key)
        if matcher is None:
            escaped = [re.escape(v) for v in values]
            pattern = "".join(f if isinstance(f, str) else escaped[f] for f in self._fragments)
            matcher = re.compile(pattern, re.DOTALL).fullmatch
            if len(self._cache) < _DYNAMIC_CACHE:
                self._cache[key] = matcher
        return matcher(value) is not None
