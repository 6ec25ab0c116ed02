"""Alipay rail: credential bundle, RSA2 signing, raw-answer verification, money, and the
adapter's pure build/parse over recorded payloads."""

from __future__ import annotations

import base64
import json
import random
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.alipay import protocol
from adapters.alipay.adapter import AlipayAdapter, create_adapter, gateway_url
from adapters.alipay.protocol import AlipayCredentials, BundleError, SubCode, TradeStatus
from adapters.base import (
    AdapterConfig,
    Charge,
    Close,
    HttpRequest,
    HttpResponse,
    Operation,
    Query,
    RailError,
    RailResult,
    RailStatus,
    Refund,
    RefundQuery,
    Reverse,
)

NOW = 1_700_000_000.0  # 2023-11-15 06:13:20 in Beijing
GATEWAY = "https://openapi.alipay.com/gateway.do"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AlipayCredentials]:
    keys = tmp_path_factory.mktemp("alipay") / "keys"
    return keys, protocol.load_or_create_bundle(keys)


@pytest.fixture(scope="module")
def creds(bundle: tuple[Path, AlipayCredentials]) -> AlipayCredentials:
    return bundle[1]


@pytest.fixture(scope="module")
def adapter(creds: AlipayCredentials) -> AlipayAdapter:
    return AlipayAdapter("alipay", "https://openapi.alipay.com", creds, clock=lambda: NOW)


def sim_key(creds: AlipayCredentials) -> rsa.RSAPrivateKey:
    assert creds.alipay_private_key is not None
    return creds.alipay_private_key


def charge(scene: str = "native", amount: int = 1234, **payer: str) -> Charge:
    return Charge(
        rail_order_no="ord_1",
        amount=amount,
        currency="CNY",
        scene=scene,
        description="coffee",
        payer=payer,
        notify_url="https://router.test/v1/notify/alipay",
        metadata={"return_url": "https://shop.test/back"},
    )


REFUND = Refund("ord_1", "ref_1", 200, 1234, "CNY", "broken", "https://router.test/n")


def form(request: HttpRequest | str) -> dict[str, str]:
    text = request if isinstance(request, str) else request.body.decode("ascii")
    return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True))


def answer(
    creds: AlipayCredentials, method: str, payload: dict[str, Any], *, key: str | None = None
) -> HttpResponse:
    name = key or protocol.response_key(method)
    body = protocol.signed_answer(name, payload, sim_key(creds))
    return HttpResponse(200, {"Content-Type": "application/json;charset=utf-8"}, body)


def ok(**fields: Any) -> dict[str, Any]:
    return {"code": "10000", "msg": "Success", **fields}


def failed(code: str, sub_code: str | None = None, **fields: Any) -> dict[str, Any]:
    payload = {"code": code, "msg": "Failed", **fields}
    if sub_code:
        payload |= {"sub_code": sub_code, "sub_msg": "refused"}
    return payload


# --------------------------------------------------------------------------- bundle
def test_bundle_files_are_private_complete_and_stable(
    bundle: tuple[Path, AlipayCredentials],
) -> None:
    keys, first = bundle
    names = {p.name for p in keys.iterdir() if not p.name.startswith(".")}
    assert names == {
        "app_id.txt", "app_private_key.pem", "app_public_key.pem",
        "alipay_public_key.pem", "alipay_private_key.pem",
    }
    for name in names:
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    assert len(first.app_id) == 16 and first.app_id.isdigit()
    again = protocol.load_or_create_bundle(keys)
    assert again.app_id == first.app_id
    assert again.alipay_public_key.public_numbers() == first.alipay_public_key.public_numbers()
    merchant = protocol.load_bundle(keys)
    assert merchant.alipay_private_key is None  # the adapter never holds Alipay's key
    assert "BEGIN PRIVATE KEY" in (keys / "app_private_key.pem").read_text()
    assert "BEGIN PUBLIC KEY" in (keys / "alipay_public_key.pem").read_text()


