"""/v1/red_packets and /v1/transfers: a transfer is a red packet with one share that only
its recipient can take, so both go through `router/social/red_packets.py`."""

from __future__ import annotations

from aiohttp import web

from router.api.common import authenticate, idempotent, json_reply, scope_of, services
from router.api.schemas import decode
from router.api.schemas_social import (
    Empty,
    Funding,
    GrabCreate,
    RedPacketCreate,
    TransferCreate,
)
from router.merchants import Merchant
from router.payments.replies import Reply
from router.promotions.policies import Action
from router.social.packets import Kind
from router.social.records import LARGE_PAYOUT
from router.social.red_packets import NewPacket
from router.social.users import real_name_required
from router.validation import PaymentRequest

routes = web.RouteTableDef()


def _funding(f: Funding, amount: int, currency: str) -> PaymentRequest:
    # out_trade_no, description and metadata are the packet's, set when it is created.
    return PaymentRequest(amount=amount, currency=currency, out_trade_no="", description="",
                          scene=f.scene, method=f.method or None, payer=f.payer or {},
                          notify_url=None, metadata={})


@routes.post("/v1/red_packets")
async def create_red_packet(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    b = decode(raw, RedPacketCreate)
    req = NewPacket(Kind.RED_PACKET, b.out_red_packet_no, b.sender, "", b.amount, b.currency,
                    b.count, b.split, b.wishing or "", b.expires_in_s,
                    _funding(b.funding, b.amount, b.currency))
    create = svc.promotions.policies.guard(merchant, Action.RED_PACKET_CREATE,
                                           lambda: svc.social.packets.create(merchant, req))
    return await idempotent(request, scope_of(merchant), raw, create)


@routes.get("/v1/red_packets/{id}")
async def get_red_packet(request: web.Request) -> web.Response:
    return await _show(request, Kind.RED_PACKET)


@routes.post("/v1/red_packets/{id}/grabs")
async def grab(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request, limit=False)  # the grab script counts it
    raw = await request.read()
    user = decode(raw, GrabCreate).user
    packet_id = request.match_info["id"]
    return await idempotent(request, scope_of(merchant), raw,
                            lambda: svc.social.packets.grab(merchant, packet_id, user))


@routes.post("/v1/transfers")
async def create_transfer(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    b = decode(raw, TransferCreate)
    req = NewPacket(Kind.TRANSFER, b.out_transfer_no, b.sender, b.to, b.amount, b.currency,
                    1, "equal", b.message or "", b.expires_in_s,
                    _funding(b.funding, b.amount, b.currency))
    create = svc.promotions.policies.guard(merchant, Action.TRANSFER_CREATE,
                                           lambda: svc.social.packets.create(merchant, req))
    return await idempotent(request, scope_of(merchant), raw, create)


@routes.get("/v1/transfers/{id}")
async def get_transfer(request: web.Request) -> web.Response:
    return await _show(request, Kind.TRANSFER)


@routes.post("/v1/transfers/{id}/accept")
async def accept_transfer(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    decode(raw, Empty, empty_ok=True)
    packet = await svc.social.packets.owned(merchant, request.match_info["id"], Kind.TRANSFER)

    async def accept() -> Reply:
        recipient = await svc.social.users.verified(merchant.id, packet.order.recipient, "to",
                                                    fresh=True)
        name = None
        if packet.order.amount >= LARGE_PAYOUT:
            if not recipient.name:
                raise real_name_required("to")  # the rail must be given the verified name
            name = recipient.name
        await svc.social.packets.grab(merchant, packet.id, packet.order.recipient, "to", name)
        return await _view(merchant, packet.id, request)

    return await idempotent(request, scope_of(merchant), raw, accept)


@routes.post("/v1/transfers/{id}/decline")
async def decline_transfer(request: web.Request) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    raw = await request.read()
    decode(raw, Empty, empty_ok=True)
    packet = await svc.social.packets.owned(merchant, request.match_info["id"], Kind.TRANSFER)

    async def decline() -> Reply:
        await svc.social.worker.decline(packet)
        return await _view(merchant, packet.id, request)

    return await idempotent(request, scope_of(merchant), raw, decline)


async def _view(merchant: Merchant, packet_id: str, request: web.Request) -> Reply:
    svc = services(request)
    packet = await svc.social.packets.owned(merchant, packet_id, Kind.TRANSFER)
    return Reply.json(200, await svc.social.packets.render(packet, full_payment=True))


async def _show(request: web.Request, kind: Kind) -> web.Response:
    svc = services(request)
    merchant = await authenticate(request)
    packet = await svc.social.packets.owned(merchant, request.match_info["id"], kind)
    return json_reply(200, await svc.social.packets.render(packet, full_payment=True))
