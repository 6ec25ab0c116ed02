"""Signed JSON APIs (the bank's, WeChat Pay v3): verify the call, read its body, apply it
under the current faults and answer signed. A rail supplies its signing and its wording."""

from __future__ import annotations

import abc
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import final

from aiohttp import web

from adapters.simkit.delivery import Delivery
from adapters.simkit.replies import Refused, Reply
from adapters.simkit.runtime import SimRuntime, SimulatorOptions

# One call applied to the ledger: (request, JSON body or {}) -> the answer before signing.
ApiOp = Callable[[web.Request, Mapping[str, object]], Reply]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@final
@dataclass(frozen=True, slots=True)
class Refusals:
    """How a rail words the refusals any signed call can meet."""

    unauthentic: Reply  # signature, merchant or timestamp rejected
    not_an_object: Reply  # the body is not a JSON object
    system_error: Reply  # failed on purpose (error_rate): nothing was applied
    internal_error: Reply  # a bug in the simulator


class SignedRuntime(SimRuntime, abc.ABC):
    """A simulator whose rail answers signed JSON calls."""

    __slots__ = ("_refusals",)

    def __init__(self, options: SimulatorOptions, delivery: Delivery, refusals: Refusals) -> None:
        super().__init__(options, delivery)
        self._refusals = refusals

    @abc.abstractmethod
    def authentic(self, request: web.Request, body: bytes) -> bool:
        """Whether the call is signed by the merchant, fresh and addressed to us."""

    @abc.abstractmethod
    def answer(self, reply: Reply) -> web.Response:
        """`reply` signed as the rail signs its answers."""

    def api(self, op: ApiOp, *, has_body: bool) -> Handler:
        """The handler of one signed call: refuse, fail on purpose, or apply `op`."""

        async def handler(request: web.Request) -> web.StreamResponse:
            raw = await request.read()
            if not self.authentic(request, raw):
                return self.answer(self._refusals.unauthentic)
            return await self.perform(
                request,
                lambda: self._apply(op, request, raw, has_body),
                self.answer,
                lambda: self.answer(self._refusals.system_error),
            )

        return handler

    def _apply(self, op: ApiOp, request: web.Request, raw: bytes, has_body: bool) -> Reply:
        body: Mapping[str, object] = {}
        if has_body:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                return self._refusals.not_an_object
            body = parsed
        try:
            return op(request, body)
        except Refused as refused:
            return refused.reply
        except Exception:
            self.delivery.logger.exception(
                "%s simulator failed on %s %s", self.delivery.name, request.method, request.path
            )
            return self._refusals.internal_error