def test_credentials_repr_hides_keys(creds: AlipayCredentials) -> None:
    text = repr(creds) + str(creds)
    assert creds.app_id in text and "redacted" in text and "RSA" not in text


def test_bare_base64_keys_are_accepted(
    bundle: tuple[Path, AlipayCredentials], tmp_path: Path
) -> None:
    keys, creds = bundle
    for name in ("app_id.txt", "alipay_public_key.pem"):
        (tmp_path / name).write_text((keys / name).read_text())
    der = creds.app_private_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "app_private_key.pem").write_text(base64.b64encode(der).decode())
    loaded = protocol.load_bundle(tmp_path)
    assert loaded.app_public_key.public_numbers() == creds.app_public_key.public_numbers()


def test_bundle_errors_do_not_leak(bundle: tuple[Path, AlipayCredentials], tmp_path: Path) -> None:
    keys, _ = bundle
    with pytest.raises(BundleError):
        protocol.load_bundle(tmp_path)
    for name in ("app_id.txt", "app_private_key.pem", "alipay_public_key.pem"):
        (tmp_path / name).write_text((keys / name).read_text())
    # A public half that belongs to another pair is caught at load time.
    (tmp_path / "app_public_key.pem").write_text((keys / "alipay_public_key.pem").read_text())
    with pytest.raises(BundleError, match="does not match"):
        protocol.load_bundle(tmp_path)
    (tmp_path / "app_public_key.pem").unlink()
    secret = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0c2VjcmV0\n-----END PRIVATE KEY-----\n"
    (tmp_path / "app_private_key.pem").write_text(secret)
    with pytest.raises(BundleError) as info:
        protocol.load_bundle(tmp_path)
    assert "c2VjcmV0" not in str(info.value)
    # A real bundle (Alipay's public key, no private half) cannot back a simulator.
    (tmp_path / "app_private_key.pem").write_text((keys / "app_private_key.pem").read_text())
    with pytest.raises(BundleError, match="cannot be simulated"):
        protocol.load_or_create_bundle(tmp_path)


# --------------------------------------------------------------------------- signing
def test_request_content_sorts_drops_empties_and_keeps_sign_type() -> None:
    params = {"b": "2", "a": "1", "sign": "x", "sign_type": "RSA2", "empty": "", "c": "a=b&c"}
    assert protocol.request_content(params) == "a=1&b=2&c=a=b&c&sign_type=RSA2"
    assert protocol.notification_content(params) == "a=1&b=2&c=a=b&c"


def test_rsa2_is_sha256_pkcs1v15_over_the_content(creds: AlipayCredentials) -> None:
    params = {"app_id": creds.app_id, "method": "alipay.trade.query", "biz_content": '{"a":"茶"}'}
    signed = protocol.sign_params(creds.app_private_key, params)
    raw = base64.b64decode(signed["sign"])
    content = f'app_id={creds.app_id}&biz_content={{"a":"茶"}}&method=alipay.trade.query'
    creds.app_public_key.verify(raw, content.encode(), padding.PKCS1v15(), hashes.SHA256())
    assert protocol.verify_request_params(creds.app_public_key, signed)
    assert not protocol.verify_request_params(creds.app_public_key, {**signed, "x": "1"})
    assert not protocol.verify_request_params(creds.app_public_key, {**signed, "sign": "@@"})
    assert not protocol.verify_request_params(creds.alipay_public_key, signed)


