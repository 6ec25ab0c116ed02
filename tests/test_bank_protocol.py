"""Bank rail: credential bundle, signing, and the adapter's pure build/parse."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from pathlib import Path

import pytest
from multidict import CIMultiDict

from adapters.bank import protocol
from adapters.bank.adapter import BankAdapter, create_adapter
from adapters.bank.protocol import BankCredentials, BundleError
from adapters.base import (
    AdapterConfig,
    Charge,
    Close,
    HttpRequest,
    HttpResponse,
    Query,
    RailError,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
)

NOW = 1_700_000_000.0
KEY = bytes(range(32))
CREDS = BankCredentials("BANK0123456789", KEY)
NONCE = "A" * 16 + "b" * 8 + "0123456Z"


def make_adapter(base_url: str = "http://bank.test:9101") -> BankAdapter:
    return BankAdapter("bank", base_url, CREDS, clock=lambda: NOW)


def charge(scene: str = "quickpay", **payer: str) -> Charge:
    return Charge(
        rail_order_no="ord_1",
        amount=1234,
        currency="CNY",
        scene=scene,
        description="coffee",
        payer=payer,
        notify_url="https://router.test/notify/bank",
    )


def answer(status: int, payload: object, *, now: float = NOW, key: bytes = KEY) -> HttpResponse:
    body = json.dumps(payload).encode()
    headers = protocol.sign_response(key, status, body, now=now, nonce=NONCE)
    return HttpResponse(status, headers, body)


ORDER_SUCCESS = {
    "order_no": "ord_1",
    "bank_txn_id": "BT20240101000000000001",
    "status": "SUCCESS",
    "amount": 1234,
    "currency": "CNY",
    "charged": 1234,
    "refunded": 200,
    "created_at": "2024-01-01T00:00:00Z",
    "paid_at": "2024-01-01T00:00:01Z",
}


# --------------------------------------------------------------------------- bundle
def test_bundle_is_created_private_and_stable(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    first = protocol.load_or_create_bundle(keys)
    assert first.merchant_id.startswith("BANK") and len(first.merchant_id) == 14
    assert len(first.hmac_key) == 32
    for name in ("merchant_id.txt", "hmac_key.txt"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    assert (keys / "hmac_key.txt").read_text().strip() == first.hmac_key.hex()
    assert protocol.load_or_create_bundle(keys) == first
    assert protocol.load_bundle(keys) == first
    assert not [p for p in keys.iterdir() if p.name.startswith(".tmp")]


def test_credentials_repr_hides_the_key() -> None:
    text = repr(CREDS) + str(CREDS)
    assert "BANK0123456789" in text
    assert KEY.hex() not in text and repr(KEY) not in text


def test_load_bundle_errors_do_not_leak(tmp_path: Path) -> None:
    with pytest.raises(BundleError):
        protocol.load_bundle(tmp_path)
    (tmp_path / "merchant_id.txt").write_text("BANK0000000001\n")
    (tmp_path / "hmac_key.txt").write_text("secretsecret-not-hex\n")
    with pytest.raises(BundleError) as info:
        protocol.load_bundle(tmp_path)
    assert "secretsecret" not in str(info.value)


# --------------------------------------------------------------------------- signing
def test_request_signature_is_hmac_over_the_documented_string() -> None:
    body = b'{"a":1}'
    headers = protocol.sign_request(CREDS, "post", "/v1/charges?x=1", body, now=NOW, nonce=NONCE)
    expected_msg = b"POST\n/v1/charges?x=1\n1700000000\n" + NONCE.encode() + b"\n" + body
    assert headers == {
        "Bank-Merchant-Id": "BANK0123456789",
        "Bank-Timestamp": "1700000000",
        "Bank-Nonce": NONCE,
        "Bank-Signature": hmac.new(KEY, expected_msg, hashlib.sha256).hexdigest(),
    }


def test_response_and_notification_strings() -> None:
    assert protocol.response_string(200, "17", "n", b"{}") == b"200\n17\nn\n{}"
    assert protocol.notification_string("17", "n", b"{}") == b"NOTIFY\n17\nn\n{}"


def test_verify_rejects_any_change() -> None:
    msg = protocol.response_string(200, "1700000000", NONCE, b"{}")
    good = protocol.sign(KEY, msg)
    assert protocol.verify(KEY, msg, good)
    assert protocol.verify(KEY, msg, good.upper())
    assert not protocol.verify(KEY, msg + b" ", good)
    assert not protocol.verify(b"x" * 32, msg, good)
    assert not protocol.verify(KEY, msg, "é" * 64)


def test_freshness_window_and_nonce_shape() -> None:
    assert protocol.is_fresh("1700000300", NOW)
    assert not protocol.is_fresh("1700000301", NOW)
    assert not protocol.is_fresh("1699999699", NOW)
    assert not protocol.is_fresh("-5", NOW) and not protocol.is_fresh("1e9", NOW)
    nonce = protocol.new_nonce()
    assert protocol.valid_nonce(nonce) and nonce != protocol.new_nonce()
    assert not protocol.valid_nonce("short") and not protocol.valid_nonce("-" * 32)


def test_header_lookup_ignores_case() -> None:
    assert protocol.get_header({"bank-nonce": "x"}, "Bank-Nonce") == "x"
    assert protocol.get_header(CIMultiDict({"BANK-NONCE": "y"}), "Bank-Nonce") == "y"
    assert protocol.get_header({}, "Bank-Nonce") is None


def test_money_checks() -> None:
    assert protocol.valid_amount(1) and not protocol.valid_amount(0)
    assert not protocol.valid_amount(True) and not protocol.valid_amount(1.0)
    assert not protocol.valid_amount(protocol.MAX_AMOUNT + 1)
    assert protocol.valid_currency("CNY") and not protocol.valid_currency("USD")
    assert protocol.valid_order_no("a-B_9") and not protocol.valid_order_no("a/b")


# --------------------------------------------------------------------------- build
def built(op: object) -> HttpRequest:
    request = make_adapter().build(op)  # type: ignore[arg-type]
    assert isinstance(request, HttpRequest)
    return request


def assert_signed(request: HttpRequest, path: str) -> None:
    h = request.headers
    msg = protocol.request_string(
        request.method, path, h["Bank-Timestamp"], h["Bank-Nonce"], request.body
    )
    assert h["Bank-Merchant-Id"] == CREDS.merchant_id
    assert h["Bank-Timestamp"] == "1700000000"
    assert protocol.verify(KEY, msg, h["Bank-Signature"])


def test_build_quickpay_charge() -> None:
    request = built(charge(auth_code="134567890123456781"))
    assert (request.method, request.url) == ("POST", "http://bank.test:9101/v1/charges")
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {
        "order_no": "ord_1",
        "amount": 1234,
        "currency": "CNY",
        "description": "coffee",
        "auth_code": "134567890123456781",
    }
    assert_signed(request, "/v1/charges")


def test_build_native_charge_carries_notify_url() -> None:
    request = built(charge("native"))
    assert request.url.endswith("/v1/qr-orders")
    assert json.loads(request.body)["notify_url"] == "https://router.test/notify/bank"


@pytest.mark.parametrize(
    "op",
    [
        charge(),  # quickpay without auth_code
        charge("jsapi", auth_code="1"),
        Charge("o", 0, "CNY", "quickpay", "", {"auth_code": "1"}, "http://n"),
        Charge("o", 5, "USD", "quickpay", "", {"auth_code": "1"}, "http://n"),
    ],
)
def test_build_refuses_bad_charges_definitively(op: Charge) -> None:
    with pytest.raises(RailError) as info:
        make_adapter().build(op)
    assert info.value.code == "INVALID_REQUEST" and info.value.definitive


def test_build_other_operations() -> None:
    query = built(Query("ord 1/x"))
    assert (query.method, query.body) == ("GET", b"")
    assert query.url == "http://bank.test:9101/v1/orders/ord%201%2Fx"
    assert_signed(query, "/v1/orders/ord%201%2Fx")
    assert built(Close("o1")).url.endswith("/v1/orders/o1/close")
    assert json.loads(built(Reverse("o1")).body) == {}
    refund = built(Refund("o1", "r1", 100, 1234, "CNY", "broken", "http://n/r"))
    assert json.loads(refund.body) == {
        "order_no": "o1",
        "refund_no": "r1",
        "amount": 100,
        "reason": "broken",
        "notify_url": "http://n/r",
    }
    assert built(RefundQuery("o1", "r1")).url.endswith("/v1/refunds/r1")


def test_build_signs_path_prefix_of_base_url() -> None:
    request = make_adapter("http://gw.test/bank/").build(Query("o1"))
    assert isinstance(request, HttpRequest)
    assert request.url == "http://gw.test/bank/v1/orders/o1"
    assert_signed(request, "/bank/v1/orders/o1")


# --------------------------------------------------------------------------- parse
def parse(op: object, response: HttpResponse) -> RailResult:
    return make_adapter().parse(op, response)  # type: ignore[arg-type]


def test_parse_success_order() -> None:
    result = parse(Query("ord_1"), answer(200, ORDER_SUCCESS))
    assert result == RailResult(
        RailStatus.SUCCEEDED,
        rail_reference="BT20240101000000000001",
        amount=1234,
        refunded_amount=200,
    )


def test_parse_waiting_qr_order_requires_action() -> None:
    qr = "bankqr://pay/ord_1?sig=0011223344556677"
    result = parse(
        charge("native"), answer(200, {**ORDER_SUCCESS, "status": "WAITING", "qr_code": qr})
    )
    assert result.status is RailStatus.REQUIRES_ACTION
    assert result.action is not None
    assert result.action.to_json() == {"type": "qr_code", "qr_code": qr}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("PAYING", RailStatus.PROCESSING),
        ("CLOSED", RailStatus.CLOSED),
        ("REVERSED", RailStatus.CLOSED),
    ],
)
def test_parse_order_statuses(status: str, expected: RailStatus) -> None:
    assert (
        parse(Reverse("ord_1"), answer(200, {**ORDER_SUCCESS, "status": status})).status is expected
    )


def test_parse_failed_order_keeps_failure_code() -> None:
    payload = {**ORDER_SUCCESS, "status": "FAILED", "failure_code": "INSUFFICIENT_FUNDS"}
    result = parse(Query("ord_1"), answer(200, payload))
    assert (result.status, result.failure_code) == (RailStatus.FAILED, "INSUFFICIENT_FUNDS")


def test_parse_refund() -> None:
    refund = {
        "refund_no": "r1",
        "order_no": "ord_1",
        "amount": 100,
        "status": "PROCESSING",
        "bank_refund_id": "BR1",
    }
    op = Refund("ord_1", "r1", 100, 1234, "CNY", "", "http://n")
    assert parse(op, answer(200, refund)) == RailResult(
        RailStatus.PROCESSING, rail_reference="BR1", amount=100
    )
    done = parse(RefundQuery("ord_1", "r1"), answer(200, {**refund, "status": "SUCCESS"}))
    assert done.status is RailStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("op", "status", "code", "definitive"),
    [
        (charge(auth_code="2"), 402, "INSUFFICIENT_FUNDS", True),
        (charge(auth_code="1"), 400, "INVALID_REQUEST", True),
        (charge(auth_code="1"), 401, "SIGNATURE_INVALID", True),
        (charge(auth_code="1"), 409, "ORDER_CLOSED", True),
        (charge(auth_code="1"), 409, "DUPLICATE_ORDER_NO", True),
        (Close("ord_1"), 409, "ORDER_PAID", True),
        (Close("ord_1"), 404, "ORDER_NOT_FOUND", True),
        (Refund("ord_1", "r1", 1, 1, "CNY", "", "http://n"), 422, "REFUND_EXCEEDS_AMOUNT", True),
        (Refund("ord_1", "r1", 1, 1, "CNY", "", "http://n"), 409, "ORDER_NOT_PAID", True),
        (charge(auth_code="1"), 500, "SYSTEM_ERROR", False),
        (charge(auth_code="1"), 503, "SYSTEM_ERROR", False),
        (charge(auth_code="1"), 409, "SOMETHING_NEW", False),
    ],
)
def test_parse_refusals(op: object, status: int, code: str, definitive: bool) -> None:
    with pytest.raises(RailError) as info:
        parse(op, answer(status, {"code": code, "message": "m"}))
    assert (info.value.code, info.value.definitive) == (code, definitive)


def test_parse_not_found_on_lookups_is_a_result() -> None:
    missing = parse(Query("ord_1"), answer(404, {"code": "ORDER_NOT_FOUND", "message": "m"}))
    assert missing.status is RailStatus.NOT_FOUND
    missing = parse(
        RefundQuery("o", "r1"), answer(404, {"code": "REFUND_NOT_FOUND", "message": ""})
    )
    assert missing.status is RailStatus.NOT_FOUND


@pytest.mark.parametrize(
    "response",
    [
        HttpResponse(200, {"Content-Type": "application/json"}, json.dumps(ORDER_SUCCESS).encode()),
        answer(200, ORDER_SUCCESS, key=b"k" * 32),
        answer(200, ORDER_SUCCESS, now=NOW - 301),
        HttpResponse(502, {}, b"<html>bad gateway</html>"),
    ],
    ids=["unsigned", "wrong-key", "stale", "proxy-error"],
)
def test_parse_unverifiable_is_never_trusted(response: HttpResponse) -> None:
    with pytest.raises(RailError) as info:
        parse(Query("ord_1"), response)
    assert info.value.code == "UNVERIFIABLE_RESPONSE" and not info.value.definitive


def test_parse_tampered_body() -> None:
    good = answer(200, {**ORDER_SUCCESS, "status": "FAILED"})
    forged = HttpResponse(200, good.headers, good.body.replace(b"FAILED", b"SUCCESS"))
    with pytest.raises(RailError) as info:
        parse(Query("ord_1"), forged)
    assert not info.value.definitive


@pytest.mark.parametrize(
    "payload",
    [
        "not an object",
        {**ORDER_SUCCESS, "order_no": "someone_else"},
        {**ORDER_SUCCESS, "status": "TELEPORTED"},
        {**ORDER_SUCCESS, "amount": "1234"},
    ],
)
def test_parse_malformed_signed_answers(payload: object) -> None:
    with pytest.raises(RailError) as info:
        parse(Query("ord_1"), answer(200, payload))
    assert info.value.code == "MALFORMED_RESPONSE" and not info.value.definitive


def test_parse_accepts_lowercase_headers() -> None:
    good = answer(200, ORDER_SUCCESS)
    lowered = {k.lower(): v for k, v in good.headers.items()}
    result = parse(Query("ord_1"), HttpResponse(200, lowered, good.body))
    assert result.status is RailStatus.SUCCEEDED


# --------------------------------------------------------------------------- notifications
def notification(
    event: str, data: dict[str, object], *, now: float = NOW
) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"id": "ntf_1", "event": event, "data": data}).encode()
    return protocol.sign_notification(KEY, body, now=now, nonce=NONCE), body


def test_verify_payment_notification_with_any_header_case() -> None:
    headers, body = notification("order.paid", ORDER_SUCCESS)
    for variant in (headers, CIMultiDict(headers), {k.upper(): v for k, v in headers.items()}):
        note = make_adapter().verify_notification(variant, body)
        assert (note.kind, note.rail_order_no, note.rail_refund_no) == ("payment", "ord_1", None)
        assert note.result.status is RailStatus.SUCCEEDED


def test_verify_refund_notification() -> None:
    data = {
        "refund_no": "r1",
        "order_no": "ord_1",
        "amount": 5,
        "status": "SUCCESS",
        "bank_refund_id": "BR9",
    }
    note = make_adapter().verify_notification(*notification("refund.succeeded", data))
    assert (note.kind, note.rail_order_no, note.rail_refund_no) == ("refund", "ord_1", "r1")
    assert note.result == RailResult(RailStatus.SUCCEEDED, rail_reference="BR9", amount=5)


def test_verify_failed_order_notification() -> None:
    data = {**ORDER_SUCCESS, "status": "FAILED", "failure_code": "CARD_DECLINED"}
    note = make_adapter().verify_notification(*notification("order.failed", data))
    assert (note.result.status, note.result.failure_code) == (RailStatus.FAILED, "CARD_DECLINED")


def test_bad_notifications_are_unverifiable() -> None:
    adapter = make_adapter()
    headers, body = notification("order.paid", ORDER_SUCCESS)
    cases = [
        (headers, body + b" "),
        ({**headers, "Bank-Signature": "0" * 64}, body),
        notification("order.paid", ORDER_SUCCESS, now=NOW + 400),
        notification("order.teleported", ORDER_SUCCESS),
        notification("order.paid", {"order_no": "ord_1"}),
        ({}, body),
    ]
    for case_headers, case_body in cases:
        with pytest.raises(RailError) as info:
            adapter.verify_notification(case_headers, case_body)
        assert info.value.code == "NOTIFICATION_UNVERIFIABLE" and not info.value.definitive


def test_notification_reply() -> None:
    adapter = make_adapter()
    assert adapter.notification_reply(True) == HttpResponse(
        200, {"Content-Type": "application/json"}, b'{"ok":true}'
    )
    refused = adapter.notification_reply(False)
    assert (refused.status, refused.body) == (400, b'{"ok":false}')


# --------------------------------------------------------------------------- factory
def test_create_adapter_reads_the_bundle(tmp_path: Path) -> None:
    creds = protocol.load_or_create_bundle(tmp_path)
    adapter = create_adapter(AdapterConfig("bank", "http://127.0.0.1:9101/", tmp_path))
    assert adapter.name == "bank" and adapter.scenes == frozenset({"quickpay", "native"})
    assert creds.hmac_key.hex() not in repr(adapter)
    request = adapter.build(Query("o1"))
    assert isinstance(request, HttpRequest)
    assert request.url == "http://127.0.0.1:9101/v1/orders/o1"
    assert request.headers["Bank-Merchant-Id"] == creds.merchant_id


def test_create_adapter_requires_an_existing_bundle(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        create_adapter(AdapterConfig("bank", "http://x", None))
    with pytest.raises(BundleError):
        create_adapter(AdapterConfig("bank", "http://x", tmp_path / "absent"))
