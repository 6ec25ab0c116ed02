"""Dashboard sessions and failed logins in Redis (router/api/dashboard.py uses them).

    dashboard:session:{sha256 of the cookie}   string  an open session, expiring
    dashboard:login_failures:{client address}  string  failed logins in the current window

Only a hash of the session cookie is stored, so what Redis holds cannot be replayed as
a cookie. Both are single keys used by single commands (any slot on a cluster).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Final, final

from router.store.resp import Script
from router.store.runner import Runner
from router.store.scripts import script_source

_LOGIN_FAILED: Final = Script(script_source("login_failed"))


def _session(cookie: str) -> str:
    return "dashboard:session:" + hashlib.sha256(cookie.encode()).hexdigest()


def _failures(client: str) -> str:
    return f"dashboard:login_failures:{client}"


@final
class SessionStore:
    __slots__ = ("_run",)

    def __init__(self, runner: Runner) -> None:
        self._run = runner

    async def open(self, cookie: str, ttl_s: int) -> None:
        key = _session(cookie)
        await self._run.write(key, "SET", key, "1", "EX", ttl_s)

    async def is_open(self, cookie: str) -> bool:
        return bool(await self._run.read("EXISTS", _session(cookie)))

    async def close(self, cookie: str) -> None:
        key = _session(cookie)
        await self._run.write(key, "DEL", key)

    async def login_failures(self, client: str) -> tuple[int, int]:
        """(failed logins in the current window, seconds until the window ends)."""
        key = _failures(client)
        count, ttl = await asyncio.gather(self._run.read("GET", key),
                                          self._run.read("TTL", key))
        return int(count or 0), max(0, int(ttl))

    async def login_failed(self, client: str, window_s: int) -> tuple[int, int]:
        """Count a failed login; (failures in the window, seconds until it ends)."""
        key = _failures(client)
        failures, ttl = await self._run.script(_LOGIN_FAILED, [key], [window_s])
        return int(failures), max(0, int(ttl))