def test_signed_section_finds_the_exact_raw_text(creds: AlipayCredentials) -> None:
    inner = '{ "code" : "10000", "msg":"Su}c{cess", "n":{"x":[1,{"y":"}"}]} }'
    sig = protocol.rsa2_sign(sim_key(creds), inner)
    text = f'{{"alipay_trade_query_response" : {inner} ,\n "sign":"{sig}"}}'
    found = protocol.signed_section(text, ("alipay_trade_query_response",))
    assert found == ("alipay_trade_query_response", inner, sig)
    assert protocol.rsa2_verify(creds.alipay_public_key, found[1], found[2])
    tampered = text.replace('"10000"', '"10001"')
    found = protocol.signed_section(tampered, ("alipay_trade_query_response",))
    assert found is not None
    assert not protocol.rsa2_verify(creds.alipay_public_key, found[1], found[2])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"alipay_trade_query_response":{"code":"10000"}}',  # no sign
        '{"alipay_trade_query_response":{"code":"10000"},"sign":5}',
        '{"alipay_trade_query_response":"x","sign":"s"}',
        '{"alipay_trade_query_response":{},"alipay_trade_query_response":{},"sign":"s"}',
        '{"alipay_trade_query_response":{},"sign":"s"} trailing',
        '{"other_response":{},"sign":"s"}',
        '{"alipay_trade_query_response":' + "[" * 100_000 + "]" * 100_000 + ',"sign":"s"}',
    ],
)
def test_signed_section_refuses_odd_answers(text: str) -> None:
    assert protocol.signed_section(text, ("alipay_trade_query_response",)) is None


# --------------------------------------------------------------------------- money
def test_fen_and_yuan_round_trip_exactly() -> None:
    rng = random.Random(20240601)
    edges = [1, 9, 10, 99, 100, 101, 1000, 1999, 10**10 - 1, 10**10]
    values = edges + [rng.randrange(1, 10**10) for _ in range(20000)]
    values += [rng.randrange(1, 10**4) for _ in range(5000)]  # dense small amounts
    for fen in values:
        text = protocol.fen_to_yuan(fen)
        assert protocol.yuan_to_fen(text) == fen
        whole, frac = text.split(".")
        assert len(frac) == 2 and int(whole) * 100 + int(frac) == fen
    assert protocol.fen_to_yuan(1000) == "10.00" and protocol.fen_to_yuan(5) == "0.05"
    # 0.29 * 100 is 28.999… in floating point: the exact path must not care.
    assert protocol.yuan_to_fen("0.29") == 29 and protocol.yuan_to_fen("1.15") == 115


@pytest.mark.parametrize(
    "text",
    ["10", "10.0", "10.000", "-1.00", "+1.00", " 1.00", "1.00\n", "1,00", ".50", "1e2",
     "１.００", "١.٠٠", "NaN", "1.0a", "1234567890123.00"],
)
def test_yuan_rejects_anything_but_two_decimals(text: str) -> None:
    with pytest.raises(ValueError):
        protocol.yuan_to_fen(text)


