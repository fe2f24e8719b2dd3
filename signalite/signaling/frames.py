"""Signaling frames: parse what clients send (both key casings), serialize what the server sends.

Clients send JSON text frames. The KVS JS SDK uses lowercase keys (``recipientClientId``,
``messagePayload``, ``correlationId``) and compact JSON; the KVS C SDK capitalises them
(``RecipientClientId``, ``MessagePayload``, ``CorrelationId``), pretty-prints, and adds an
``IceServerList`` to its offers. Unknown keys are ignored. The server always answers with compact
JSON and lowercase keys (the C SDK matches lowercase keys only).

Pure code, no I/O: one ``json.loads`` per inbound frame, one ``json.dumps`` of the payload string per
outbound frame (the rest is a pre-built template).
"""

from __future__ import annotations

import json
import json.scanner
import re
from typing import Any

SDP_OFFER = "SDP_OFFER"
SDP_ANSWER = "SDP_ANSWER"
ICE_CANDIDATE = "ICE_CANDIDATE"
ACTIONS = frozenset((SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE))
SDP_ACTIONS = frozenset((SDP_OFFER, SDP_ANSWER))

GO_AWAY = "GO_AWAY"
RECONNECT_ICE_SERVER = "RECONNECT_ICE_SERVER"
STATUS_RESPONSE = "STATUS_RESPONSE"

INVALID_ARGUMENT = "InvalidArgumentException"
CLIENT_LIMIT = "ClientLimitExceededException"

ID_PATTERN = re.compile(r"[a-zA-Z0-9_.-]{1,256}")
"""ClientId / recipientClientId / correlationId: 1..256 of ``[a-zA-Z0-9_.-]``."""

_dumps_utf8 = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_dumps_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def _dumps(value: Any) -> str:
    """JSON for a frame the server sends, which goes out as UTF-8. A client's string may hold a
    lone surrogate (JSON lets it write ``"\\ud800"``), which UTF-8 cannot encode: a payload
    that is not ASCII (base64 always is) is written with every non-ASCII character escaped, the
    same string to any JSON reader, and always encodable."""
    if type(value) is str and value.isascii():
        return _dumps_utf8(value)
    return _dumps_ascii(value)

_loads = json.loads


class Malformed(ValueError):
    """The frame is not a JSON object: there is no correlationId to answer, the socket is closed."""


class Inbound:
    """One client message, keys normalised. Values are whatever JSON held (validated by the router)."""

    __slots__ = ("action", "payload", "recipient", "correlation_id")

    def __init__(self, action: Any, payload: Any, recipient: Any, correlation_id: Any) -> None:
        self.action = action
        self.payload = payload
        self.recipient = recipient
        self.correlation_id = correlation_id


_scan_once = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # the C scanner json.loads ends up in


def parse(text: str) -> Inbound:
    """Parse a client text frame. Raises :class:`Malformed` when it is not a JSON object.

    An empty string counts as absent, so the lowercase key wins unless it is missing or empty.
    """
    try:
        d, end = _scan_once(text, 0)  # the common case: a frame that starts with its object
        if end != len(text) and text[end:].strip():
            raise ValueError("extra data after the JSON value")
    except StopIteration:
        try:
            d = _loads(text)  # leading whitespace, or not JSON at all: let json say why
        except (ValueError, RecursionError) as exc:
            raise Malformed(f"the frame is not valid JSON ({str(exc)[:80]})") from None
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"the frame is not valid JSON ({str(exc)[:80]})") from None
    if type(d) is not dict:
        raise Malformed("the frame must be a JSON object")
    get = d.get
    return Inbound(
        get("action") or get("Action"),
        get("messagePayload") or get("MessagePayload"),
        get("recipientClientId") or get("RecipientClientId"),
        get("correlationId") or get("CorrelationId"),
    )


def valid_id(value: Any) -> bool:
    return type(value) is str and ID_PATTERN.fullmatch(value) is not None


def valid_client_id(value: Any) -> bool:
    """A viewer ClientId: the id pattern, and not starting with ``AWS_`` in any case."""
    return valid_id(value) and not value[:4].upper() == "AWS_"


def decoded_size(payload: str) -> int:
    """Size of a base64 payload once decoded (an upper bound when it is not base64)."""
    n = len(payload)
    return n * 3 // 4 - (payload.endswith("=") + payload.endswith("=="))


# --- server → client ---------------------------------------------------------------------------

def message(message_type: str, payload: str, sender: str | None) -> str:
    """A relayed message. ``sender`` is the viewer's ClientId, or None when the master sent it."""
    if sender is None:
        return f'{{"messagePayload":{_dumps(payload)},"messageType":"{message_type}"}}'
    return f'{{"messagePayload":{_dumps(payload)},"messageType":"{message_type}","senderClientId":"{sender}"}}'


def status_response(correlation_id: str, error_type: str, description: str, status_code: str = "400") -> str:
    return _dumps({
        "messageType": STATUS_RESPONSE,
        "statusResponse": {
            "correlationId": correlation_id,
            "errorType": error_type,
            "statusCode": status_code,
            "description": description,
        },
    })


def control(message_type: str) -> str:
    """GO_AWAY / RECONNECT_ICE_SERVER (the real payload, if any, is unconfirmed; none is sent)."""
    return f'{{"messageType":"{message_type}"}}'


GO_AWAY_FRAME = control(GO_AWAY)
RECONNECT_ICE_SERVER_FRAME = control(RECONNECT_ICE_SERVER)


def to_dict(frame: str) -> dict[str, Any]:
    """Decode a server frame (for in-process consumers such as the virtual viewer)."""
    value: dict[str, Any] = _loads(frame)
    return value
