"""Log lines: plain text, or one JSON object per line (``--log-format json``).

JSON lines carry ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``msg`` and, where they apply, the
context the code passed as ``extra`` (``request_id``, ``account``, ``channel``, ``client_id``,
``operation``, ``status``, ``duration_ms``, ``role``, ``reason``, ``event``…). Secrets are never
passed to a logger (keys, signatures and session tokens stay out of every ``extra``); SDP and ICE
payloads appear only with ``--log-payloads``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure(level: str, fmt: str) -> None:
    """Send the server's logs to stderr as ``fmt`` (``text`` or ``json``) from ``level`` up."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log would repeat ours without the context; asyncio's debug chatter too.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