def test_fen_to_yuan_refuses_non_integers() -> None:
    for bad in (1.5, -1, True, "10"):
        with pytest.raises(ValueError):
            protocol.fen_to_yuan(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- build
def built(adapter: AlipayAdapter, op: Operation) -> tuple[dict[str, str], dict[str, Any]]:
    request = adapter.build(op)
    assert isinstance(request, HttpRequest)
    assert (request.method, request.url) == ("POST", GATEWAY)
    assert request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    params = form(request)
    return params, json.loads(params["biz_content"])


def test_common_params_are_signed(adapter: AlipayAdapter, creds: AlipayCredentials) -> None:
    params, biz = built(adapter, charge("native"))
    assert {k: v for k, v in params.items() if k not in ("sign", "biz_content")} == {
        "app_id": creds.app_id,
        "method": "alipay.trade.precreate",
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2023-11-15 06:13:20",
        "version": "1.0",
        "notify_url": "https://router.test/v1/notify/alipay",
    }
    assert biz == {"out_trade_no": "ord_1", "total_amount": "12.34", "subject": "coffee"}
    assert protocol.verify_request_params(creds.app_public_key, params)


@pytest.mark.parametrize(("code", "scene"), [("283456789012345671", "bar_code"),
                                             ("fp0123456789", "security_code")])
def test_quickpay_scene_follows_the_code(adapter: AlipayAdapter, code: str, scene: str) -> None:
    params, biz = built(adapter, charge("quickpay", auth_code=code))
    assert params["method"] == "alipay.trade.pay"
    assert (biz["auth_code"], biz["scene"], biz["product_code"]) == (
        code, scene, "FACE_TO_FACE_PAYMENT")


def test_create_carries_the_buyer(adapter: AlipayAdapter) -> None:
    params, biz = built(adapter, charge("jsapi", buyer_id="2088000000000001"))
    assert params["method"] == "alipay.trade.create" and biz["buyer_id"] == "2088000000000001"
    _, biz = built(adapter, charge("mini_program", buyer_open_id="oid", op_app_id="2021"))
    assert (biz["buyer_open_id"], biz["op_app_id"]) == ("oid", "2021")


def test_app_and_h5_are_signed_strings_without_a_call(
    adapter: AlipayAdapter, creds: AlipayCredentials
) -> None:
    app = adapter.build(charge("app"))
    assert isinstance(app, RailResult) and app.status is RailStatus.REQUIRES_ACTION
    assert app.action is not None and app.action.type == "sdk_params"
    params = form(str(app.action.data["order_string"]))
    assert params["method"] == "alipay.trade.app.pay"
    assert json.loads(params["biz_content"])["product_code"] == "QUICK_MSECURITY_PAY"
    assert protocol.verify_request_params(creds.app_public_key, params)

    h5 = adapter.build(charge("h5"))
    assert isinstance(h5, RailResult) and h5.action is not None and h5.action.type == "redirect"
    url = urlsplit(str(h5.action.data["url"]))
    assert f"{url.scheme}://{url.netloc}{url.path}" == GATEWAY
    params = form(url.query)
    assert (params["method"], params["return_url"]) == (
        "alipay.trade.wap.pay", "https://shop.test/back")
    assert json.loads(params["biz_content"])["product_code"] == "QUICK_WAP_WAY"
    assert protocol.verify_request_params(creds.app_public_key, params)


def test_other_operations(adapter: AlipayAdapter) -> None:
    cases: list[tuple[Operation, str, dict[str, Any]]] = [
        (Query("ord_1"), "alipay.trade.query", {"out_trade_no": "ord_1"}),
        (Close("ord_1"), "alipay.trade.close", {"out_trade_no": "ord_1"}),
        (Reverse("ord_1"), "alipay.trade.cancel", {"out_trade_no": "ord_1"}),
        (REFUND, "alipay.trade.refund", {"out_trade_no": "ord_1", "refund_amount": "2.00",
                                         "out_request_no": "ref_1", "refund_reason": "broken"}),
        (RefundQuery("ord_1", "ref_1"), "alipay.trade.fastpay.refund.query",
         {"out_trade_no": "ord_1", "out_request_no": "ref_1"}),
    ]
    for op, method, expected in cases:
        params, biz = built(adapter, op)
        assert (params["method"], biz) == (method, expected)
        assert "notify_url" not in params


def test_service_provider_token_is_sent(creds: AlipayCredentials, tmp_path: Path) -> None:
    provider = AlipayAdapter("a", GATEWAY, creds, app_auth_token="tok", clock=lambda: NOW)
    params, _ = built(provider, Query("ord_1"))
    assert params["app_auth_token"] == "tok"
    assert gateway_url("http://127.0.0.1:9301/") == "http://127.0.0.1:9301/gateway.do"
    assert gateway_url(GATEWAY) == GATEWAY


@pytest.mark.parametrize(
    "op",
    [
        charge("quickpay"),  # no auth_code
        charge("jsapi"),  # no buyer
        charge("desktop"),
        charge(amount=0),
        charge(amount=10**10 + 1),
        Charge("ord-1", 100, "CNY", "native", "x", {}, "http://n"),
        Charge("ord_1", 100, "USD", "native", "x", {}, "http://n"),
        Refund("ord_1", "ref 1", 100, 100, "CNY", "", "http://n"),
    ],
)
def test_invalid_requests_are_refused_definitively(adapter: AlipayAdapter, op: Operation) -> None:
    with pytest.raises(RailError) as info:
        adapter.build(op)
    assert (info.value.code, info.value.definitive) == ("INVALID_REQUEST", True)


def test_create_adapter_reads_the_bundle_and_options(
    bundle: tuple[Path, AlipayCredentials],
) -> None:
    keys, _ = bundle
    config = AdapterConfig("alipay", "http://127.0.0.1:9301", keys,
                           {"app_auth_token": "t", "seller_id": "2088000000000009"})
    made = create_adapter(config)
    assert made.name == "alipay" and "jsapi" in made.scenes
    assert "9301/gateway.do" in repr(made) and "PRIVATE" not in repr(made)
    with pytest.raises(ValueError):
        create_adapter(AdapterConfig("alipay", "http://x", None))
    with pytest.raises(ValueError):
        create_adapter(AdapterConfig("alipay", "http://x", keys, {"seller_id": 5}))


# --------------------------------------------------------------------------- parse
PAY = charge("quickpay", auth_code="283456789012345671")
PAID = ok(out_trade_no="ord_1", trade_no="2023111522001400001", total_amount="12.34",
          receipt_amount="12.34", buyer_user_id="2088000000000001")


def parse(adapter: AlipayAdapter, creds: AlipayCredentials, op: Operation, method: str,
          payload: dict[str, Any], **kw: Any) -> RailResult:
    return adapter.parse(op, answer(creds, method, payload, **kw))


def refusal(adapter: AlipayAdapter, creds: AlipayCredentials, op: Operation, method: str,
            payload: dict[str, Any], **kw: Any) -> RailError:
    with pytest.raises(RailError) as info:
        parse(adapter, creds, op, method, payload, **kw)
    return info.value


def test_charge_answers(adapter: AlipayAdapter, creds: AlipayCredentials) -> None:
    qr = parse(adapter, creds, charge("native"), "alipay.trade.precreate",
               ok(out_trade_no="ord_1", qr_code="https://qr.alipay.com/bax1"))
    assert qr.status is RailStatus.REQUIRES_ACTION and qr.action is not None
    assert qr.action.to_json() == {"type": "qr_code", "qr_code": "https://qr.alipay.com/bax1"}

    paid = parse(adapter, creds, PAY, "alipay.trade.pay", PAID)
    assert (paid.status, paid.amount, paid.rail_reference) == (
        RailStatus.SUCCEEDED, 1234, "2023111522001400001")
    waiting = parse(adapter, creds, PAY, "alipay.trade.pay",
                    {"code": "10003", "msg": "wait", "trade_no": "T1"})
    assert (waiting.status, waiting.rail_reference) == (RailStatus.PROCESSING, "T1")

    page = parse(adapter, creds, charge("jsapi", buyer_id="2088"), "alipay.trade.create",
                 ok(out_trade_no="ord_1", trade_no="T2"))
    assert page.action is not None and page.action.to_json() == {
        "type": "sdk_params", "trade_no": "T2"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (TradeStatus.WAIT_BUYER_PAY, RailStatus.REQUIRES_ACTION),
        (TradeStatus.TRADE_SUCCESS, RailStatus.SUCCEEDED),
        (TradeStatus.TRADE_FINISHED, RailStatus.SUCCEEDED),
        (TradeStatus.TRADE_CLOSED, RailStatus.CLOSED),
    ],
)
def test_query_maps_every_trade_status(
    adapter: AlipayAdapter, creds: AlipayCredentials, status: TradeStatus, expected: RailStatus
) -> None:
    result = parse(adapter, creds, Query("ord_1"), "alipay.trade.query",
                   ok(out_trade_no="ord_1", trade_no="T", trade_status=status.value,
                      total_amount="12.34"))
    assert (result.status, result.amount, result.rail_reference) == (expected, 1234, "T")


