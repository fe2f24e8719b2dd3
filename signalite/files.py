"""Writing files that hold secrets (keys, credentials, coturn's shared secret and config).

One writer for all of them, so that each such file is private from the moment it exists (mode
0600 at creation, never a window with the umask's mode) and is replaced atomically (a reader, or
a crash half-way, sees the old file or the new one, never a truncated one).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_private(path: Path, data: bytes | str) -> None:
    """Atomically replace ``path`` with ``data`` (``str`` is written as UTF-8), mode 0600.

    The temporary file is created in the same directory (``os.replace`` is atomic only within one
    file system) by ``mkstemp``, which opens it with mode 0600 and ``O_EXCL``."""
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
