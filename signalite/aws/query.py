"""AWS's query protocol (``iam``, ``sts``): form-encoded ``POST /`` in, XML out, driven by the model.

A request is ``Action=<Operation>&Version=<apiVersion>`` plus the input members flattened as
botocore's ``QuerySerializer`` writes them (``Tags.member.1.Key``, ``PolicyArns.member.2.arn``,
``Attributes.entry.1.key``; an empty list as ``Name=``). :func:`decode` reverses that by walking
the input shape, giving each scalar its model type (``MaxItems=5`` → 5, ``true`` → True; a value
that does not read as its type is passed on as sent, for the checker to report), and the result
goes through the same constraint checker as the JSON services (``wire._checker``), so every
min/max/pattern/enum the model states is enforced with Coral's messages.

An answer is ``<{Op}Response xmlns=…><{Op}Result>…</{Op}Result><ResponseMetadata><RequestId>``
written by walking the output shape (:func:`encode`): lists as ``<member>`` items (or the
model's member name, or repeated elements when flattened), maps as ``<entry><key>…<value>``,
timestamps ISO 8601 in UTC, booleans ``true``/``false``, blobs base64. Errors are the XML
``ErrorResponse`` botocore's ``QueryParser`` reads (``Error/Type``, ``Error/Code``,
``Error/Message``, ``RequestId``), with the wire code (``NoSuchEntity``) and HTTP status the
model gives each error shape.
"""

from __future__ import annotations

import base64
import math
import re
from datetime import UTC, datetime
from typing import Any, Mapping
from urllib.parse import parse_qsl

from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from .errors import ServiceError
from .wire import _checker, _Problems

CONTENT_TYPE = "text/xml"
VALIDATION_ERROR = "ValidationError"
"""What query services answer for a request that breaks a model constraint."""

_INTEGER = re.compile(r"[+-]?\d+")
_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


# --- requests: form parameters → input values ---------------------------------------------------

def form_params(body: bytes) -> dict[str, str]:
    """The parameters of a form-encoded body (the last of a repeated name wins), or
    ``MalformedQueryString`` when it is not UTF-8 form data."""
    try:
        text = body.decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text.strip()),
                              errors="strict"))
    except (UnicodeDecodeError, ValueError):
        raise ServiceError("MalformedQueryString", "The request body is not valid form-encoded UTF-8 data.",
                           400) from None


class _Present:
    """Which dotted prefixes occur among the parameter names (``Tags.member.1.Key`` makes
    ``Tags``, ``Tags.member``, ``Tags.member.1`` and the name itself present)."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.names: set[str] = set()
        for name in params:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                self.names.add(".".join(parts[:i]))

    def __contains__(self, prefix: str) -> bool:
        return prefix in self.names


def _name(shape: Shape, default: str) -> str:
    name: str = shape.serialization.get("name", default)
    return name


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _scalar(shape: Shape, text: str) -> Any:
    """A form value as its model type when it reads as one; otherwise as sent."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        return int(text) if _INTEGER.fullmatch(text) else text
    if kind in ("float", "double"):
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


def _decode(shape: Shape, prefix: str, params: Mapping[str, str], present: _Present) -> Any:
    """The value at ``prefix`` of shape ``shape``, or None when the request has none."""
    if isinstance(shape, StructureShape):
        if prefix and prefix not in present:
            return None
        out: dict[str, Any] = {}
        for member, member_shape in shape.members.items():
            if isinstance(member_shape, ListShape) and member_shape.serialization.get("flattened") \
                    and member_shape.member.serialization.get("name"):
                key = _join(prefix, _name(member_shape.member, member))
            else:
                key = _join(prefix, _name(member_shape, member))
            value = _decode(member_shape, key, params, present)
            if value is not None:
                out[member] = value
        return out
    if isinstance(shape, ListShape):
        if prefix not in present:
            return None
        if params.get(prefix) == "" and not any(n.startswith(prefix + ".") for n in present.names):
            return []  # botocore writes an empty list as "Name="
        base = prefix if shape.serialization.get("flattened") else f"{prefix}.{_name(shape.member, 'member')}"
        items = []
        i = 1
        while f"{base}.{i}" in present:
            items.append(_decode(shape.member, f"{base}.{i}", params, present))
            i += 1
        return items
    if isinstance(shape, MapShape):
        if prefix not in present:
            return None
        base = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        key_name, value_name = _name(shape.key, "key"), _name(shape.value, "value")
        result: dict[Any, Any] = {}
        i = 1
        while f"{base}.{i}" in present:
            key = _decode(shape.key, f"{base}.{i}.{key_name}", params, present)
            result[key] = _decode(shape.value, f"{base}.{i}.{value_name}", params, present)
            i += 1
        return result
    text = params.get(prefix)
    return None if text is None else _scalar(shape, text)


def decode(shape: Shape | None, params: Mapping[str, str]) -> dict[str, Any]:
    """The input values of ``params`` (a request's form parameters) as the JSON services would
    have received them, before any constraint check."""
    if shape is None:
        return {}
    value = _decode(shape, "", params, _Present(params))
    return value if isinstance(value, dict) else {}


# --- answers: output values → XML ------------------------------------------------------------------

def _text(value: str) -> str:
    return _XML_INVALID.sub("\ufffd", value).translate(_ESCAPES)


