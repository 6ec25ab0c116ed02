"""Stored bodies (idempotent answers, outbox events): compact, exact, and readable in
every format ever written."""

from __future__ import annotations

import zlib

import msgpack
import orjson
import pytest

from router.domain import Payment, RailState, Status
from router.store import codec

ANSWER = orjson.dumps({
    "id": "pay_01nUa6fqdMF2OezONmvH8N", "object": "payment", "status": "succeeded",
    "amount": 1000, "currency": "CNY", "out_trade_no": "o-1", "scene": "quickpay",
    "method": "instant", "adapter": "instant", "description": "Coffee", "refunded_amount": 0,
    "metadata": {}, "created_at": "2026-11-22T03:15:21.871Z",
    "updated_at": "2026-11-22T03:15:21.872Z",
    "routing": {"chosen": "instant", "candidates": ["instant"],
                "reason": "method named by the request", "strategy": "priority",
                "considered": [{"rail": "instant", "rank": 1, "breaker": "closed"}]},
    "attempts": [{"number": 1, "adapter": "instant",
                  "rail_order_no": "01nUa6fqdMF2OezONmvH8N_1"}],
    "rail_reference": "inst_01nUa6fqdMF2OezONmvH8N_1",
})


@pytest.mark.parametrize("body", [ANSWER, b"{}", b'{"error":{"code":"x"}}' * 3,
                                  bytes(range(256)) * 4])
def test_round_trip_is_exact(body: bytes) -> None:
    assert codec.unpack(codec.pack(body)) == body


def test_a_payment_answer_packs_small() -> None:
    assert len(codec.pack(ANSWER)) < len(ANSWER) / 4


def test_bodies_written_in_the_first_format_stay_readable() -> None:
    compressor = zlib.compressobj(1, zlib.DEFLATED, -11, 1, zlib.Z_DEFAULT_STRATEGY,
                                  codec._DICT_V1)
    stored_v1 = b"\x01" + compressor.compress(ANSWER) + compressor.flush()
    assert codec.unpack(stored_v1) == ANSWER


def test_an_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown stored body version"):
        codec.unpack(b"\x7fdata")


def test_payment_records_written_before_compression_stay_readable() -> None:
    payment = Payment(
        id="pay_01nUa6fqdMF2OezONmvH8N", merchant_id="mch_1", amount=1000, currency="CNY",
        out_trade_no="o-1", scene="quickpay", method="instant", description="Coffee",
        payer={"auth_code": "134567890100000001"}, notify_url=None, metadata={},
        routing={"chosen": "instant"}, created_ms=1, status=Status.PROCESSING, version=1,
        updated_ms=1, refunded_amount=0, rail=RailState([]))
    fields = {b"d": payment.pack_creation(), b"x": payment.rail.pack(), b"s": b"processing",
              b"v": b"1", b"u": b"1"}
    assert fields[b"d"][:1] == b"\x02"  # compressed now
    assert Payment.from_hash(fields) == payment
    bare = msgpack.unpackb(codec.unpack(fields[b"d"]))
    fields[b"d"] = msgpack.packb(bare)  # as older versions wrote it
    assert Payment.from_hash(fields) == payment
