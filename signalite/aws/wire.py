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
from json.encoder import encode_basestring_ascii
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, TypeAlias

import botocore.session
import regex
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StringShape, StructureShape

from .errors import ServiceError

if TYPE_CHECKING:
    from .query import QueryWire

SERVICES = ("kinesisvideo", "kinesis-video-signaling", "kinesis-video-webrtc-storage")
QUERY_SERVICES = ("iam", "sts")
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


_Path: TypeAlias = "tuple[_Path, str] | None"
"""Where a value sits, as ``(parent path, segment)`` links: rendered (``tags.2.member.key``) only
when a problem is reported, so valid requests never build path strings."""


def _render(path: _Path) -> str:
    parts: list[str] = []
    while path is not None:
        path, segment = path
        parts.append(segment)
    return ".".join(reversed(parts))


@dataclass
class _Problems:
    items: list[str]
    code: str = "InvalidArgumentException"
    """The error a request with problems answers (query services say ``ValidationError``)."""

    def add(self, value: Any, path: _Path, constraint: str) -> None:
        shown = "null" if value is None else f"'{_show(value)}'"
        self.items.append(f"Value {shown} at '{_render(path)}' failed to satisfy constraint: {constraint}")

    def raise_if_any(self) -> None:
        if self.items:
            n = len(self.items)
            head = f"{n} validation error{'s' if n > 1 else ''} detected: "
            raise ServiceError(self.code, head + "; ".join(self.items))


Checker = Callable[[Any, _Path, _Problems], Any]
"""A validator: ``(value, path, problems)`` → the value as operations see it (see :func:`_checker`)."""


def _checker(shape: Shape) -> Checker:
    """The validator of one shape, built once from its model constraints and cached on the shape.

    A checker takes ``(value, path, problems)``, records every constraint the value breaks and
    returns the value as operations see it: only modeled members (at every depth), nulls
    dropped, integers as ``int`` even when the client wrote ``30.0``.
    """
    cached: Checker | None = shape.__dict__.get("_signalite_checker")
    if cached is None:
        cached = _CHECKER_BUILDERS.get(shape.type_name, _accept_builder)(shape)
        shape.__dict__["_signalite_checker"] = cached
    return cached


class _Bounds:
    """A shape's ``min``/``max``: of its length (string, blob, list, map) or of its value (numbers).

    ``lo``/``hi`` are ±infinity where the model states no bound, so a checker's guard is one
    chained comparison, ``lo <= n <= hi``, whatever the model states; :meth:`report` is called
    only when that fails, to say which bound is broken in Coral's words.
    """

    __slots__ = ("lo", "hi", "_low", "_high")

    def __init__(self, shape: Shape, measure: str) -> None:
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        self.lo: float = -math.inf if lo is None else lo
        self.hi: float = math.inf if hi is None else hi
        self._low = f"Member must have {measure} greater than or equal to {lo}"
        self._high = f"Member must have {measure} less than or equal to {hi}"

    def allows(self, n: float) -> bool:
        return self.lo <= n <= self.hi

    def report(self, value: Any, n: float, path: _Path, out: _Problems) -> None:
        """Record the bound ``n`` (``value``'s length, or the value) breaks."""
        if n < self.lo:
            out.add(value, path, self._low)
        if n > self.hi:
            out.add(value, path, self._high)


def _type_error(shape: Shape) -> str:
    return f"Member must be of type {shape.type_name}"


# -- one checker builder per shape type (the table at the end dispatches on ``shape.type_name``) --

def _integer_checker(shape: Shape) -> Checker:
    """``integer``/``long``: an int (not a bool), or a float with an integral value, made an int."""
    bounds = _Bounds(shape, "value")
    lo, hi, report, wrong_type = bounds.lo, bounds.hi, bounds.report, _type_error(shape)

    def check_integer(value: Any, path: _Path, out: _Problems) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                out.add(value, path, wrong_type)
                return value
        if not lo <= value <= hi:
            report(value, value, path, out)
        return value
    return check_integer


