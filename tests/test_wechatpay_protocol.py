"""WeChat Pay v3: credential bundle, signatures, AES-GCM, paySign, and the adapter's pure
build/parse over recorded payloads."""

from __future__ import annotations

import base64
import json
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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
from adapters.wechatpay import protocol
from adapters.wechatpay.adapter import PartnerIds, WeChatPayAdapter, create_adapter
from adapters.wechatpay.protocol import BundleError, DecryptError, WeChatPayCredentials

NOW = 1_700_000_000.0
NONCE = "N0nce" * 6 + "Zz"
BASE = "https://api.wechat.test"
NOTIFY = "https://router.test/v1/notify/wechatpay"
PARTNER_SUB = "1900000109"


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wx") / "keys"


@pytest.fixture(scope="module")
def creds(keys_dir: Path) -> WeChatPayCredentials:
    return protocol.load_or_create_bundle(keys_dir)


def make_adapter(creds: WeChatPayCredentials, partner: bool = False) -> WeChatPayAdapter:
    ids = PartnerIds(creds.mchid, creds.appid, PARTNER_SUB, "wxsub0000000001") if partner else None
    return WeChatPayAdapter(
        "wechatpay", BASE, creds, partner=ids, clock=lambda: NOW, nonce=lambda: NONCE
    )


def charge(scene: str, payer: dict[str, str] | None = None, **meta: str) -> Charge:
    return Charge("ord_000001", 1234, "CNY", scene, "coffee", payer or {}, NOTIFY, meta)


def answer(
    creds: WeChatPayCredentials,
    status: int,
    payload: object = None,
    *,
    now: float = NOW,
    key_id: str | None = None,
) -> HttpResponse:
    body = b"" if payload is None else json.dumps(payload).encode()
    assert creds.platform_private_key is not None
    headers = protocol.sign_response(
        creds.platform_private_key, key_id or creds.platform_public_key_id, body, now=now
    )
    return HttpResponse(status, headers, body)


def body_of(request: HttpRequest | RailResult) -> dict[str, Any]:
    assert isinstance(request, HttpRequest)
    parsed: dict[str, Any] = json.loads(request.body)
    return parsed


def tx(state: str, **extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "appid": "wxapp",
        "mchid": "1600000000",
        "out_trade_no": "ord_000001",
        "trade_type": "NATIVE",
        "trade_state": state,
        "trade_state_desc": "desc",
        "amount": {"total": 1234, "currency": "CNY"},
    }
    if state in ("SUCCESS", "REFUND"):
        base["transaction_id"] = "4200000000000000000000000001"
    return {**base, **extra}


def refund_body(status: str, no: str = "rf_1") -> dict[str, object]:
    return {
        "refund_id": "50000000000000000000000001",
        "out_refund_no": no,
        "out_trade_no": "ord_000001",
        "status": status,
        "amount": {"total": 1234, "refund": 200, "currency": "CNY"},
    }


# --------------------------------------------------------------------------- bundle
def test_bundle_is_created_private_complete_and_stable(
    keys_dir: Path, creds: WeChatPayCredentials
) -> None:
    for name in (
        "mchid.txt",
        "appid.txt",
        "apiv3_key.txt",
        "merchant_private_key.pem",
        "merchant_cert_serial.txt",
        "platform_private_key.pem",
        "platform_public_key.pem",
        "platform_public_key_id.txt",
    ):
        assert stat.S_IMODE((keys_dir / name).stat().st_mode) == 0o600, name
    assert len(creds.apiv3_key) == 32 and creds.apiv3_key.decode().isalnum()
    assert creds.platform_public_key_id.startswith("PUB_KEY_ID_")
    assert (keys_dir / "merchant_private_key.pem").read_text().startswith("-----BEGIN PRIVATE KEY")
    again = protocol.load_or_create_bundle(keys_dir)
    assert (again.mchid, again.appid, again.apiv3_key) == (
        creds.mchid,
        creds.appid,
        creds.apiv3_key,
    )
    assert creds.platform_private_key is not None
    assert (
        creds.platform_private_key.public_key().public_numbers()
        == creds.platform_public_key.public_numbers()
    )


