"""Writing credential-bundle files safely, for the simulators' `load_or_create_bundle`."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def create_exclusive(path: Path, content: str) -> None:
    """Write `path` (mode 0600) unless it exists.

    Written aside then hard-linked into place: a concurrent starter (simulator and
    gateway in two processes) either wins or reads the complete winner's file.
    """
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(content)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
