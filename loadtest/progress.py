"""Progress of a long run (`payrouter bench`, `python -m loadtest.chaos`): where it is, its
rate and the time left, once a second, then a summary line.

On a terminal the line is redrawn in place with a bar; in a log (CI) each second is a line
of its own. Progress goes to stderr, so a run's stdout stays its report (`--json`).

Load generators run in child processes: each writes how many answers it has had to a
small file once a second (`write_count`), and the parent adds them up (`read_counts`).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO, final

_BAR = 24


def write_count(path: Path, count: int) -> None:
    """Replace the file's count in one step (a reader never sees half a number)."""
    partial = path.with_suffix(".partial")
    partial.write_text(str(count))
    os.replace(partial, path)


async def keep_writing_count(path: Path, count: Callable[[], int]) -> None:
    """In a generator: its answers so far, once a second, until cancelled."""
    while True:
        write_count(path, count())
        await asyncio.sleep(1.0)


def read_counts(paths: Sequence[Path]) -> int:
    total = 0
    for path in paths:
        try:
            total += int(path.read_text() or 0)
        except (OSError, ValueError):
            continue  # not written yet
    return total


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


@final
class Progress:
    __slots__ = ("_last", "_started", "_stream", "_tty", "label", "total", "unit")

    def __init__(self, label: str, total: float, unit: str,
                 stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._started = time.monotonic()
        self._last = float("-inf")

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def show(self, done: float, rate: float | None, eta_s: float | None,
             note: str = "") -> None:
        """`done` of `total` units, `rate` per second; printed at most once a second."""
        now = time.monotonic()
        if now - self._last < 1.0:
            return
        self._last = now
        share = min(1.0, done / self.total) if self.total else 1.0
        bar = "#" * round(share * _BAR) + "." * (_BAR - round(share * _BAR))
        rate_text = "-" if rate is None else f"{rate:,.0f}/s"
        eta_text = "-" if eta_s is None else _clock(eta_s)
        line = (f"{self.label} [{bar}] {done:,.0f}/{self.total:,.0f} {self.unit}  "
                f"{rate_text}  elapsed {_clock(self.elapsed)}  ETA {eta_text}  {note}").rstrip()
        if self._tty:
            self._stream.write(f"\r\033[K{line}")
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def finish(self, summary: str) -> None:
        """The summary line (ends a redrawn line on a terminal)."""
        self._stream.write(("\r\033[K" if self._tty else "") +
                           f"{self.label}: {summary} in {_clock(self.elapsed)}\n")
        self._stream.flush()