@pytest.mark.parametrize(
    ("code", "sub_code", "definitive"),
    [
        ("20000", "isp.unknow-error", False),
        ("20000", None, False),
        ("20001", "aop.invalid-auth-token", True),
        ("40001", "isv.missing-signature", True),
        ("40002", "isv.invalid-app-id", True),
        ("40002", "isv.invalid-signature", True),
        ("40004", "ACQ.SOMETHING_NEW", False),
        ("40004", None, False),
        ("99999", None, False),
        ("10003", None, False),  # only trade.pay may be in progress
    ],
)
def test_codes_on_a_query(
    adapter: AlipayAdapter, creds: AlipayCredentials, code: str, sub_code: str | None,
    definitive: bool,
) -> None:
    err = refusal(adapter, creds, Query("ord_1"), "alipay.trade.query", failed(code, sub_code))
    assert err.definitive is definitive
    if sub_code and code != "40004":
        assert err.code == sub_code


_NOT_FOUND = RailStatus.NOT_FOUND
_CLOSED = RailStatus.CLOSED
_OPS: dict[str, tuple[Operation, str]] = {
    "charge": (PAY, "alipay.trade.pay"),
    "query": (Query("ord_1"), "alipay.trade.query"),
    "close": (Close("ord_1"), "alipay.trade.close"),
    "reverse": (Reverse("ord_1"), "alipay.trade.cancel"),
    "refund": (REFUND, "alipay.trade.refund"),
    "refund_query": (RefundQuery("ord_1", "ref_1"), "alipay.trade.fastpay.refund.query"),
}
# For every documented sub_code and operation: a result status, or (definitive,) of the error.
_SUB_CODES: dict[SubCode, dict[str, RailStatus | bool]] = {
    SubCode.SYSTEM_ERROR: dict.fromkeys(_OPS, False),
    SubCode.TRADE_HAS_SUCCESS: {**dict.fromkeys(_OPS, True), "charge": False},
    SubCode.TRADE_HAS_CLOSE: {**dict.fromkeys(_OPS, True), "close": _CLOSED, "reverse": _CLOSED},
    SubCode.TRADE_NOT_EXIST: {"charge": False, "query": _NOT_FOUND, "close": _NOT_FOUND,
                              "reverse": _NOT_FOUND, "refund": True, "refund_query": _NOT_FOUND},
    **{
        sub: dict.fromkeys(_OPS, True)
        for sub in (
            SubCode.CONTEXT_INCONSISTENT, SubCode.BUYER_BALANCE_NOT_ENOUGH,
            SubCode.BUYER_BANKCARD_BALANCE_NOT_ENOUGH, SubCode.PAYMENT_AUTH_CODE_INVALID,
            SubCode.TRADE_BUYER_NOT_MATCH, SubCode.TOTAL_FEE_EXCEED, SubCode.INVALID_PARAMETER,
            SubCode.REFUND_AMT_NOT_EQUAL_TOTAL, SubCode.SELLER_BALANCE_NOT_ENOUGH,
            SubCode.TRADE_HAS_FINISHED, SubCode.TRADE_STATUS_ERROR,
        )
    },
}