def _float_checker(shape: Shape) -> Checker:
    """``float``/``double``: a finite int or float (not a bool)."""
    bounds = _Bounds(shape, "value")
    lo, hi, report, wrong_type = bounds.lo, bounds.hi, bounds.report, _type_error(shape)

    def check_float(value: Any, path: _Path, out: _Problems) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            out.add(value, path, wrong_type)
            return value
        if not lo <= value <= hi:
            report(value, value, path, out)
        return value
    return check_float


def _timestamp_checker(shape: Shape) -> Checker:
    """``timestamp``: epoch seconds (int or float) or a string, passed on as sent."""
    wrong_type = _type_error(shape)

    def check_timestamp(value: Any, path: _Path, out: _Problems) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            out.add(value, path, wrong_type)
        return value
    return check_timestamp


def _string_checker(shape: Shape) -> Checker:
    """``string``: length, enum and pattern, each reported when broken (in that order)."""
    assert isinstance(shape, StringShape)
    bounds = _Bounds(shape, "length")
    lo, hi, report, wrong_type = bounds.lo, bounds.hi, bounds.report, _type_error(shape)
    enum = frozenset(shape.enum or ())
    enum_problem = f"Member must satisfy enum value set: [{', '.join(shape.enum or ())}]"
    pattern = shape.metadata.get("pattern")
    matcher = _compile(pattern).fullmatch if pattern else None
    pattern_problem = f"Member must satisfy regular expression pattern: {pattern}"
    # Enum values that also meet the length and pattern constraints: such a value cannot break
    # any constraint, so it is accepted after one set lookup (most enum members are these).
    valid_enum = frozenset(e for e in enum if bounds.allows(len(e)) and (matcher is None or matcher(e)))

    def check_string(value: Any, path: _Path, out: _Problems) -> Any:
        if not isinstance(value, str):
            out.add(value, path, wrong_type)
            return value
        if value in valid_enum:
            return value
        if not lo <= len(value) <= hi:
            report(value, len(value), path, out)
        if enum and value not in enum:
            out.add(value, path, enum_problem)
        if matcher is not None and not matcher(value):
            out.add(value, path, pattern_problem)
        return value
    return check_string


def _blob_checker(shape: Shape) -> Checker:
    """``blob``: a base64 string (restJson1), its length as sent."""
    bounds = _Bounds(shape, "length")
    lo, hi, report, wrong_type = bounds.lo, bounds.hi, bounds.report, _type_error(shape)

    def check_blob(value: Any, path: _Path, out: _Problems) -> Any:
        if not isinstance(value, str):
            out.add(value, path, wrong_type)
            return value
        if not lo <= len(value) <= hi:
            report(value, len(value), path, out)
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            out.add(value, path, "Member must be valid base64")
        return value
    return check_blob


def _structure_checker(shape: Shape) -> Checker:
    """``structure``: required members, then each modeled member; unknown members and nulls dropped."""
    assert isinstance(shape, StructureShape)
    wrong_type = _type_error(shape)
    required = [(name, _camel(name)) for name in shape.required_members]
    members = {name: (_camel(name), member) for name, member in shape.members.items()}
    resolved: dict[str, tuple[str, Checker]] = {}  # member checkers, looked up on first use (shapes may recurse)

    def check_structure(value: Any, path: _Path, out: _Problems) -> Any:
        if not isinstance(value, dict):
            out.add(value, path, wrong_type)
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


def _list_checker(shape: Shape) -> Checker:
    """``list``: its length, then every item (numbered from 1, as Coral does; null items refused)."""
    assert isinstance(shape, ListShape)
    bounds = _Bounds(shape, "length")
    lo, hi, report, wrong_type = bounds.lo, bounds.hi, bounds.report, _type_error(shape)
    item_shape = shape.member
    item_checker: list[Checker] = []  # looked up on first use (shapes may recurse)

    def check_list(value: Any, path: _Path, out: _Problems) -> Any:
        if not isinstance(value, list):
            out.add(value, path, wrong_type)
            return value
        if not lo <= len(value) <= hi:
            report(value, len(value), path, out)
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


