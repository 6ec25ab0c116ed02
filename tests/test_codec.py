"""Stored bodies (idempotent answers, outbox events): compact and exact."""

from __future__ import annotations

import orjson
import pytest

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


def test_an_unknown_format_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown stored body version"):
        codec.unpack(b"\x7fdata")


def test_the_stored_bytes_stay_what_earlier_versions_wrote() -> None:
    # Whatever makes packing cheaper must not move its output by a byte (stored answers
    # are replayed byte for byte); another encoding takes another version byte.
    assert codec.pack(ANSWER).hex() == (
        "0243d26d6098179a68965698e2eb66e49f5ae5ef975be661e147869986c0e4047438819a265fd710"
        "e438ccca06920a80ee45540c88148810438d3ce7fc34507ea1280a8dad0c4dad8c0cf52ccc0df155"
        "19060875462075d8d23bc299a8491e264e9b540f339d60c2279cd3918d42cdf0d89309b472c25ede"
        "e0d60200")
    assert codec.pack(ANSWER) == codec.pack(ANSWER)  # no state carried between packs
