"""Hypothesis strategies built from the botocore service models, and the fuzzers' shared settings.

For each shape type the strategy draws a value that satisfies the model (lengths, patterns,
enums, ranges), one at a boundary (one past a minimum or maximum) or one of the wrong type, with
the valid ones most often so that requests get past validation into the operations. Bodies are
drawn as JSON of the input shape, as any JSON value, as deeply nested arrays and objects, as
huge strings, and as bytes that are not JSON or not UTF-8.

``SIGNALITE_FUZZ_EXAMPLES=N`` raises the number of examples per test from the CI default (and
draws them at random); by default the examples are derandomized so that CI runs the same ones.
Failures worth keeping go into ``tests/fuzz_corpus/`` and are replayed as explicit cases.
"""

from __future__ import annotations

import base64
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StringShape, StructureShape
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CORPUS = Path(__file__).resolve().parent.parent / "fuzz_corpus"
LONG_RUN = int(os.environ.get("SIGNALITE_FUZZ_EXAMPLES", "0") or 0)


def fuzz_settings(ci_examples: int) -> settings:
    """Bounded in CI (deterministic); ``SIGNALITE_FUZZ_EXAMPLES`` for a longer, random run."""
    return settings(max_examples=LONG_RUN or ci_examples, deadline=None, derandomize=not LONG_RUN,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


SURROGATES = st.sampled_from(["\ud800", "a\udfffb", "\ud83d", "x" * 20 + "\udc00"])
"""Strings with a lone surrogate: JSON can carry them (``"\\ud800"``), UTF-8 cannot."""
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                      st.text(max_size=40), SURROGATES)
JSON_ANY = st.recursive(JSON_LEAF, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                        max_leaves=12)
HUGE = st.sampled_from([10_000, 70_000, 300_000]).map(lambda n: "x" * n)


@cache
def _regex(pattern: str) -> Any:
    """A strategy for strings that match a model pattern (Java-flavoured; None if Python's re
    cannot read it)."""
    try:
        re.compile(pattern)
    except re.error:
        return None
    return st.from_regex(pattern, fullmatch=True)


@cache
def _java_pattern(pattern: str) -> Any:
    import regex

    return regex.compile(pattern)


def _string(shape: StringShape, valid_only: bool = False) -> Any:
    lo = shape.metadata.get("min", 0)
    hi = shape.metadata.get("max")
    enum = shape.enum
    if enum:
        valid = st.sampled_from(list(enum))
    else:
        pattern = shape.metadata.get("pattern")
        cap = min(hi if hi is not None else 64, 64)
        plain = st.text(min_size=min(lo, cap), max_size=max(cap, min(lo, cap)))
        regex = _regex(pattern) if pattern else None
        if regex is not None:
            valid = regex.filter(lambda s: lo <= len(s) <= (hi if hi is not None else 10**9))
        elif pattern:  # \p{L} and friends: Python's re cannot read them, the server's regex module can
            matcher = _java_pattern(pattern)
            valid = st.text(alphabet=st.characters(categories=("L", "N", "Zs"), include_characters="_.:/=+-@"),
                            min_size=min(lo, cap), max_size=max(cap, min(lo, cap))).filter(
                lambda s: matcher.fullmatch(s) is not None)
        else:
            valid = plain
    if valid_only:
        return valid
    edges = [st.just("x" * max(lo - 1, 0)), SURROGATES]
    if hi is not None:
        edges.append(st.just("a" * (hi + 1)))
    return st.one_of(valid, valid, valid, *edges, st.text(alphabet=st.characters(codec="utf-8"), max_size=20))


def _integer(shape: Shape, valid_only: bool = False) -> Any:
    lo = shape.metadata.get("min")
    hi = shape.metadata.get("max")
    valid = st.integers(min_value=lo, max_value=hi)
    if valid_only:
        return valid
    edges = [st.just(v) for v in ((lo - 1) if lo is not None else None, (hi + 1) if hi is not None else None)
             if v is not None]
    return st.one_of(valid, valid, *edges, st.integers(), st.floats(allow_nan=False, allow_infinity=False))