def _map_checker(shape: Shape) -> Checker:
    """``map``: its size, then every key and value (null values refused)."""
    assert isinstance(shape, MapShape)
    bounds = _Bounds(shape, "length")
    lo, hi, report, wrong_type = bounds.lo, bounds.hi, bounds.report, _type_error(shape)
    key_shape, value_shape = shape.key, shape.value

    def check_map(value: Any, path: _Path, out: _Problems) -> Any:
        if not isinstance(value, dict):
            out.add(value, path, wrong_type)
            return value
        if not lo <= len(value) <= hi:
            report(value, len(value), path, out)
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


def _boolean_checker(shape: Shape) -> Checker:
    wrong_type = _type_error(shape)

    def check_boolean(value: Any, path: _Path, out: _Problems) -> Any:
        if not isinstance(value, bool):
            out.add(value, path, wrong_type)
        return value
    return check_boolean


def _accept(value: Any, path: _Path, out: _Problems) -> Any:
    return value


def _accept_builder(shape: Shape) -> Checker:
    """A type the models do not use for request members: passed on unchecked."""
    return _accept


_CHECKER_BUILDERS: Mapping[str, Callable[[Shape], Checker]] = MappingProxyType({
    "integer": _integer_checker,
    "long": _integer_checker,
    "float": _float_checker,
    "double": _float_checker,
    "timestamp": _timestamp_checker,
    "string": _string_checker,
    "blob": _blob_checker,
    "structure": _structure_checker,
    "list": _list_checker,
    "map": _map_checker,
    "boolean": _boolean_checker,
})
"""The checker builder of each shape type (any other type: :func:`_accept_builder`)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(separators=(",", ":"))
# JSONEncoder.encode() builds a new C encoder (and a float formatter) on every call; the one built
# here has the same settings except the circular-reference check, which output trees built fresh
# by the cleaners below cannot need.
_c_make_encoder: Callable[..., Callable[[Any, int], list[str]]] | None = getattr(json.encoder, "c_make_encoder", None)
_C_ENCODE = (_c_make_encoder(None, _ENCODER.default, encode_basestring_ascii, None, ":", ",", False, False, True)
             if _c_make_encoder is not None else None)


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


Cleaner = Callable[[Any], Any]
"""An output writer: a value of the shape → what goes into the JSON body."""


def _cleaner(shape: Shape) -> Cleaner:
    """The output writer of one shape, built once and cached on it (like :func:`_checker`)."""
    cached: Cleaner | None = shape.__dict__.get("_signalite_cleaner")
    if cached is None:
        cached = shape.__dict__["_signalite_cleaner"] = _CLEANER_BUILDERS.get(shape.type_name, _same_builder)(shape)
    return cached


def _same(value: Any) -> Any:
    return value


def _same_builder(shape: Shape) -> Cleaner:
    """Strings, numbers, booleans: written as they are (structure writers skip calling it)."""
    return _same


# -- one cleaner builder per shape type that needs one (the table below dispatches on it) --------

def _structure_cleaner(shape: Shape) -> Cleaner:
    """Only the modeled members, non-null, each through its own writer."""
    assert isinstance(shape, StructureShape)
    members = list(shape.members.items())
    resolved: list[tuple[str, Cleaner | None]] = []  # filled on first use (shapes may recurse)

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


def _list_cleaner(shape: Shape) -> Cleaner:
    assert isinstance(shape, ListShape)
    item = shape.member
    return lambda value: [_cleaner(item)(v) for v in value]


def _map_cleaner(shape: Shape) -> Cleaner:
    assert isinstance(shape, MapShape)
    val = shape.value
    return lambda value: {k: _cleaner(val)(v) for k, v in value.items()}


def _timestamp_cleaner(shape: Shape) -> Cleaner:
    """Epoch seconds, as restJson1 writes timestamps."""
    return lambda value: value.timestamp() if isinstance(value, datetime) else value


def _blob_cleaner(shape: Shape) -> Cleaner:
    """Base64 text, as restJson1 writes blobs."""
    return lambda value: base64.b64encode(value).decode() if isinstance(value, bytes) else value


_CLEANER_BUILDERS: Mapping[str, Callable[[Shape], Cleaner]] = MappingProxyType({
    "structure": _structure_cleaner,
    "list": _list_cleaner,
    "map": _map_cleaner,
    "timestamp": _timestamp_cleaner,
    "blob": _blob_cleaner,
})
"""The output writer builder of each shape type that is not written as it is."""


class WireService(Protocol):
    """What the edge and its answers need of a service's wire form, whatever its protocol:
    :class:`ServiceWire` (restJson1) and :class:`~signalite.aws.query.QueryWire` (query)."""

    name: str
    signing_name: str
    content_type: str
    validation_code: str

    def parse(self, op: OperationModel, body: bytes) -> dict[str, Any]: ...

    def serialize(self, op: OperationModel, output: dict[str, Any] | None, request_id: str = "") -> bytes: ...

    def knows_error(self, code: str) -> bool: ...

    def error_status(self, code: str, default: int = 400) -> int: ...

    def error_body(self, code: str, message: str, request_id: str = "", status: int = 400) -> bytes: ...

    def error_type_header(self, code: str) -> str | None: ...

    def unsupported_code(self, op: OperationModel) -> str: ...


class ServiceWire:
    """One botocore restJson1 service model: its routes, request parsing and response serialization.

    :class:`~signalite.aws.query.QueryWire` offers the same interface for the query protocol
    (``content_type``, ``parse``, ``serialize``, ``error_status``, ``error_body``,
    ``error_type_header``, ``unsupported_code``), so the edge and its answers treat both alike.
    """

    content_type = "application/json"
    validation_code = "InvalidArgumentException"

    def __init__(self, name: str, model: ServiceModel) -> None:
        self.name = name
        self.model = model
        self.signing_name: str = model.signing_name
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
        values: dict[str, Any] = _checker(shape)(data, None, problems)
        problems.raise_if_any()
        return values

    def serialize(self, op: OperationModel, output: dict[str, Any] | None, request_id: str = "") -> bytes:
        cleaned = _clean(op.output_shape, output or {}) if op.output_shape is not None else {}
        return _encode(cleaned).encode()

    def knows_error(self, code: str) -> bool:
        return code in self._error_status

    def error_status(self, code: str, default: int = 400) -> int:
        return self._error_status.get(code, default)

    def error_body(self, code: str, message: str, request_id: str = "", status: int = 400) -> bytes:
        """The restJson1 error body (the request id travels in ``x-amzn-RequestId`` only)."""
        key = self._error_message_key.get(code, "Message")
        return json.dumps({"__type": code, key: message}, separators=(",", ":")).encode()

    def error_type_header(self, code: str) -> str | None:
        return f"{code}:{ERROR_TYPE_NAMESPACE.get(self.name, '')}"

    def unsupported_code(self, op: OperationModel) -> str:
        """The modeled error an operation Signalite does not serve answers with."""
        codes = [e.name for e in op.error_shapes]
        return "InvalidArgumentException" if "InvalidArgumentException" in codes or not codes else codes[0]


class Wire:
    """All three restJson1 services (and any ``extra`` models, such as the admin API's), routed by
    path (their paths do not overlap), and the query services (``iam``, ``sts``), routed by the
    service of the request's SigV4 credential scope (they all live at ``POST /``)."""

    def __init__(self, extra: "tuple[ServiceModel, ...]" = ()) -> None:
        from .query import QueryWire  # noqa: PLC0415 - query builds on this module

        session = botocore.session.get_session()
        self.services = {name: ServiceWire(name, session.get_service_model(name)) for name in SERVICES}
        self.query: dict[str, QueryWire] = {}
        """Query services by signing name (``iam``, ``sts``)."""
        for name in QUERY_SERVICES:
            wire = QueryWire(name, session.get_service_model(name))
            self.query[wire.signing_name] = wire
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

    def query_service(self, signing_name: str | None, action: str | None = None) -> "QueryWire | None":
        """The query service a ``POST /`` is for: the one its credential scope names, else (an
        unsigned request) the one whose model has its ``Action``."""
        if signing_name is not None:
            return self.query.get(signing_name)
        for wire in self.query.values():
            if action in wire.operations:
                return wire
        return None

    @property
    def control_plane(self) -> ServiceWire:
        return self.services["kinesisvideo"]
