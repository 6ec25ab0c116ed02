"""An authorization's worker, run by the sweeper for each `au:<id>` entry that comes due:
asks the rail about a hold whose outcome is unknown, settles a capture or a release in
flight, and at `expires_at` releases what is still held, exactly once.

Expiry is a compare-and-set into `releasing` (with `expired` as its end) before the
release is sent: it and a capture (auth_capture.lua) both start from `authorized`, so
only one of them ever takes the hold, and the `authorization.expired` event is written
once, by the move that ends it. A worker that dies mid-way leaves the entry due: the
next one sends the same release (same number) again.
"""

from __future__ import annotations

import logging
from typing import final

from adapters.base import Notification
from router.clock import Clock
from router.commerce.authorization_capture import Captures
from router.commerce.authorization_records import ENDED, PENDING, AuthStatus
from router.commerce.authorization_release import Releases
from router.commerce.authorizations import Authorizations
from router.store import keys
from router.store.store import Store

log = logging.getLogger("payrouter.authorizations")


@final
class AuthorizationWorker:
    __slots__ = ("authorizations", "captures", "clock", "releases", "store")

    def __init__(self, store: Store, authorizations: Authorizations, captures: Captures,
                 releases: Releases, clock: Clock) -> None:
        self.store = store
        self.authorizations = authorizations
        self.captures = captures
        self.releases = releases
        self.clock = clock

    async def on_notification(self, rail: str, note: Notification) -> bool:
        """A rail's verified word on an authorization; False when it names none of ours.
        During a capture it is news of the capture: the capture is looked at now."""
        number = note.rail_order_no
        auth = (await self.store.authorizations.load("auth_" + number.removeprefix("auth"))
                if number.startswith("auth") else None)
        if auth is None or auth.order.rail != rail or auth.rail_auth_no != number:
            log.warning("a %s authorization notification names no authorization of ours", rail)
            return False
        match auth.status:
            case AuthStatus.CAPTURING:
                await self.captures.check(auth)
            case AuthStatus.RELEASING:
                await self.releases.released(auth, note.result)
            case status if status in ENDED - {AuthStatus.CAPTURED}:
                return await self.releases.late_hold(auth, note.result)
            case _:
                await self.authorizations.apply(auth, note.result)
        return True

    async def work(self, auth_id: str) -> None:
        auth = await self.store.authorizations.load(auth_id)
        if auth is None:
            await self.store.due.reschedule(keys.shard_in(auth_id), f"au:{auth_id}", None)
            return
        expired = self.clock.now_ms() >= auth.order.expires_ms
        match auth.status:
            case AuthStatus.AUTHORIZED | AuthStatus.REQUIRES_ACTION if expired:
                await self.releases.release(auth, AuthStatus.EXPIRED)
            case status if status in PENDING:
                await self.authorizations.check(auth)
            case AuthStatus.CAPTURING:
                await self.captures.check(auth)
            case AuthStatus.RELEASING:
                await self.releases.release(
                    auth, AuthStatus(auth.state.release_to or AuthStatus.VOIDED))
            case _:
                # Authorized before its expiry (a clock ahead of ours), or ended.
                due = self.authorizations.due_ms(auth)
                await self.store.due.reschedule(keys.shard_in(auth_id), f"au:{auth_id}", due)
