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
from functools import lru_cache
from typing import Any

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
_JSON_TYPES = {
    "string": (str,),
    "boolean": (bool,),
    "list": (list,),
    "map": (dict,),
    "structure": (dict,),
    "blob": (str,),
}


@lru_cache(maxsize=None)
def _compile(pattern: str) -> "regex.Pattern[str]":
    return regex.compile(pattern)


def _camel(name: str) -> str:
    """Coral names members lowerCamelCase in validation messages (``channelName``)."""
    return name[:1].lower() + name[1:]


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))[:200]
    return str(value)[:200]


@dataclass
class _Problems:
    items: list[str]

    def add(self, value: Any, path: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{_show(value)}'"
        self.items.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")

    def raise_if_any(self) -> None:
        if self.items:
            n = len(self.items)
            head = f"{n} validation error{'s' if n > 1 else ''} detected: "
            raise ServiceError("InvalidArgumentException", head + "; ".join(self.items))


def _validate(shape: Shape, value: Any, path: str, out: _Problems) -> None:
    t = shape.type_name
    meta = shape.metadata
    if t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                out.add(value, path, f"Member must be of type {t}")
                return
    elif t in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            out.add(value, path, f"Member must be of type {t}")
            return
    elif t == "timestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            out.add(value, path, "Member must be of type timestamp")
            return
    else:
        expected = _JSON_TYPES.get(t)
        if expected and not isinstance(value, expected):
            out.add(value, path, f"Member must be of type {t}")
            return

    if t in ("string", "blob", "list", "map"):
        size = len(value)
        if "min" in meta and size < meta["min"]:
            what = "length" if t in ("string", "blob") else "length"
            out.add(value, path, f"Member must have {what} greater than or equal to {meta['min']}")
        if "max" in meta and size > meta["max"]:
            out.add(value, path, f"Member must have length less than or equal to {meta['max']}")
    if t in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            out.add(value, path, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            out.add(value, path, f"Member must have value less than or equal to {meta['max']}")
    if t == "string":
        if shape.enum and value not in shape.enum:
            out.add(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = meta.get("pattern")
        if pattern and not _compile(pattern).fullmatch(value):
            out.add(value, path, f"Member must satisfy regular expression pattern: {pattern}")
    elif t == "blob":
        try:
            base64.b64decode(value, validate=True)
        except ValueError:
            out.add(value, path, "Member must be valid base64")
    elif t == "structure":
        assert isinstance(shape, StructureShape)
        for name in shape.required_members:
            if value.get(name) is None:
                out.add(None, f"{path}.{_camel(name)}" if path else _camel(name), "Member must not be null")
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _validate(member, value[name], f"{path}.{_camel(name)}" if path else _camel(name), out)
    elif t == "list":
        assert isinstance(shape, ListShape)
        for i, item in enumerate(value, 1):
            if item is None:
                out.add(None, f"{path}.{i}.member", "Member must not be null")
            else:
                _validate(shape.member, item, f"{path}.{i}.member", out)
    elif t == "map":
        assert isinstance(shape, MapShape)
        for k, v in value.items():
            _validate(shape.key, k, f"{path}.{k}.key", out)
            if v is None:
                out.add(None, f"{path}.{k}.value", "Member must not be null")
            else:
                _validate(shape.value, v, f"{path}.{k}.value", out)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _input(shape: Shape, value: Any) -> Any:
    """A validated request value with only the members the model declares (at every depth),
    and integers as ``int`` even when the client wrote ``30.0``."""
    t = shape.type_name
    if t == "structure":
        members = shape.members  # type: ignore[attr-defined]
        return {k: _input(members[k], v) for k, v in value.items() if k in members and v is not None}
    if t == "list":
        return [_input(shape.member, v) for v in value]  # type: ignore[attr-defined]
    if t == "map":
        return {k: _input(shape.value, v) for k, v in value.items()}  # type: ignore[attr-defined]
    if t in ("integer", "long") and isinstance(value, float):
        return int(value)
    return value


def _clean(shape: Shape | None, value: Any) -> Any:
    """Keep only what the shape declares, with wire types: timestamps as epoch seconds."""
    if value is None or shape is None:
        return value
    t = shape.type_name
    if t == "structure":
        assert isinstance(shape, StructureShape)
        out = {}
        for name, member in shape.members.items():
            v = value.get(name)
            if v is not None:
                out[name] = _clean(member, v)
        return out
    if t == "list":
        assert isinstance(shape, ListShape)
        return [_clean(shape.member, v) for v in value]
    if t == "map":
        assert isinstance(shape, MapShape)
        return {k: _clean(shape.value, v) for k, v in value.items()}
    if t == "timestamp":
        if isinstance(value, datetime):
            return value.timestamp()
        return value
    if t == "blob" and isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


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
                data = json.loads(body, parse_constant=_reject_constant)
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
        _validate(shape, data, "", problems)
        problems.raise_if_any()
        return _input(shape, data)

    def serialize(self, op: OperationModel, output: dict[str, Any] | None) -> bytes:
        cleaned = _clean(op.output_shape, output or {}) if op.output_shape is not None else {}
        return json.dumps(cleaned, separators=(",", ":")).encode()

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
    """All three services, routed by path (their paths do not overlap)."""

    def __init__(self) -> None:
        session = botocore.session.get_session()
        self.services = {name: ServiceWire(name, session.get_service_model(name)) for name in SERVICES}
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
