"""URL helpers shared by the backends that take connection URLs (store, bus)."""

from __future__ import annotations

from typing import Collection
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}:***@{hostinfo}", parts.path, parts.query, parts.fragment))


def take_params(url: str, names: Collection[str]) -> tuple[str, list[tuple[str, str]]]:
    """Split Signalite's own query parameters off a backend URL.

    Returns the URL without the parameters named in ``names`` (the rest re-encoded, in order,
    for the driver, which would refuse or misread ours) and those parameters as decoded
    ``(name, value)`` pairs in the order they came, repeats and blank values included: each
    backend decides which of a repeated name wins and what a blank value means.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = [(k, v) for k, v in query if k in names]
    rest = [(k, v) for k, v in query if k not in names]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment)), own
