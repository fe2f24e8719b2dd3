"""``signalite admin recordings [STREAM] [--json] [--data-dir D]``: the recordings of WebRTC ingestion.

It reads the data directory (``media/``, see ``signalite.media.library``) directly, so it works
whether or not the server runs, and needs no credentials: whoever can read the data directory can
read the recordings anyway. ``--json`` prints one JSON array of objects with ``stream``, ``path``,
``start`` and ``end`` (ISO 8601, UTC), ``bytes``, and what else the sidecar knows (``complete``,
``stream_arn``, ``channel_arn``, ``session``, ``video``, ``audio``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .config import add_arguments, settings_from
from .media.library import Recording, iso, media_root, scan


def add_recordings_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Register ``recordings`` under ``signalite admin``."""
    cmd = commands.add_parser("recordings", help="list the recordings of WebRTC ingestion (JoinStorageSession)",
                              description="List the recordings of WebRTC ingestion under DATA_DIR/media.")
    cmd.add_argument("stream", nargs="?", default=None, help="only this stream's recordings (its name)")
    cmd.add_argument("--json", action="store_true", help="print a JSON array")
    add_arguments(cmd, "data_dir")
    cmd.set_defaults(func=cmd_recordings)


def list_recordings(data_dir: Path, stream: str | None = None) -> list[Recording]:
    """The recordings under ``data_dir`` (only ``stream``'s if given), oldest first."""
    return scan(media_root(data_dir).resolve(), stream)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def format_table(recordings: list[Recording]) -> str:
    rows: list[tuple[str, ...]] = [("STREAM", "START", "END", "SIZE", "PATH")]
    for rec in recordings:
        end = iso(rec.end) + ("" if rec.complete else " (recording)")
        rows.append((rec.stream, iso(rec.start), end, _size(rec.bytes), str(rec.path)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows)


def cmd_recordings(args: argparse.Namespace) -> int:
    data_dir = settings_from(args).data_dir  # --data-dir over SIGNALITE_DATA_DIR over the default
    recordings = list_recordings(data_dir, args.stream)
    if args.json:
        out: list[dict[str, Any]] = [r.to_json() for r in recordings]
        print(json.dumps(out, indent=1))
    elif recordings:
        print(format_table(recordings))
    else:
        where = f"stream {args.stream}" if args.stream else str(media_root(data_dir))
        print(f"no recordings ({where})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m signalite.recordings``: the same command outside ``signalite admin``."""
    parser = argparse.ArgumentParser(prog="signalite admin")
    add_recordings_command(parser.add_subparsers(dest="admin_command", required=True))
    args = parser.parse_args(["recordings", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