def test_sub_code_table_is_complete() -> None:
    assert set(_SUB_CODES) == set(SubCode)


@pytest.mark.parametrize("sub", list(SubCode))
@pytest.mark.parametrize("op_name", list(_OPS))
def test_every_sub_code_on_every_operation(
    adapter: AlipayAdapter, creds: AlipayCredentials, sub: SubCode, op_name: str
) -> None:
    op, method = _OPS[op_name]
    expected = _SUB_CODES[sub][op_name]
    payload = failed("40004", sub.value)
    if isinstance(expected, RailStatus):
        assert parse(adapter, creds, op, method, payload).status is expected
    else:
        err = refusal(adapter, creds, op, method, payload)
        assert (err.code, err.definitive) == (sub.value, expected)


def test_cancel_answers(adapter: AlipayAdapter, creds: AlipayCredentials) -> None:
    op, method = _OPS["reverse"]
    for action in ("close", "refund"):
        result = parse(adapter, creds, op, method, ok(retry_flag="N", action=action,
                                                      trade_no="T", out_trade_no="ord_1"))
        assert (result.status, result.rail_reference) == (RailStatus.CLOSED, "T")
    err = refusal(adapter, creds, op, method, ok(retry_flag="Y"))
    assert (err.code, err.definitive) == ("CANCEL_RETRY", False)
    err = refusal(adapter, creds, op, method,
                  failed("40004", "ACQ.TRADE_STATUS_ERROR", retry_flag="Y"))
    assert err.definitive is False  # Alipay says try again: nothing is settled