def test_repr_hides_keys(creds: WeChatPayCredentials) -> None:
    text = repr(creds) + repr(make_adapter(creds))
    assert creds.apiv3_key.decode() not in text and "redacted" in text


def test_merchant_side_bundle_needs_no_platform_private_key(keys_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "merchant"
    shutil.copytree(keys_dir, copy)
    (copy / "platform_private_key.pem").unlink()
    assert protocol.load_bundle(copy).platform_private_key is None
    (copy / "apiv3_key.txt").write_text("short\n")
    with pytest.raises(BundleError, match="apiv3_key"):
        protocol.load_bundle(copy)
    with pytest.raises(BundleError):
        protocol.load_bundle(tmp_path / "absent")


def test_create_adapter_reads_bundle_and_partner_options(keys_dir: Path) -> None:
    creds = protocol.load_bundle(keys_dir)
    direct = create_adapter(AdapterConfig("wechatpay", BASE, keys_dir))
    assert "direct" in repr(direct) and direct.scenes >= {"quickpay", "native", "h5"}
    partner = create_adapter(
        AdapterConfig("wechatpay", BASE, keys_dir, {"sub_mchid": PARTNER_SUB, "sub_appid": "wxs"})
    )
    request = partner.build(Query("ord_000001"))
    assert isinstance(request, HttpRequest)
    assert request.url == (
        f"{BASE}/v3/pay/partner/transactions/out-trade-no/ord_000001"
        f"?sp_mchid={creds.mchid}&sub_mchid={PARTNER_SUB}"
    )
    with pytest.raises(ValueError, match="keys_dir"):
        create_adapter(AdapterConfig("wechatpay", BASE, None))
    with pytest.raises(ValueError, match="sub_mchid"):
        create_adapter(AdapterConfig("wechatpay", BASE, keys_dir, {"sp_appid": "wx1"}))
    with pytest.raises(ValueError, match="sp_mchid"):
        create_adapter(
            AdapterConfig("wechatpay", BASE, keys_dir, {"sub_mchid": "1", "sp_mchid": "999999"})
        )


# --------------------------------------------------------------------------- signatures
def test_request_signature_round_trip_and_tampering(creds: WeChatPayCredentials) -> None:
    body = b'{"a":1}'
    target = "/v3/pay/transactions/native"
    headers = protocol.sign_request(creds, "POST", target, body, now=NOW, nonce=NONCE)
    auth = protocol.parse_authorization(headers["Authorization"])
    assert auth is not None and auth.mchid == creds.mchid and auth.nonce_str == NONCE
    assert auth.serial_no == creds.merchant_cert_serial and auth.timestamp == str(int(NOW))
    message = f"POST\n{target}\n{int(NOW)}\n{NONCE}\n".encode() + body + b"\n"
    creds.merchant_public_key.verify(
        base64.b64decode(auth.signature), message, padding.PKCS1v15(), hashes.SHA256()
    )

    def ok(method: str = "POST", path: str = target, data: bytes = body, now: float = NOW) -> bool:
        return protocol.verify_request(creds, method, path, headers, data, now=now)

    assert ok()
    assert ok(now=NOW + 299)
    assert not ok(now=NOW + 300)
    assert not ok(data=b'{"a":2}')
    assert not ok(path=target + "?x=1")
    assert not ok(method="GET")
    other = WeChatPayCredentials(**{**_fields(creds), "mchid": "1999999999"})
    assert not protocol.verify_request(other, "POST", target, headers, body, now=NOW)


def _fields(creds: WeChatPayCredentials) -> dict[str, Any]:
    return {name: getattr(creds, name) for name in creds.__dataclass_fields__}


def test_authorization_pairs_parse_in_any_order() -> None:
    value = (
        'WECHATPAY2-SHA256-RSA2048 signature="c2ln",timestamp="1",serial_no="AB",'
        'nonce_str="n",mchid="1600000000"'
    )
    auth = protocol.parse_authorization(value)
    assert auth is not None and (auth.mchid, auth.signature) == ("1600000000", "c2ln")
    assert protocol.parse_authorization(value.replace("WECHATPAY2", "OTHER")) is None
    assert protocol.parse_authorization(value.replace('mchid="1600000000"', "")) is None


def test_response_signature_checks_serial_type_window_and_body(
    creds: WeChatPayCredentials,
) -> None:
    response = answer(creds, 200, {"x": 1})
    key, key_id = creds.platform_public_key, creds.platform_public_key_id

    def ok(headers: dict[str, str], body: bytes = response.body, now: float = NOW) -> bool:
        return protocol.verify_response(key, key_id, headers, body, now=now)

    headers = dict(response.headers)
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert headers["Request-ID"]
    assert ok(headers)
    assert ok({k.lower(): v for k, v in headers.items()})
    assert not ok(headers, now=NOW - 300)
    assert not ok(headers, body=b'{"x":2}')
    assert not ok({**headers, "Wechatpay-Serial": "PUB_KEY_ID_OTHER"})
    assert not ok({**headers, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"})
    assert not ok({**headers, "Wechatpay-Signature": "!!not base64!!"})
    assert not ok({k: v for k, v in headers.items() if k != "Wechatpay-Nonce"})


# --------------------------------------------------------------------------- AES-GCM
def test_resource_round_trip_and_tamper_detection() -> None:
    key = b"0123456789abcdefghijklmnopqrstuv"
    plain = json.dumps({"out_trade_no": "o1", "描述": "中文"}).encode()
    resource = protocol.encrypt_resource(
        key, plain, associated_data="transaction", original_type="transaction"
    )
    assert resource["algorithm"] == "AEAD_AES_256_GCM" and len(resource["nonce"]) == 12
    assert protocol.decrypt_resource(key, resource) == plain
    sealed = bytearray(base64.b64decode(resource["ciphertext"]))
    sealed[0] ^= 1
    for bad in (
        {**resource, "ciphertext": base64.b64encode(bytes(sealed)).decode()},
        {**resource, "associated_data": "refund"},
        {**resource, "nonce": "AAAAAAAAAAAA"},
        {**resource, "algorithm": "AEAD_SM4_GCM"},
        {**resource, "ciphertext": "%%%"},
        {k: v for k, v in resource.items() if k != "nonce"},
    ):
        with pytest.raises(DecryptError):
            protocol.decrypt_resource(key, bad)
    with pytest.raises(DecryptError):
        protocol.decrypt_resource(b"x" * 32, resource)
    empty_aad = protocol.encrypt_resource(key, plain, associated_data="", original_type="t")
    assert protocol.decrypt_resource(key, {**empty_aad, "associated_data": None}) == plain


# --------------------------------------------------------------------------- paySign
def _verify_rsa(key: rsa.RSAPublicKey, message: str, signature: str) -> None:
    key.verify(base64.b64decode(signature), message.encode(), padding.PKCS1v15(), hashes.SHA256())


def test_jsapi_and_app_client_params_are_signed(creds: WeChatPayCredentials) -> None:
    key = creds.merchant_private_key
    js = protocol.jsapi_params(key, "wxapp", "wx123", now=NOW, nonce=NONCE)
    assert (js["package"], js["signType"], js["timeStamp"]) == (
        "prepay_id=wx123",
        "RSA",
        "1700000000",
    )
    _verify_rsa(
        creds.merchant_public_key, f"wxapp\n1700000000\n{NONCE}\nprepay_id=wx123\n", js["paySign"]
    )
    app = protocol.app_params(key, "wxapp", "1600000000", "wx123", now=NOW, nonce=NONCE)
    assert (app["package"], app["partnerid"], app["prepayid"]) == (
        "Sign=WXPay",
        "1600000000",
        "wx123",
    )
    _verify_rsa(creds.merchant_public_key, f"wxapp\n1700000000\n{NONCE}\nwx123\n", app["sign"])


# --------------------------------------------------------------------------- adapter: build
def test_scene_requests(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds)
    cases: list[tuple[Charge, str]] = [
        (charge("native"), "native"),
        (charge("jsapi", {"openid": "o1"}), "jsapi"),
        (charge("mini_program", {"openid": "o1"}), "jsapi"),
        (charge("app"), "app"),
        (charge("h5", {"client_ip": "1.2.3.4"}, h5_type="iOS"), "h5"),
        (charge("quickpay", {"auth_code": "134567890123456781"}, store_id="S1"), "codepay"),
    ]
    for op, endpoint in cases:
        request = adapter.build(op)
        assert isinstance(request, HttpRequest)
        assert request.url == f"{BASE}/v3/pay/transactions/{endpoint}"
        target = f"/v3/pay/transactions/{endpoint}"
        assert protocol.verify_request(
            creds, "POST", target, request.headers, request.body, now=NOW
        )
        body = body_of(request)
        assert (body["appid"], body["mchid"], body["out_trade_no"]) == (
            creds.appid,
            creds.mchid,
            "ord_000001",
        )
        assert body["amount"] == {"total": 1234, "currency": "CNY"}
        assert ("notify_url" in body) == (endpoint != "codepay")
    assert body_of(adapter.build(cases[1][0]))["payer"] == {"openid": "o1"}
    assert body_of(adapter.build(cases[4][0]))["scene_info"] == {
        "payer_client_ip": "1.2.3.4",
        "h5_info": {"type": "iOS"},
    }
    codepay = body_of(adapter.build(cases[5][0]))
    assert codepay["payer"] == {"auth_code": "134567890123456781"}
    assert codepay["scene_info"] == {"store_info": {"out_id": "S1"}}
    default_store = body_of(adapter.build(charge("quickpay", {"auth_code": "1"})))
    assert default_store["scene_info"]["store_info"]["out_id"] == "default"


def test_other_requests(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds)
    query = adapter.build(Query("ord_000001"))
    assert isinstance(query, HttpRequest) and query.method == "GET" and not query.body
    assert query.url == f"{BASE}/v3/pay/transactions/out-trade-no/ord_000001?mchid={creds.mchid}"
    close = adapter.build(Close("ord_000001"))
    assert isinstance(close, HttpRequest)
    assert close.url.endswith("/out-trade-no/ord_000001/close")
    assert body_of(close) == {"mchid": creds.mchid}
    reverse = adapter.build(Reverse("ord_000001"))
    assert isinstance(reverse, HttpRequest) and reverse.url.endswith("/reverse")
    assert body_of(reverse) == {"appid": creds.appid, "mchid": creds.mchid}
    refund = adapter.build(Refund("ord_000001", "rf_1", 200, 1234, "CNY", "broken", NOTIFY))
    assert isinstance(refund, HttpRequest) and refund.url == f"{BASE}/v3/refund/domestic/refunds"
    assert body_of(refund) == {
        "out_trade_no": "ord_000001",
        "out_refund_no": "rf_1",
        "amount": {"refund": 200, "total": 1234, "currency": "CNY"},
        "reason": "broken",
        "notify_url": NOTIFY,
    }
    rq = adapter.build(RefundQuery("ord_000001", "rf_1"))
    assert isinstance(rq, HttpRequest) and rq.url == f"{BASE}/v3/refund/domestic/refunds/rf_1"


def test_partner_requests(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds, partner=True)
    request = adapter.build(charge("jsapi", {"openid": "o1"}))
    assert isinstance(request, HttpRequest)
    assert request.url == f"{BASE}/v3/pay/partner/transactions/jsapi"
    body = body_of(request)
    assert (body["sp_mchid"], body["sp_appid"], body["sub_mchid"], body["sub_appid"]) == (
        creds.mchid,
        creds.appid,
        PARTNER_SUB,
        "wxsub0000000001",
    )
    assert body["payer"] == {"sub_openid": "o1"} and "mchid" not in body
    explicit = body_of(adapter.build(charge("jsapi", {"sp_openid": "o2"})))
    assert explicit["payer"] == {"sp_openid": "o2"}
    assert body_of(adapter.build(Close("ord_000001"))) == {
        "sp_mchid": creds.mchid,
        "sub_mchid": PARTNER_SUB,
    }
    refund = body_of(adapter.build(Refund("ord_000001", "rf_1", 1, 1234, "CNY", "", "")))
    assert refund["sub_mchid"] == PARTNER_SUB and "notify_url" not in refund
    rq = adapter.build(RefundQuery("ord_000001", "rf_1"))
    assert isinstance(rq, HttpRequest) and rq.url.endswith(f"rf_1?sub_mchid={PARTNER_SUB}")


@pytest.mark.parametrize(
    "op",
    [
        charge("jsapi"),
        charge("quickpay"),
        charge("h5"),
        charge("h5", {"client_ip": "1.1.1.1"}, h5_type="Symbian"),
        charge("card"),
        Charge("ord_000001", 0, "CNY", "native", "x", {}, NOTIFY),
        Charge("ord_000001", 1, "USD", "native", "x", {}, NOTIFY),
        Charge("bad no!", 1, "CNY", "native", "x", {}, NOTIFY),
        Charge("x" * 33, 1, "CNY", "native", "x", {}, NOTIFY),
        Refund("ord_000001", "rf 1", 1, 10, "CNY", "", ""),
        Refund("ord_000001", "rf_1", 11, 10, "CNY", "", ""),
    ],
)
def test_invalid_operations_are_refused_before_sending(
    creds: WeChatPayCredentials, op: Operation
) -> None:
    with pytest.raises(RailError) as info:
        make_adapter(creds).build(op)
    assert (info.value.code, info.value.definitive) == ("INVALID_REQUEST", True)


# --------------------------------------------------------------------------- adapter: parse
def test_prepay_answers_become_actions(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds)
    native = adapter.parse(charge("native"), answer(creds, 200, {"code_url": "weixin://x"}))
    assert native.status is RailStatus.REQUIRES_ACTION and native.action is not None
    assert native.action.to_json() == {"type": "qr_code", "qr_code": "weixin://x"}
    h5 = adapter.parse(charge("h5"), answer(creds, 200, {"h5_url": "https://wx.test/h"}))
    assert h5.action is not None and h5.action.to_json() == {
        "type": "redirect",
        "url": "https://wx.test/h",
    }
    for scene in ("jsapi", "mini_program"):
        js = adapter.parse(charge(scene, {"openid": "o"}), answer(creds, 200, {"prepay_id": "wx9"}))
        assert js.action is not None and js.action.type == "sdk_params"
        assert js.action.data == protocol.jsapi_params(
            creds.merchant_private_key, creds.appid, "wx9", now=NOW, nonce=NONCE
        )
    app = adapter.parse(charge("app"), answer(creds, 200, {"prepay_id": "wx9"}))
    assert app.action is not None and app.action.data == protocol.app_params(
        creds.merchant_private_key, creds.appid, creds.mchid, "wx9", now=NOW, nonce=NONCE
    )


def test_partner_client_params_name_the_sub_merchant(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds, partner=True)
    js = adapter.parse(charge("jsapi", {"openid": "o"}), answer(creds, 200, {"prepay_id": "wx9"}))
    assert js.action is not None and js.action.data["appId"] == "wxsub0000000001"
    sp = adapter.parse(charge("jsapi", {"sp_openid": "o"}), answer(creds, 200, {"prepay_id": "p"}))
    assert sp.action is not None and sp.action.data["appId"] == creds.appid
    app = adapter.parse(charge("app"), answer(creds, 200, {"prepay_id": "wx9"}))
    assert app.action is not None and app.action.data["partnerid"] == PARTNER_SUB


@pytest.mark.parametrize(
    ("state", "trade_type", "expected"),
    [
        ("NOTPAY", "NATIVE", RailStatus.REQUIRES_ACTION),
        ("NOTPAY", "MICROPAY", RailStatus.PROCESSING),
        ("USERPAYING", "MICROPAY", RailStatus.PROCESSING),
        ("SUCCESS", "JSAPI", RailStatus.SUCCEEDED),
        ("REFUND", "APP", RailStatus.SUCCEEDED),
        ("PAYERROR", "MWEB", RailStatus.FAILED),
        ("CLOSED", "NATIVE", RailStatus.CLOSED),
        ("REVOKED", "MICROPAY", RailStatus.CLOSED),
    ],
)
def test_every_trade_state_maps(
    creds: WeChatPayCredentials, state: str, trade_type: str, expected: RailStatus
) -> None:
    result = make_adapter(creds).parse(
        Query("ord_000001"), answer(creds, 200, tx(state, trade_type=trade_type))
    )
    assert (result.status, result.amount) == (expected, 1234)
    if expected is RailStatus.SUCCEEDED:
        assert result.rail_reference == "4200000000000000000000000001"
    if expected is RailStatus.FAILED:
        assert (result.failure_code, result.failure_message) == ("PAYERROR", "desc")


def test_codepay_answers(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds)
    op = charge("quickpay", {"auth_code": "1"})
    paid = adapter.parse(op, answer(creds, 200, tx("SUCCESS", trade_type="MICROPAY")))
    assert paid.status is RailStatus.SUCCEEDED
    confirming = adapter.parse(op, answer(creds, 200, tx("USERPAYING")))
    assert confirming.status is RailStatus.PROCESSING
    # Even without a trade_type, a codepay order answered NOTPAY is being decided.
    assert adapter.parse(op, answer(creds, 200, tx("NOTPAY"))).status is RailStatus.PROCESSING
    for op202 in (op, Query("ord_000001")):
        result = adapter.parse(op202, answer(creds, 202, {"code": "USERPAYING", "message": "m"}))
        assert result.status is RailStatus.PROCESSING
    with pytest.raises(RailError) as info:
        adapter.parse(Reverse("ord_000001"), answer(creds, 202, {"code": "USERPAYING"}))
    assert (info.value.code, info.value.definitive) == ("USERPAYING", False)


def test_close_and_reverse_answers(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds)
    assert adapter.parse(Close("ord_000001"), answer(creds, 204)).status is RailStatus.CLOSED
    echoed = {"appid": "wxapp", "mchid": "1600000000", "out_trade_no": "ord_000001"}
    assert adapter.parse(Reverse("ord_000001"), answer(creds, 200, echoed)).status is (
        RailStatus.CLOSED
    )
    paid = adapter.parse(Reverse("ord_000001"), answer(creds, 200, tx("SUCCESS")))
    assert paid.status is RailStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("PROCESSING", RailStatus.PROCESSING),
        ("SUCCESS", RailStatus.SUCCEEDED),
        ("CLOSED", RailStatus.FAILED),
        ("ABNORMAL", RailStatus.FAILED),
    ],
)
def test_every_refund_status_maps(
    creds: WeChatPayCredentials, status: str, expected: RailStatus
) -> None:
    adapter = make_adapter(creds)
    for op in (
        Refund("ord_000001", "rf_1", 200, 1234, "CNY", "", ""),
        RefundQuery("ord_000001", "rf_1"),
    ):
        result = adapter.parse(op, answer(creds, 200, refund_body(status)))
        assert (result.status, result.amount) == (expected, 200)
        assert result.rail_reference == "50000000000000000000000001"
        if expected is RailStatus.FAILED:
            assert result.failure_code == f"REFUND_{status}"


PAY = charge("native")
QUERY = Query("ord_000001")
REFUND = Refund("ord_000001", "rf_1", 200, 1234, "CNY", "", "")


@pytest.mark.parametrize(
    ("op", "http", "code", "definitive"),
    [
        (PAY, 400, "PARAM_ERROR", True),
        (PAY, 400, "INVALID_REQUEST", True),
        (REFUND, 400, "INVALID_REQUEST", True),
        (PAY, 400, "APPID_MCHID_NOT_MATCH", True),
        (PAY, 400, "MCH_NOT_EXISTS", True),
        (PAY, 401, "SIGN_ERROR", True),
        (PAY, 403, "NO_AUTH", True),
        (PAY, 403, "OUT_TRADE_NO_USED", True),
        (PAY, 403, "NOTENOUGH", True),
        (PAY, 403, "TRADE_ERROR", True),
        (PAY, 403, "RULELIMIT", True),
        (PAY, 403, "ACCOUNTERROR", True),
        (REFUND, 403, "NOT_ENOUGH", True),
        (REFUND, 403, "USER_ACCOUNT_ABNORMAL", True),
        (REFUND, 404, "RESOURCE_NOT_EXISTS", True),
        (Close("ord_000001"), 404, "ORDER_NOT_EXIST", True),
        (Close("ord_000001"), 400, "ORDERPAID", True),
        (PAY, 400, "ORDERPAID", False),
        (PAY, 429, "FREQUENCY_LIMITED", False),
        (REFUND, 429, "FREQUENCY_LIMITED", False),
        (PAY, 500, "SYSTEM_ERROR", False),
        (PAY, 500, "BANKERROR", False),
        (REFUND, 500, "SYSTEM_ERROR", False),
        (PAY, 502, "BAD_GATEWAY", False),
        (PAY, 403, "SOMETHING_NEW", False),
    ],
)
def test_error_table(
    creds: WeChatPayCredentials, op: Operation, http: int, code: str, definitive: bool
) -> None:
    with pytest.raises(RailError) as info:
        make_adapter(creds).parse(op, answer(creds, http, {"code": code, "message": "msg"}))
    assert (info.value.code, info.value.definitive) == (code, definitive)


@pytest.mark.parametrize("code", ["ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"])
def test_lookup_misses_are_not_found(creds: WeChatPayCredentials, code: str) -> None:
    adapter = make_adapter(creds)
    for op in (QUERY, RefundQuery("ord_000001", "rf_1")):
        result = adapter.parse(op, answer(creds, 404, {"code": code, "message": "m"}))
        assert (result.status, result.failure_code) == (RailStatus.NOT_FOUND, code)


def test_order_closed_means_closed(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds)
    for op in (PAY, QUERY, Close("ord_000001"), Reverse("ord_000001")):
        result = adapter.parse(op, answer(creds, 400, {"code": "ORDER_CLOSED", "message": "m"}))
        assert result.status is RailStatus.CLOSED
    with pytest.raises(RailError) as info:
        adapter.parse(REFUND, answer(creds, 400, {"code": "ORDER_CLOSED", "message": "m"}))
    assert info.value.definitive


def test_unverifiable_or_malformed_answers_are_unknown(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds)
    good = answer(creds, 200, tx("SUCCESS"))
    cases: list[tuple[HttpResponse, str]] = [
        (HttpResponse(200, {}, good.body), "UNVERIFIABLE_RESPONSE"),
        (answer(creds, 200, tx("SUCCESS"), now=NOW - 400), "UNVERIFIABLE_RESPONSE"),
        (answer(creds, 200, tx("SUCCESS"), key_id="PUB_KEY_ID_X"), "UNVERIFIABLE_RESPONSE"),
        (
            HttpResponse(200, good.headers, good.body.replace(b"SUCCESS", b"CLOSED")),
            "UNVERIFIABLE_RESPONSE",
        ),
        (answer(creds, 200, tx("SUCCESS", out_trade_no="other_001")), "MALFORMED_RESPONSE"),
        (answer(creds, 200, tx("PAID_SOMEHOW")), "MALFORMED_RESPONSE"),
        (answer(creds, 200, [1, 2]), "MALFORMED_RESPONSE"),
        (HttpResponse(403, {}, b'{"code":"NOTENOUGH","message":"m"}'), "NOTENOUGH"),
        (answer(creds, 500, None), "HTTP_500"),
    ]
    for response, code in cases:
        with pytest.raises(RailError) as info:
            adapter.parse(QUERY, response)
        assert (info.value.code, info.value.definitive) == (code, False)


# --------------------------------------------------------------------------- notifications
def notification(
    creds: WeChatPayCredentials,
    event: str,
    plain: dict[str, object],
    *,
    now: float = NOW,
    key: bytes | None = None,
    resource_type: str = "encrypt-resource",
) -> tuple[dict[str, str], bytes]:
    resource = protocol.encrypt_resource(
        key or creds.apiv3_key,
        json.dumps(plain).encode(),
        associated_data="transaction",
        original_type="transaction",
    )
    envelope = {
        "id": "e1",
        "create_time": "2024-01-01T00:00:00+08:00",
        "resource_type": resource_type,
        "event_type": event,
        "summary": "s",
        "resource": resource,
    }
    body = json.dumps(envelope).encode()
    response = answer(creds, 200, envelope, now=now)
    return {k.lower(): v for k, v in response.headers.items()}, body


def paid_plain(creds: WeChatPayCredentials, **extra: object) -> dict[str, object]:
    return tx("SUCCESS", **{"appid": creds.appid, "mchid": creds.mchid, **extra})


def refund_plain(creds: WeChatPayCredentials, status: str = "SUCCESS") -> dict[str, object]:
    return {
        "mchid": creds.mchid,
        "transaction_id": "4200000000000000000000000001",
        "out_trade_no": "ord_000001",
        "refund_id": "50000000000000000000000001",
        "out_refund_no": "rf_1",
        "refund_status": status,
        "success_time": "2024-01-01T00:00:00+08:00",
        "user_received_account": "支付用户零钱",
        "amount": {"total": 1234, "refund": 200, "payer_total": 1234, "payer_refund": 200},
    }


def test_payment_and_refund_notifications_verify(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds)
    note = adapter.verify_notification(
        *notification(creds, "TRANSACTION.SUCCESS", paid_plain(creds))
    )
    assert (note.kind, note.rail_order_no, note.rail_refund_no) == ("payment", "ord_000001", None)
    assert (note.result.status, note.result.amount) == (RailStatus.SUCCEEDED, 1234)
    for event, status, expected in (
        ("REFUND.SUCCESS", "SUCCESS", RailStatus.SUCCEEDED),
        ("REFUND.ABNORMAL", "ABNORMAL", RailStatus.FAILED),
        ("REFUND.CLOSED", "CLOSED", RailStatus.FAILED),
    ):
        note = adapter.verify_notification(*notification(creds, event, refund_plain(creds, status)))
        assert (note.kind, note.rail_order_no, note.rail_refund_no) == (
            "refund",
            "ord_000001",
            "rf_1",
        )
        assert (note.result.status, note.result.amount) == (expected, 200)


def test_partner_notifications_check_the_sub_merchant(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds, partner=True)
    plain = tx("SUCCESS", sp_appid=creds.appid, sp_mchid=creds.mchid, sub_mchid=PARTNER_SUB)
    assert adapter.verify_notification(*notification(creds, "TRANSACTION.SUCCESS", plain))
    with pytest.raises(RailError):
        adapter.verify_notification(
            *notification(creds, "TRANSACTION.SUCCESS", {**plain, "sub_mchid": "1900000999"})
        )


def test_bad_notifications_are_unverifiable(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds)
    headers, body = notification(creds, "TRANSACTION.SUCCESS", paid_plain(creds))
    cases = [
        (headers, body.replace(b"e1", b"e2")),
        ({**headers, "wechatpay-serial": "PUB_KEY_ID_OTHER"}, body),
        notification(creds, "TRANSACTION.SUCCESS", paid_plain(creds), now=NOW - 301),
        notification(creds, "TRANSACTION.SUCCESS", paid_plain(creds), key=b"k" * 32),
        notification(creds, "TRANSACTION.SUCCESS", paid_plain(creds, mchid="1999999999")),
        notification(creds, "TRANSACTION.SUCCESS", paid_plain(creds, appid="wxother")),
        notification(creds, "TRANSACTION.CLOSED", paid_plain(creds)),
        notification(creds, "TRANSACTION.SUCCESS", paid_plain(creds), resource_type="plain"),
        notification(creds, "REFUND.SUCCESS", {**refund_plain(creds), "mchid": "1"}),
        ({}, body),
    ]
    for case_headers, case_body in cases:
        with pytest.raises(RailError) as info:
            adapter.verify_notification(case_headers, case_body)
        assert (info.value.code, info.value.definitive) == ("NOTIFICATION_UNVERIFIABLE", False)


def test_notification_replies(creds: WeChatPayCredentials) -> None:
    adapter = make_adapter(creds)
    assert adapter.notification_reply(True) == HttpResponse(204, {}, b"")
    refused = adapter.notification_reply(False)
    assert refused.status == 400 and json.loads(refused.body)["code"] == "FAIL"
