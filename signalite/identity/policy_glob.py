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

    def literals(self, lookup: Callable[[str], str | None]) -> tuple[Lit, ...] | None:
        """The template with every variable substituted (as text without wildcards), or
        ``None`` if a variable has no value and no default."""
        out: list[Lit] = []
        for part in self.parts:
            if isinstance(part, Lit):
                out.append(part)
                continue
            value = lookup(part.name)
            if value is None:
                value = part.default
            if value is None:
                return None
            out.append(Lit(value, wild=False))
        return tuple(out)

    def text(self, lookup: Callable[[str], str | None]) -> str | None:
        """The substituted string itself (for exact comparisons), or ``None`` as above."""
        literals = self.literals(lookup)
        return None if literals is None else "".join(p.text for p in literals)


def _characters(parts: Iterable[Lit]) -> list[tuple[str, bool]]:
    return [(ch, part.wild) for part in parts for ch in part.text]


def _component(chars: Sequence[tuple[str, bool]], dot: str, *, open_tail: bool = False) -> str:
    """The regex of one component (no anchors). ``dot`` is what a wildcard may match (``.`` or
    ``[^:]``); with ``open_tail`` a final ``*`` matches anything at all (colons included)."""
    chunks: list[str] = [""]
    for ch, wild in chars:
        if wild and ch == "*":
            if chunks[-1] or len(chunks) == 1:
                chunks.append("")
            continue  # a run of stars is one star
        chunks[-1] += dot if (wild and ch == "?") else re.escape(ch)
    if len(chunks) == 1:
        return chunks[0]
    head, middle, tail = chunks[0], chunks[1:-1], chunks[-1]
    out = [head]
    out.extend(f"(?>{dot}*?{chunk})" for chunk in middle if chunk)
    if tail:
        out.append(f"{dot}*{tail}")
    else:
        out.append(".*" if open_tail else f"{dot}*")
    return "".join(out)


def _split_components(chars: list[tuple[str, bool]]) -> list[list[tuple[str, bool]]]:
    """Split at the first five colons (the sixth component keeps its own colons)."""
    components: list[list[tuple[str, bool]]] = [[]]
    for ch, wild in chars:
        if ch == ":" and len(components) < 6:
            components.append([])
        else:
            components[-1].append((ch, wild))
    return components


def regex(parts: Sequence[Lit], mode: Mode) -> str:
    """The anchored-by-fullmatch regular expression of a pattern in ``mode``."""
    chars = _characters(parts)
    if mode is Mode.GLOB:
        return _component(chars, ".")
    if chars == [("*", True)]:
        return ".*"  # "*" alone is every resource / every ARN
    components = _split_components(chars)
    out: list[str] = []
    last = len(components) - 1
    for index, component in enumerate(components):
        if index == 5:
            out.append(_component(component, "."))
        else:
            open_tail = mode is Mode.RESOURCE and index == last
            out.append(_component(component, "[^:]", open_tail=open_tail))
    return ":".join(out)


Matcher = Callable[[str], "re.Match[str] | None"]


def compile_pattern(parts: Sequence[Lit], mode: Mode) -> Matcher:
    """A ``fullmatch`` for a static pattern (compiled once, at parse time)."""
    return re.compile(regex(parts, mode), re.DOTALL).fullmatch


def match_dynamic(parts: Sequence[Lit], mode: Mode, value: str) -> bool:
    """Match a pattern assembled at request time (policy variables substituted); the compiled
    expression comes from :mod:`re`'s own cache when the same user asks again."""
    return re.fullmatch(regex(parts, mode), value, re.DOTALL) is not None