def test_refund_answers(adapter: AlipayAdapter, creds: AlipayCredentials) -> None:
    moved = parse(adapter, creds, REFUND, "alipay.trade.refund",
                  ok(out_trade_no="ord_1", trade_no="T", fund_change="Y", refund_fee="5.00"))
    assert (moved.status, moved.amount, moved.refunded_amount) == (RailStatus.SUCCEEDED, 200, 500)
    same = parse(adapter, creds, REFUND, "alipay.trade.refund",
                 ok(out_trade_no="ord_1", fund_change="N", refund_fee="5.00"))
    assert same.status is RailStatus.PROCESSING

    op, method = _OPS["refund_query"]
    done = parse(adapter, creds, op, method,
                 ok(out_trade_no="ord_1", out_request_no="ref_1", refund_status="REFUND_SUCCESS",
                    refund_amount="2.00", trade_no="T"))
    assert (done.status, done.amount) == (RailStatus.SUCCEEDED, 200)
    assert parse(adapter, creds, op, method, ok()).status is RailStatus.NOT_FOUND
    odd = parse(adapter, creds, op, method, ok(refund_status="REFUND_PROCESSING"))
    assert odd.status is RailStatus.PROCESSING


def test_close_answer(adapter: AlipayAdapter, creds: AlipayCredentials) -> None:
    result = parse(adapter, creds, Close("ord_1"), "alipay.trade.close",
                   ok(out_trade_no="ord_1", trade_no="T"))
    assert result.status is RailStatus.CLOSED


@pytest.mark.parametrize(
    "payload",
    [
        ok(out_trade_no="ord_2", trade_no="T", trade_status="TRADE_SUCCESS"),  # another order
        ok(out_trade_no="ord_1", trade_no="T", trade_status="PAID"),
        ok(out_trade_no="ord_1", trade_no="T", trade_status="TRADE_SUCCESS", total_amount="1.5"),
        ok(out_trade_no="ord_1"),  # no trade_status
    ],
)
def test_malformed_but_signed_answers_are_unknown(
    adapter: AlipayAdapter, creds: AlipayCredentials, payload: dict[str, Any]
) -> None:
    err = refusal(adapter, creds, Query("ord_1"), "alipay.trade.query", payload)
    assert (err.code, err.definitive) == ("MALFORMED_RESPONSE", False)


def test_unverifiable_answers_are_unknown(adapter: AlipayAdapter, creds: AlipayCredentials) -> None:
    good = answer(creds, "alipay.trade.pay", PAID)
    forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        HttpResponse(200, {}, good.body.replace(b"12.34", b"12.35")),  # tampered
        HttpResponse(200, {}, protocol.signed_answer("alipay_trade_pay_response", PAID,
                                                     forged_key)),
        HttpResponse(502, {}, good.body),
        HttpResponse(200, {}, b"<html>busy</html>"),
        HttpResponse(200, {}, b"\xff\xfe"),
        HttpResponse(200, {}, json.dumps({"alipay_trade_pay_response": PAID}).encode()),
        answer(creds, "alipay.trade.query", PAID),  # signed, but for another method
    ]
    for response in cases:
        with pytest.raises(RailError) as info:
            adapter.parse(PAY, response)
        assert (info.value.code, info.value.definitive) == ("UNVERIFIABLE_RESPONSE", False)


def test_signed_error_response_is_read(adapter: AlipayAdapter, creds: AlipayCredentials) -> None:
    err = refusal(adapter, creds, PAY, "alipay.trade.pay",
                  failed("40002", "isv.invalid-app-id"), key="error_response")
    assert (err.code, err.definitive) == ("isv.invalid-app-id", True)


def test_parse_of_a_call_free_scene_is_unexpected(
    adapter: AlipayAdapter, creds: AlipayCredentials
) -> None:
    with pytest.raises(RailError) as info:
        adapter.parse(charge("app"), answer(creds, "alipay.trade.app.pay", ok()))
    assert info.value.definitive is False


