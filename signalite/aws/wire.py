"""Model-driven restJson1 wire layer for the three KVS REST services.

botocore's service models are read once at start-up and are the only description of shapes,
constraints, HTTP paths and error codes in the server: requests are routed by each operation's
``requestUri``, validated against every constraint the model states (botocore itself checks
only required members, types and minimums, so max/pattern/enum reach the server unchecked),
and responses are serialized by walking the output shape, so nothing outside the model leaks
onto the wire.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, Callable

import botocore.session
import regex
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from .errors import ServiceError

SERVICES = ("kinesisvideo", "kinesis-video-signaling", "kinesis-video-webrtc-storage")
ERROR_TYPE_NAMESPACE = {
    "kinesisvideo": "http://internal.amazon.com/coral/com.amazonaws.kinesis.video.v20170930/",
    "kinesis-video-signaling": "http://internal.amazon.com/coral/com.amazonaws.kinesis.video.signaling.v20191204/",
    "kinesis-video-webrtc-storage": "http://internal.amazon.com/coral/com.amazonaws.kinesis.video.webrtc.storage.v20180510/",
}


@cache
def _compile(pattern: str) -> "regex.Pattern[str]":
    return regex.compile(pattern)


@cache
def _camel(name: str) -> str:
    """Coral names members lowerCamelCase in validation messages (``channelName``)."""
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))[:200]
    return str(value)[:200]


Path = "tuple[Any, str] | None"
"""Where a value sits, as ``(parent path, segment)`` links: rendered (``tags.2.member.key``) only
when a problem is reported, so valid requests never build path strings."""


def _render(path: Any) -> str:
    parts: list[str] = []
    while path is not None:
        path, segment = path
        parts.append(segment)
    return ".".join(reversed(parts))


@dataclass
class _Problems:
    items: list[str]

    def add(self, value: Any, path: Any, constraint: str) -> None:
        shown = "null" if value is None else f"'{_show(value)}'"
        self.items.append(f"Value {shown} at '{_render(path)}' failed to satisfy constraint: {constraint}")

    def raise_if_any(self) -> None:
        if self.items:
            n = len(self.items)
            head = f"{n} validation error{'s' if n > 1 else ''} detected: "
            raise ServiceError("InvalidArgumentException", head + "; ".join(self.items))


Checker = Callable[[Any, Any, _Problems], Any]
_NUMBERS = ("integer", "long", "float", "double")


def _checker(shape: Shape) -> Checker:
    """The validator of one shape, built once from its model constraints and cached on the shape.

    A checker takes ``(value, path, problems)``, records every constraint the value breaks and
    returns the value as operations see it: only modeled members (at every depth), nulls
    dropped, integers as ``int`` even when the client wrote ``30.0``.
    """
    cached = shape.__dict__.get("_signalite_checker")
    if cached is None:
        cached = _build_checker(shape)
        shape.__dict__["_signalite_checker"] = cached
    return cached


def _build_checker(shape: Shape) -> Checker:
    t = shape.type_name
    meta = shape.metadata
    lo, hi = meta.get("min"), meta.get("max")
    size_checked = t in ("string", "blob", "list", "map")
    number = t in _NUMBERS

    def bounds(value: Any, path: Any, out: _Problems) -> None:
        if size_checked:
            n = len(value)
            if lo is not None and n < lo:
                out.add(value, path, f"Member must have length greater than or equal to {lo}")
            if hi is not None and n > hi:
                out.add(value, path, f"Member must have length less than or equal to {hi}")
        elif number:
            if lo is not None and value < lo:
                out.add(value, path, f"Member must have value greater than or equal to {lo}")
            if hi is not None and value > hi:
                out.add(value, path, f"Member must have value less than or equal to {hi}")

    if t in ("integer", "long"):
        def check_int(value: Any, path: Any, out: _Problems) -> Any:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    out.add(value, path, f"Member must be of type {t}")
                    return value
            if lo is not None or hi is not None:
                bounds(value, path, out)
            return value
        return check_int

    if t in ("float", "double"):
        def check_float(value: Any, path: Any, out: _Problems) -> Any:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                out.add(value, path, f"Member must be of type {t}")
                return value
            bounds(value, path, out)
            return value
        return check_float

    if t == "timestamp":
        def check_timestamp(value: Any, path: Any, out: _Problems) -> Any:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                out.add(value, path, "Member must be of type timestamp")
            return value
        return check_timestamp

    if t == "string":
        enum = frozenset(shape.enum or ())
        enum_text = ", ".join(shape.enum or ())
        pattern = meta.get("pattern")
        matcher = _compile(pattern).fullmatch if pattern else None
        # Enum values that also meet the length and pattern constraints: such a value cannot break
        # any constraint, so it is accepted after one set lookup (most enum members are these).
        valid_enum = frozenset(e for e in enum if (lo is None or len(e) >= lo) and (hi is None or len(e) <= hi)
                               and (matcher is None or matcher(e)))
        sized = lo is not None or hi is not None

        def check_string(value: Any, path: Any, out: _Problems) -> Any:
            if not isinstance(value, str):
                out.add(value, path, "Member must be of type string")
                return value
            if value in valid_enum:
                return value
            if sized and ((lo is not None and len(value) < lo) or (hi is not None and len(value) > hi)):
                bounds(value, path, out)
            if enum and value not in enum:
                out.add(value, path, f"Member must satisfy enum value set: [{enum_text}]")
            if matcher is not None and not matcher(value):
                out.add(value, path, f"Member must satisfy regular expression pattern: {pattern}")
            return value
        return check_string

    if t == "blob":
        def check_blob(value: Any, path: Any, out: _Problems) -> Any:
            if not isinstance(value, str):
                out.add(value, path, "Member must be of type blob")
                return value
            bounds(value, path, out)
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                out.add(value, path, "Member must be valid base64")
            return value
        return check_blob

    if t == "structure":
        assert isinstance(shape, StructureShape)
        required = [(name, _camel(name)) for name in shape.required_members]
        members = {name: (_camel(name), member) for name, member in shape.members.items()}
        resolved: dict[str, tuple[str, Checker]] = {}  # member checkers, looked up on first use (shapes may recurse)

        def check_structure(value: Any, path: Any, out: _Problems) -> Any:
            if not isinstance(value, dict):
                out.add(value, path, "Member must be of type structure")
                return value
            for name, camel in required:
                if value.get(name) is None:
                    out.add(None, (path, camel), "Member must not be null")
            result = {}
            for name, v in value.items():
                if v is None:
                    continue
                known = resolved.get(name)
                if known is None:
                    spec = members.get(name)
                    if spec is None:
                        continue  # not in the model: dropped
                    known = resolved[name] = (spec[0], _checker(spec[1]))
                result[name] = known[1](v, (path, known[0]), out)
            return result
        return check_structure

    if t == "list":
        assert isinstance(shape, ListShape)
        item_shape = shape.member
        item_checker: list[Checker] = []  # looked up on first use (shapes may recurse)

        def check_list(value: Any, path: Any, out: _Problems) -> Any:
            if not isinstance(value, list):
                out.add(value, path, "Member must be of type list")
                return value
            if (lo is not None and len(value) < lo) or (hi is not None and len(value) > hi):
                bounds(value, path, out)
            if not item_checker:
                item_checker.append(_checker(item_shape))
            check_item = item_checker[0]
            result = []
            for i, item in enumerate(value, 1):
                item_path = ((path, str(i)), "member")
                if item is None:
                    out.add(None, item_path, "Member must not be null")
                else:
                    result.append(check_item(item, item_path, out))
            return result
        return check_list

    if t == "map":
        assert isinstance(shape, MapShape)
        key_shape, value_shape = shape.key, shape.value

        def check_map(value: Any, path: Any, out: _Problems) -> Any:
            if not isinstance(value, dict):
                out.add(value, path, "Member must be of type map")
                return value
            bounds(value, path, out)
            check_key, check_value = _checker(key_shape), _checker(value_shape)
            result = {}
            for k, v in value.items():
                check_key(k, ((path, k), "key"), out)
                if v is None:
                    out.add(None, ((path, k), "value"), "Member must not be null")
                else:
                    result[k] = check_value(v, ((path, k), "value"), out)
            return result
        return check_map

    if t == "boolean":
        def check_bool(value: Any, path: Any, out: _Problems) -> Any:
            if not isinstance(value, bool):
                out.add(value, path, "Member must be of type boolean")
            return value
        return check_bool

    return lambda value, path, out: value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"))
# JSONEncoder.encode() builds a new C encoder (and a float formatter) on every call; the one built
# here has the same settings except the circular-reference check, which output trees built fresh
# by the cleaners below cannot need.
_C_ENCODE = (c_make_encoder(None, _ENCODER.default, encode_basestring_ascii, None, ":", ",", False, False, True)
             if c_make_encoder is not None else None)


def _encode(value: dict[str, Any]) -> str:
    """``_ENCODER.encode(value)`` for an output structure."""
    if _C_ENCODE is None:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


def _clean(shape: Shape | None, value: Any) -> Any:
    """Keep only what the shape declares, with wire types: timestamps as epoch seconds."""
    if value is None or shape is None:
        return value
    return _cleaner(shape)(value)


def _cleaner(shape: Shape) -> Callable[[Any], Any]:
    """The output writer of one shape, built once and cached on it (like :func:`_checker`)."""
    cached = shape.__dict__.get("_signalite_cleaner")
    if cached is None:
        cached = shape.__dict__["_signalite_cleaner"] = _build_cleaner(shape)
    return cached


def _same(value: Any) -> Any:
    return value


def _build_cleaner(shape: Shape) -> Callable[[Any], Any]:
    t = shape.type_name
    if t == "structure":
        assert isinstance(shape, StructureShape)
        members = list(shape.members.items())
        resolved: list[tuple[str, Callable[[Any], Any] | None]] = []  # filled on first use (shapes may recurse)

        def clean_structure(value: Any) -> Any:
            if not resolved:
                resolved.extend((name, None if _cleaner(m) is _same else _cleaner(m)) for name, m in members)
            out = {}
            for name, clean in resolved:
                v = value.get(name)
                if v is not None:
                    out[name] = v if clean is None else clean(v)
            return out
        return clean_structure
    if t == "list":
        assert isinstance(shape, ListShape)
        item = shape.member
        return lambda value: [_cleaner(item)(v) for v in value]
    if t == "map":
        assert isinstance(shape, MapShape)
        val = shape.value
        return lambda value: {k: _cleaner(val)(v) for k, v in value.items()}
    if t == "timestamp":
        return lambda value: value.timestamp() if isinstance(value, datetime) else value
    if t == "blob":
        return lambda value: base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return _same


class ServiceWire:
    """One botocore service model: its routes, request parsing and response serialization."""

    def __init__(self, name: str, model: ServiceModel) -> None:
        self.name = name
        self.model = model
        self.routes: dict[str, OperationModel] = {}
        for op_name in model.operation_names:
            op = model.operation_model(op_name)
            self.routes[op.http["requestUri"]] = op
        self._error_status: dict[str, int] = {}
        self._error_message_key: dict[str, str] = {}
        for shape_name in model.shape_names:
            shape = model.shape_for(shape_name)
            if shape.metadata.get("exception"):
                self._error_status[shape_name] = shape.metadata.get("error", {}).get("httpStatusCode", 400)
                members = list(getattr(shape, "members", {}) or {})
                self._error_message_key[shape_name] = "message" if "message" in members else "Message"

    def parse(self, op: OperationModel, body: bytes) -> dict[str, Any]:
        """Decode and validate a request body into the operation's input values."""
        if body.strip():
            try:
                data = _DECODER.decode(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise ServiceError("InvalidArgumentException",
                                   f"The request body is not valid JSON: {exc}") from None
            except RecursionError:
                raise ServiceError("InvalidArgumentException",
                                   "The request body is not valid JSON: it is nested too deeply.") from None
        else:
            data = {}
        if not isinstance(data, dict):
            raise ServiceError("InvalidArgumentException", "The request body must be a JSON object.")
        shape = op.input_shape
        if shape is None:
            return {}
        problems = _Problems([])
        values = _checker(shape)(data, None, problems)
        problems.raise_if_any()
        return values

    def serialize(self, op: OperationModel, output: dict[str, Any] | None) -> bytes:
        cleaned = _clean(op.output_shape, output or {}) if op.output_shape is not None else {}
        return _encode(cleaned).encode()

    def knows_error(self, code: str) -> bool:
        return code in self._error_status

    def error_status(self, code: str, default: int = 400) -> int:
        return self._error_status.get(code, default)

    def error_body(self, code: str, message: str) -> bytes:
        key = self._error_message_key.get(code, "Message")
        return json.dumps({"__type": code, key: message}, separators=(",", ":")).encode()

    def error_type_header(self, code: str) -> str:
        return f"{code}:{ERROR_TYPE_NAMESPACE.get(self.name, '')}"


class Wire:
    """All three services (and any ``extra`` models, such as the admin API's), routed by path
    (their paths do not overlap)."""

    def __init__(self, extra: "tuple[ServiceModel, ...]" = ()) -> None:
        session = botocore.session.get_session()
        self.services = {name: ServiceWire(name, session.get_service_model(name)) for name in SERVICES}
        for model in extra:
            self.services[model.service_name] = ServiceWire(model.service_name, model)
        self.routes: dict[str, tuple[ServiceWire, OperationModel]] = {}
        for svc in self.services.values():
            for path, op in svc.routes.items():
                if path in self.routes:
                    raise RuntimeError(f"two services route {path}")
                self.routes[path] = (svc, op)

    def route(self, path: str) -> tuple[ServiceWire, OperationModel] | None:
        return self.routes.get(path)

    @property
    def control_plane(self) -> ServiceWire:
        return self.services["kinesisvideo"]
