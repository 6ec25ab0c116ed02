"""Giving a hold back: a merchant's void, or the expiry (run by the worker).

A release is first marked (`releasing`, with what it ends as) by a compare-and-set from
`authorized` or `requires_action`: a capture (auth_capture.lua) also starts from
`authorized`, so only one of them ever takes the hold. Then `Release` goes out under the
authorization's one release number, as often as needed (the rail releases once), and
only the rail's confirmation, or a query showing no hold, ends it: `voided` / `expired`,
with its event written by that move, once.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import final

from adapters.base import RailError, RailResult, RailStatus
from adapters.commerce_ops import AuthorizationQuery, Release
from router.commerce.authorization_records import Authorization, AuthStatus
from router.commerce.authorizations import Authorizations, counted, keep
from router.errors import invalid_state
from router.payments.replies import Reply

log = logging.getLogger("payrouter.authorizations")

S = AuthStatus
# What the rail says of a hold that holds nothing (any more).
_NO_HOLD = frozenset({RailStatus.CLOSED, RailStatus.FAILED, RailStatus.NOT_FOUND})


@final
class Releases:
    __slots__ = ("desk",)

    def __init__(self, desk: Authorizations) -> None:
        self.desk = desk

    async def void(self, auth: Authorization) -> Reply:
        if auth.status is S.VOIDED:
            return Reply(200, auth.render())
        retry = auth.status is S.RELEASING and auth.state.release_to == S.VOIDED
        if not retry and auth.status not in (S.AUTHORIZED, S.REQUIRES_ACTION):
            raise invalid_state(f"A {auth.status} authorization cannot be voided.")
        released = await self.release(auth, S.VOIDED)
        if released.status is not S.VOIDED and released.state.release_to != S.VOIDED:
            raise invalid_state(f"The authorization is {released.status}; it was not voided.")
        return Reply(200, released.render())

    async def release(self, auth: Authorization, to: AuthStatus) -> Authorization:
        """Release the whole hold, ending as `to` (voided / expired)."""
        if auth.status is not S.RELEASING:
            auth = await self.desk.move(auth, S.RELEASING,
                                        lambda st: replace(st, release_to=to.value))
            if auth.status is not S.RELEASING or auth.state.release_to != to.value:
                return auth  # captured, released or settled meanwhile
        if not auth.state.rail_reference:
            auth = await self._learn_reference(auth)
            if auth.status is not S.RELEASING or not auth.state.rail_reference:
                return auth
        try:
            result = await self.desk.rails.call(auth.order.rail, self._op(auth))
        except RailError as err:
            log.warning("release of %s not confirmed (%s); asking the rail", auth.id, err.code)
            return await self._ask(auth)
        return await self.released(auth, result)

    async def released(self, auth: Authorization, result: RailResult) -> Authorization:
        """The rail's word on a release in flight (its answer, a notification)."""
        if auth.status is not S.RELEASING:
            return auth
        if result.status in (RailStatus.SUCCEEDED, RailStatus.CLOSED):
            return await self.desk.move(auth, _end(auth), keep)
        return await self._ask(auth)

    async def late_hold(self, auth: Authorization, result: RailResult) -> bool:
        """A hold the rail reports after its authorization ended (a payer confirming a
        voided one): it is released at once. True once the rail confirmed it, so a
        notification that brought it is resent until then."""
        if result.status is not RailStatus.SUCCEEDED:
            return True
        ref = result.rail_reference or auth.state.rail_reference
        if not ref:
            return False
        late = replace(auth, state=replace(auth.state, rail_reference=ref))
        try:
            answer = await self.desk.rails.call(auth.order.rail, self._op(late))
        except RailError as err:
            log.warning("late hold of %s not released (%s)", auth.id, err.code)
            return False
        return answer.status in (RailStatus.SUCCEEDED, RailStatus.CLOSED)

    def _op(self, auth: Authorization) -> Release:
        return Release(rail_auth_no=auth.rail_auth_no,
                       rail_reference=auth.state.rail_reference or "",
                       rail_request_no=auth.rail_release_no, amount=auth.order.amount,
                       reason="voided" if _end(auth) is S.VOIDED else "expired")

    async def _learn_reference(self, auth: Authorization) -> Authorization:
        """A hold never confirmed to the router has no rail number yet: the rail's query
        gives it (the payer may have confirmed meanwhile), or shows there is no hold."""
        try:
            result = await self.desk.rails.call(auth.order.rail,
                                                AuthorizationQuery(auth.rail_auth_no))
        except RailError:
            return await self.desk.move(auth, S.RELEASING, counted)
        if result.status in _NO_HOLD:
            return await self.desk.move(auth, _end(auth), keep)
        ref = result.rail_reference
        if not ref:
            return await self.desk.move(auth, S.RELEASING, counted)
        return await self.desk.move(auth, S.RELEASING,
                                    lambda st: replace(st, rail_reference=ref))

    async def _ask(self, auth: Authorization) -> Authorization:
        """A release refused or unanswered: a hold the rail shows ended is released;
        otherwise the worker sends the release again."""
        try:
            result = await self.desk.rails.call(auth.order.rail,
                                                AuthorizationQuery(auth.rail_auth_no))
        except RailError:
            result = None
        if result is not None and result.status in _NO_HOLD:
            return await self.desk.move(auth, _end(auth), keep)
        return await self.desk.move(auth, S.RELEASING, counted)


def _end(auth: Authorization) -> AuthStatus:
    return S(auth.state.release_to or S.VOIDED)