# --------------------------------------------------------------------------- notifications
def notification(creds: AlipayCredentials, **changes: str) -> dict[str, str]:
    fields = {
        "notify_time": "2023-11-15 06:13:25",
        "notify_type": "trade_status_sync",
        "notify_id": "n1",
        "app_id": creds.app_id,
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": "T",
        "out_trade_no": "ord_1",
        "seller_id": "2088000000000009",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "12.34",
        "subject": "咖啡 & {tea}",
        "fund_bill_list": '[{"amount":"12.34","fundChannel":"ALIPAYACCOUNT"}]',
    }
    fields.update(changes)
    return fields


def signed_form(creds: AlipayCredentials, fields: dict[str, str], **changes: str) -> bytes:
    signature = protocol.rsa2_sign(sim_key(creds), protocol.notification_content(fields))
    return urlencode({**fields, "sign": signature, **changes}).encode()


def test_payment_notifications(adapter: AlipayAdapter, creds: AlipayCredentials) -> None:
    note = adapter.verify_notification({}, signed_form(creds, notification(creds)))
    assert (note.kind, note.rail_order_no, note.rail_refund_no) == ("payment", "ord_1", None)
    assert (note.result.status, note.result.amount, note.result.rail_reference) == (
        RailStatus.SUCCEEDED, 1234, "T")
    closed = adapter.verify_notification(
        {}, signed_form(creds, notification(creds, trade_status="TRADE_CLOSED")))
    assert (closed.kind, closed.result.status) == ("payment", RailStatus.CLOSED)
    # Empty values are not signed; a sender that includes them still verifies.
    with_empty = notification(creds, passback_params="")
    assert adapter.verify_notification({}, signed_form(creds, with_empty)).kind == "payment"


@pytest.mark.parametrize("status", ["TRADE_SUCCESS", "TRADE_CLOSED"])
def test_refund_notifications(
    adapter: AlipayAdapter, creds: AlipayCredentials, status: str
) -> None:
    fields = notification(creds, trade_status=status, out_biz_no="ref_1", refund_fee="2.00",
                          gmt_refund="2023-11-15 06:13:25")
    note = adapter.verify_notification({}, signed_form(creds, fields))
    assert (note.kind, note.rail_order_no, note.rail_refund_no) == ("refund", "ord_1", "ref_1")
    assert (note.result.status, note.result.refunded_amount) == (RailStatus.SUCCEEDED, 200)


def test_seller_is_checked_when_configured(creds: AlipayCredentials) -> None:
    strict = AlipayAdapter("a", GATEWAY, creds, seller_id="2088000000000009")
    assert strict.verify_notification({}, signed_form(creds, notification(creds))).kind
    other = signed_form(creds, notification(creds, seller_id="2088000000000001"))
    with pytest.raises(RailError):
        strict.verify_notification({}, other)


def test_bad_notifications_are_unverifiable(
    adapter: AlipayAdapter, creds: AlipayCredentials
) -> None:
    fields = notification(creds)
    good = signed_form(creds, fields)
    cases = [
        good.replace(b"12.34", b"12.35"),
        signed_form(creds, fields, sign_type="RSA"),
        signed_form(creds, notification(creds, app_id="2021999999999999")),
        signed_form(creds, notification(creds, total_amount="12.3")),
        signed_form(creds, notification(creds, trade_status="PAID")),
        urlencode(fields).encode(),  # unsigned
        good + b"&app_id=1",  # repeated key
        good + b"&x=%ff",  # not UTF-8
        b"",
    ]
    for body in cases:
        with pytest.raises(RailError) as info:
            adapter.verify_notification({}, body)
        assert (info.value.code, info.value.definitive) == ("NOTIFICATION_UNVERIFIABLE", False)


def test_notification_replies(adapter: AlipayAdapter) -> None:
    yes = adapter.notification_reply(True)
    assert (yes.status, yes.body, yes.headers["Content-Type"]) == (
        200, b"success", "text/plain; charset=utf-8")
    assert len(yes.body) == 7
    no = adapter.notification_reply(False)
    assert no.body == b"fail" and no.body != b"success"
