"""Where recordings live and what is known about each one.

Layout, under the server's data directory::

    media/<stream name>/<UTC start, 20260102T030405Z>-<session id>.mkv    the Matroska recording
    media/<stream name>/<UTC start, 20260102T030405Z>-<session id>.json   its sidecar
    media/<stream name>/<UTC start>-<session id>.viewer.<client id>.mkv   a viewer's audio
                                                   (JoinStorageSessionAsViewer), with its sidecar

The sidecar is written when the recording's first frame is written (``complete: false``) and
rewritten when the session ends (``complete: true``, ``end``, frame counts), each time atomically
(a temporary file renamed over it). It names the stream by ARN as well as by name: streams of two
accounts may share a name, and retention is looked up by ARN. A recording whose sidecar is missing
or unreadable is still listed, from its path (stream from the directory, start from the file name)
and its modification time (as its end); such a recording is never deleted by the retention sweep.

Stream names match ``[a-zA-Z0-9_.-]+``, so a name is a safe directory name except ``.`` and
``..`` (and other all-dot names), whose dots are written ``%2E``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MEDIA_DIR = "media"
SUFFIX = ".mkv"
SIDECAR_SUFFIX = ".json"
_STAMP = "%Y%m%dT%H%M%SZ"


def media_root(data_dir: Path) -> Path:
    return data_dir / MEDIA_DIR


def stream_dir_name(stream_name: str) -> str:
    return stream_name if stream_name.strip(".") else stream_name.replace(".", "%2E")


def stream_from_dir_name(directory: str) -> str:
    return directory.replace("%2E", ".")


def iso(ts: float) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z`` (``2026-01-02T03:04:05.678Z``)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def recording_path(root: Path, stream_name: str, start: float, session: str) -> Path:
    """The ``.mkv`` path of a recording that starts at ``start`` (epoch seconds)."""
    stamp = datetime.fromtimestamp(start, UTC).strftime(_STAMP)
    return root / stream_dir_name(stream_name) / f"{stamp}-{session}{SUFFIX}"


def sidecar_path(recording: Path) -> Path:
    return recording.with_suffix(SIDECAR_SUFFIX)


def write_sidecar(recording: Path, meta: dict[str, Any]) -> None:
    """Write ``recording``'s sidecar atomically (readers see the old or the new one, never half)."""
    target = sidecar_path(recording)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
    os.replace(tmp, target)


@dataclass(frozen=True)
class Recording:
    stream: str
    path: Path
    start: float
    end: float
    """Epoch seconds; for an incomplete recording, the file's last modification."""
    bytes: int
    complete: bool
    stream_arn: str | None = None
    channel_arn: str | None = None
    session: str | None = None
    details: dict[str, Any] = field(default_factory=dict, compare=False)
    """What the sidecar says about the tracks (``video``/``audio``: codec, frames, size) and, for
    a viewer's audio (JoinStorageSessionAsViewer), ``viewer``: its client id."""

    def to_json(self) -> dict[str, Any]:
        """The listing's object: the contract's ``stream``, ``path``, ``start``, ``end``, ``bytes``,
        then what else is known."""
        out: dict[str, Any] = {"stream": self.stream, "path": str(self.path), "start": iso(self.start),
                               "end": iso(self.end), "bytes": self.bytes, "complete": self.complete}
        for key in ("stream_arn", "channel_arn", "session"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        out.update({k: v for k, v in self.details.items() if k in ("video", "audio", "viewer")})
        return out


def _from_name(path: Path) -> float | None:
    try:
        return datetime.strptime(path.stem.split("-", 1)[0], _STAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def read_recording(path: Path) -> Recording | None:
    """What is known about the recording at ``path`` (None if the file is gone)."""
    try:
        st = path.stat()
    except OSError:
        return None
    meta: dict[str, Any] = {}
    try:
        loaded = json.loads(sidecar_path(path).read_text())
        if isinstance(loaded, dict):
            meta = loaded
    except (OSError, ValueError):
        pass
    start = end = None
    try:
        start = parse_iso(meta["start"]) if isinstance(meta.get("start"), str) else None
        end = parse_iso(meta["end"]) if isinstance(meta.get("end"), str) else None
    except ValueError:
        meta = {}
    if start is None:
        start = _from_name(path) or st.st_mtime
    complete = bool(meta.get("complete")) and end is not None
    if end is None:
        end = max(st.st_mtime, start)
    named = meta.get("stream")
    stream = named if isinstance(named, str) else stream_from_dir_name(path.parent.name)
    return Recording(
        stream=stream, path=path, start=start, end=end, bytes=st.st_size, complete=complete,
        stream_arn=meta.get("stream_arn") if isinstance(meta.get("stream_arn"), str) else None,
        channel_arn=meta.get("channel_arn") if isinstance(meta.get("channel_arn"), str) else None,
        session=meta.get("session") if isinstance(meta.get("session"), str) else None,
        details={**{k: meta[k] for k in ("video", "audio") if isinstance(meta.get(k), dict)},
                 **({"viewer": meta["viewer"]} if isinstance(meta.get("viewer"), str) else {})},
    )


def scan(root: Path, stream: str | None = None) -> list[Recording]:
    """Every recording under ``root`` (only ``stream``'s if given), oldest first."""
    if not root.is_dir():
        return []
    if stream is not None:
        directories = [root / stream_dir_name(stream)]
    else:
        directories = sorted(p for p in root.iterdir() if p.is_dir())
    found: list[Recording] = []
    for directory in directories:
        if not directory.is_dir():
            continue
        for path in directory.glob(f"*{SUFFIX}"):
            rec = read_recording(path)
            if rec is not None and (stream is None or rec.stream == stream):
                found.append(rec)
    found.sort(key=lambda r: (r.start, str(r.path)))
    return found


def delete(recording: Recording) -> None:
    """Remove a recording and its sidecar (either may already be gone)."""
    for path in (recording.path, sidecar_path(recording.path)):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    # The stream's directory stays, even if empty: a session may be about to write into it.