def _timestamp(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = datetime.fromtimestamp(value, UTC)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        text: str = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return text
    return str(value)


def _scalar_text(shape: Shape, value: Any) -> str:
    kind = shape.type_name
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "timestamp":
        return _timestamp(value)
    if kind == "blob":
        return base64.b64encode(value).decode() if isinstance(value, bytes) else str(value)
    if kind in ("float", "double") and isinstance(value, float):
        return repr(value)
    return str(value)


def _element(out: list[str], tag: str, shape: Shape, value: Any) -> None:
    out.append(f"<{tag}>")
    _content(out, shape, value)
    out.append(f"</{tag}>")


def _content(out: list[str], shape: Shape, value: Any) -> None:
    """The XML inside the element of a value of ``shape`` (only modeled members, non-null)."""
    if isinstance(shape, StructureShape):
        for member, member_shape in shape.members.items():
            v = value.get(member)
            if v is None:
                continue
            if isinstance(member_shape, ListShape) and member_shape.serialization.get("flattened"):
                tag = _name(member_shape.member, _name(member_shape, member))
                for item in v:
                    _element(out, tag, member_shape.member, item)
            else:
                _element(out, _name(member_shape, member), member_shape, v)
    elif isinstance(shape, ListShape):
        tag = _name(shape.member, "member")
        for item in value:
            _element(out, tag, shape.member, item)
    elif isinstance(shape, MapShape):
        key_tag, value_tag = _name(shape.key, "key"), _name(shape.value, "value")
        for k, v in value.items():
            out.append("<entry>")
            _element(out, key_tag, shape.key, k)
            _element(out, value_tag, shape.value, v)
            out.append("</entry>")
    else:
        out.append(_text(_scalar_text(shape, value)))


def encode(op: OperationModel, output: Mapping[str, Any] | None, request_id: str, namespace: str) -> bytes:
    """The XML answer of ``op`` carrying ``output``."""
    out = [f'<{op.name}Response xmlns="{namespace}">']
    shape = op.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{op.name}Result")
        _element(out, wrapper, shape, output or {})
    out.append(f"<ResponseMetadata><RequestId>{_text(request_id)}</RequestId></ResponseMetadata>")
    out.append(f"</{op.name}Response>")
    return "".join(out).encode("utf-8")


def error_document(code: str, message: str, request_id: str, namespace: str, sender: bool = True) -> bytes:
    return (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{"Sender" if sender else "Receiver"}</Type>'
            f"<Code>{_text(code)}</Code><Message>{_text(message)}</Message></Error>"
            f"<RequestId>{_text(request_id)}</RequestId></ErrorResponse>").encode()


# --- one query service ------------------------------------------------------------------------------

class QueryWire:
    """One botocore query-protocol model (``iam`` or ``sts``): operations by ``Action``, request
    decoding and validation, XML answers and errors. It offers the same interface as
    :class:`~signalite.aws.wire.ServiceWire`, so the REST edge and its answers treat both alike."""

    content_type = CONTENT_TYPE
    validation_code = VALIDATION_ERROR

    def __init__(self, name: str, model: ServiceModel) -> None:
        self.name = name
        self.model = model
        self.signing_name: str = model.signing_name
        self.namespace: str = model.metadata.get("xmlNamespace", "")
        self.version: str = model.api_version
        self.operations: dict[str, OperationModel] = {n: model.operation_model(n) for n in model.operation_names}
        self._error_status: dict[str, int] = {}
        for shape_name in model.shape_names:
            shape = model.shape_for(shape_name)
            if shape.metadata.get("exception"):
                error = shape.metadata.get("error", {})
                self._error_status[error.get("code", shape_name)] = error.get("httpStatusCode", 400)

    def operation(self, params: Mapping[str, str]) -> OperationModel:
        """The operation a request names (``Action``, at the model's ``Version``)."""
        action = params.get("Action")
        if not action:
            raise ServiceError("MissingAction", "The request must contain the parameter Action.", 400)
        version = params.get("Version")
        if version is not None and version != self.version:
            raise ServiceError("NoSuchVersion", f"The requested version ({version[:64]}) of service "
                               f"{self.model.metadata.get('serviceId', self.name)} does not exist.", 400)
        op = self.operations.get(action)
        if op is None:
            raise ServiceError("InvalidAction", f"Could not find operation {action[:128]} for version "
                               f"{self.version}.", 400)
        return op

    def parse_params(self, op: OperationModel, params: Mapping[str, str]) -> dict[str, Any]:
        """Decode and validate the input members of a request's parameters."""
        shape = op.input_shape
        if shape is None:
            return {}
        problems = _Problems([], VALIDATION_ERROR)
        values: dict[str, Any] = _checker(shape)(decode(shape, params), None, problems)
        problems.raise_if_any()
        return values

    def parse(self, op: OperationModel, body: bytes) -> dict[str, Any]:
        return self.parse_params(op, form_params(body))

    def serialize(self, op: OperationModel, output: dict[str, Any] | None, request_id: str = "") -> bytes:
        return encode(op, output, request_id, self.namespace)

    def knows_error(self, code: str) -> bool:
        return code in self._error_status

    def error_status(self, code: str, default: int = 400) -> int:
        return self._error_status.get(code, default)

    def error_body(self, code: str, message: str, request_id: str = "", status: int = 400) -> bytes:
        return error_document(code, message, request_id, self.namespace, sender=status < 500)

    def error_type_header(self, code: str) -> str | None:
        return None

    def unsupported_code(self, op: OperationModel) -> str:
        """The error an operation Signalite does not serve answers with: the service's modeled
        ``InvalidInput`` (IAM; botocore maps a code to its exception class service-wide, so every
        IAM client sees ``InvalidInputException``), else AWS's common ``InvalidAction`` (STS has no
        modeled error that fits)."""
        return "InvalidInput" if "InvalidInput" in self._error_status else "InvalidAction"