@cache
def _strategy(shape: Shape, depth: int = 0, valid_only: bool = False) -> Any:
    """Values of ``shape``: with ``valid_only``, only values the model allows (so that requests
    reach the operations); otherwise mostly those, with boundary and wrong-typed ones."""
    kind = shape.type_name
    if depth > 6:
        return JSON_LEAF

    def wrong(valid: Any, *others: Any) -> Any:
        return valid if valid_only else st.one_of(valid, valid, valid, *others)

    if isinstance(shape, StructureShape):
        required = set(shape.required_members)
        members = {name: _strategy(m, depth + 1, valid_only) for name, m in shape.members.items()}
        valid = st.fixed_dictionaries({k: v for k, v in members.items() if k in required},
                                      optional={k: v for k, v in members.items() if k not in required})
        return wrong(valid, st.dictionaries(st.text(max_size=12), JSON_ANY, max_size=3))
    if isinstance(shape, ListShape):
        hi = shape.metadata.get("max")
        item = _strategy(shape.member, depth + 1, valid_only)
        valid = st.lists(item, min_size=shape.metadata.get("min", 0), max_size=min(hi if hi is not None else 4, 4))
        edge = st.lists(item, min_size=hi + 1, max_size=hi + 1) if hi and hi < 60 else st.nothing()
        return wrong(valid, edge, JSON_ANY)
    if isinstance(shape, MapShape):
        valid = st.dictionaries(_keys(shape.key), _strategy(shape.value, depth + 1, valid_only), max_size=4)
        return wrong(valid, JSON_ANY)
    if isinstance(shape, StringShape):
        return wrong(_string(shape, valid_only), JSON_LEAF)
    if kind in ("integer", "long"):
        return wrong(_integer(shape, valid_only), JSON_LEAF)
    if kind in ("float", "double"):
        return wrong(st.floats(allow_nan=False, allow_infinity=False), JSON_LEAF)
    if kind == "boolean":
        return wrong(st.booleans(), JSON_LEAF)
    if kind == "timestamp":
        return wrong(st.floats(min_value=0, max_value=4e9), st.integers(min_value=-10, max_value=10**11),
                     st.sampled_from(["2026-01-01T00:00:00Z", "yesterday", ""]), JSON_LEAF)
    if kind == "blob":
        return wrong(st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()), JSON_LEAF)
    return JSON_ANY


def _keys(shape: Shape) -> Any:
    if isinstance(shape, StringShape):
        return _string(shape).filter(lambda k: isinstance(k, str))
    return st.text(max_size=12)


def _nested(depth: int, opener: str) -> bytes:
    closer = "]" if opener == "[" else "}"
    if opener == "[":
        return ("[" * depth + "]" * depth).encode()
    return ('{"a":' * depth + "1" + closer * depth).encode()


def body_strategy(input_shape: Shape | None) -> Any:
    """Request bodies for an operation whose input is ``input_shape``."""
    shaped = st.just({}) if input_shape is None else _strategy(input_shape)
    valid = st.just({}) if input_shape is None else _strategy(input_shape, valid_only=True)
    as_json = shaped.map(lambda v: json.dumps(v).encode())
    as_valid = valid.map(lambda v: json.dumps(v).encode())
    junk = st.one_of(
        JSON_ANY.map(lambda v: json.dumps(v).encode()),
        st.builds(_nested, st.sampled_from([50, 1000, 100_000]), st.sampled_from(["[", "{"])),
        HUGE.map(lambda s: json.dumps({"ChannelName": s, "ChannelARN": s}).encode()),
        st.binary(max_size=200),
        st.binary(max_size=60).map(lambda b: b'{"ChannelName": "' + b"\xff\xfe" + b + b'"}'),
        st.sampled_from([b"", b"null", b"[]", b"{", b"{}}", b'{"a":1,"a":2}', b"\xef\xbb\xbf{}", b"NaN",
                         b'{"ChannelName": NaN}', b'{"MaxResults": 1e999}', b'"\\ud800"']),
    )
    # Half valid (they reach the operations), a quarter mixed, a quarter junk.
    return st.integers(0, 3).flatmap(lambda n: as_valid if n < 2 else as_json if n == 2 else junk)


def load_corpus(kind: str) -> list[dict[str, Any]]:
    """Saved regression inputs of ``kind`` (``rest`` or ``wss``): one JSON object per file."""
    folder = CORPUS / kind
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def corpus_bytes(entry: dict[str, Any]) -> bytes:
    if "base64" in entry:
        return base64.b64decode(entry["base64"])
    return str(entry["text"]).encode("utf-8", "surrogatepass")
