"""Time and ids, injected: the two sources a replayable run must control.

Everything that stamps a time or mints an id gets a `Clock` (and the ids it mints come
from its `token`), so a seeded simulation passes its own and nothing is monkeypatched.
"""

from __future__ import annotations

import time
from typing import Protocol, final

from router.security import random_token


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock milliseconds since the epoch."""
        ...

    def token(self, length: int) -> str:
        """`length` random characters of [0-9A-Za-z] for a new id."""
        ...


@final
class SystemClock:
    __slots__ = ()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def token(self, length: int) -> str:
        return random_token(length)


SYSTEM_CLOCK: Clock = SystemClock()
