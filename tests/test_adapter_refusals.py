"""What the rail adapters refuse before sending: the canonical field each refusal names
(`RailError.param`, the API error's `param`), and bodies that never carry a null."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.alipay import credentials as alipay_credentials
from adapters.alipay.adapter import AlipayAdapter
from adapters.bank.adapter import BankAdapter
from adapters.bank.protocol import BankCredentials
from adapters.base import (
    Adapter,
    Charge,
    HttpRequest,
    Operation,
    RailError,
    RailErrorCode,
    Refund,
    Scene,
)
from adapters.wechatpay import credentials as wechat_credentials
from adapters.wechatpay.adapter import PartnerIds, WeChatPayAdapter

NOTIFY = "https://router.test/notify"


def charge(
    scene: str,
    payer: dict[str, str] | None = None,
    *,
    amount: int = 1234,
    currency: str = "CNY",
    **metadata: str,
) -> Charge:
    return Charge("ord_000001", amount, currency, scene, "coffee", payer or {}, NOTIFY, metadata)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("refusals")


@pytest.fixture(scope="module")
def wechat(keys: Path) -> WeChatPayAdapter:
    return WeChatPayAdapter(
        "wx", "https://wx.test", wechat_credentials.load_or_create_bundle(keys / "wechatpay")
    )


@pytest.fixture(scope="module")
def wechat_partner(keys: Path) -> WeChatPayAdapter:
    creds = wechat_credentials.load_or_create_bundle(keys / "wechatpay")
    partner = PartnerIds(creds.mchid, creds.appid, "1900000109")
    return WeChatPayAdapter("wx-sp", "https://wx.test", creds, partner=partner)


@pytest.fixture(scope="module")
def alipay(keys: Path) -> AlipayAdapter:
    creds = alipay_credentials.load_or_create_bundle(keys / "alipay")
    return AlipayAdapter("alipay", "https://alipay.test", creds)


@pytest.fixture(scope="module")
def bank() -> BankAdapter:
    return BankAdapter("bank", "https://bank.test", BankCredentials("BANK0123456789", b"k" * 32))


def refused(adapter: Adapter, op: Operation) -> RailError:
    with pytest.raises(RailError) as info:
        adapter.build(op)
    assert (info.value.code, info.value.definitive) == (RailErrorCode.INVALID_REQUEST, True)
    return info.value


@pytest.mark.parametrize(
    ("op", "param"),
    [
        (charge(Scene.NATIVE, amount=0), "amount"),
        (charge(Scene.NATIVE, currency="USD"), "currency"),
        (charge(Scene.QUICKPAY), "payer.auth_code"),
        (charge(Scene.JSAPI), "payer.openid"),
        (charge(Scene.MINI_PROGRAM), "payer.openid"),
        (charge(Scene.H5), "payer.client_ip"),
        (charge(Scene.H5, {"client_ip": "1.1.1.1", "h5_type": "Symbian"}), "payer"),
        (charge("card"), "scene"),
        (Refund("ord_000001", "rf_1", 11, 10, "CNY", "", ""), "amount"),
        (Refund("ord_000001", "rf_1", 1, 10, "HKD", "", ""), "currency"),
        (Charge("bad no!", 1, "CNY", Scene.NATIVE, "x", {}, NOTIFY), None),  # router-made
    ],
)
def test_wechat_refusals_name_the_field(
    wechat: WeChatPayAdapter, op: Operation, param: str | None
) -> None:
    assert refused(wechat, op).param == param


def test_wechat_partner_jsapi_needs_an_openid(wechat_partner: WeChatPayAdapter) -> None:
    assert refused(wechat_partner, charge(Scene.JSAPI)).param == "payer.openid"


@pytest.mark.parametrize(
    ("op", "param"),
    [
        (charge(Scene.NATIVE, amount=0), "amount"),
        # A domestic merchant (no settle_currency option) charges CNY only.
        (charge(Scene.NATIVE, currency="USD"), "currency"),
        (Refund("ord_1", "ref_1", 1, 10, "HKD", "", ""), "currency"),
        (charge(Scene.QUICKPAY), "payer.auth_code"),
        (charge(Scene.JSAPI), "payer.buyer_id"),
        (charge(Scene.MINI_PROGRAM, {"op_app_id": "2021"}), "payer.buyer_id"),
        (charge("desktop"), "scene"),
        (Refund("ord_1", "ref_1", 0, 10, "CNY", "", ""), "amount"),
        (Charge("ord-1", 100, "CNY", Scene.NATIVE, "x", {}, NOTIFY), None),  # router-made
    ],
)
def test_alipay_refusals_name_the_field(
    alipay: AlipayAdapter, op: Operation, param: str | None
) -> None:
    assert refused(alipay, op).param == param


@pytest.mark.parametrize(
    ("op", "param"),
    [
        (charge(Scene.QUICKPAY, {"auth_code": "1"}, amount=0), "amount"),
        (charge(Scene.QUICKPAY, {"auth_code": "1"}, currency="USD"), "currency"),
        (charge(Scene.QUICKPAY), "payer.auth_code"),
        (charge("jsapi", {"auth_code": "1"}), "scene"),
        (Refund("o1", "r1", 0, 10, "CNY", "", ""), "amount"),
    ],
)
def test_bank_refusals_name_the_field(bank: BankAdapter, op: Operation, param: str) -> None:
    assert refused(bank, op).param == param


def test_bodies_leave_unset_fields_out(
    wechat: WeChatPayAdapter, wechat_partner: WeChatPayAdapter, bank: BankAdapter
) -> None:
    ops: list[tuple[Adapter, Operation]] = [
        (wechat, charge(Scene.NATIVE)),
        (wechat, charge(Scene.QUICKPAY, {"auth_code": "134567890123456781"})),
        (wechat, charge(Scene.H5, {"client_ip": "1.1.1.1"})),
        (wechat_partner, charge(Scene.JSAPI, {"openid": "o1"})),
        (wechat, Refund("ord_000001", "rf_1", 1, 10, "CNY", "", "")),
        (bank, charge(Scene.QUICKPAY, {"auth_code": "1"})),
    ]
    for adapter, op in ops:
        request = adapter.build(op)
        assert isinstance(request, HttpRequest)
        assert b"null" not in request.body, request.body
        assert json.loads(request.body)
    refund = wechat.build(Refund("ord_000001", "rf_1", 1, 10, "CNY", "", ""))
    assert isinstance(refund, HttpRequest)
    assert set(json.loads(refund.body)) == {"out_trade_no", "out_refund_no", "amount"}
