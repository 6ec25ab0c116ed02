"""One code for every wallet: a checkout code opened by whichever app scanned it."""

from __future__ import annotations

from typing import Any

from tests.conftest import Sim
from tests.helpers import Client, Gateway

ALIPAY_UA = {"User-Agent": "Mozilla/5.0 (iPhone) AlipayClient/10.5.90"}
WECHAT_UA = {"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0.50"}
JSON = {"Accept": "application/json"}
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


async def _order_code(client: Client, otn: str = "order-77") -> dict[str, Any]:
    made = await client.post("/v1/checkout_codes", {
        "type": "order", "amount": 1800, "currency": "CNY", "out_trade_no": otn,
        "description": "Lunch set"})
    assert made.status == 201, made.body
    assert made.body["url"].endswith(f"/c/{made.body['id']}")
    return made.body


def _path(code: dict[str, Any]) -> str:
    return f"/c/{code['id']}"


async def test_order_code_pays_once_in_the_wallet_that_opened_it(
    wallet_gateway: Gateway, alipay_sim: Sim, wechat_sim: Sim
) -> None:
    client, _ = await wallet_gateway.merchant()
    code = await _order_code(client)
    opened = await client.get(_path(code), headers={**ALIPAY_UA, **JSON})
    assert opened.status == 201, opened.body
    assert opened.body["adapter"] == "alipay" and opened.body["scene"] == "h5"
    assert opened.body["action"]["type"] == "redirect"
    assert opened.body["metadata"]["checkout_code"] == code["id"]

    again = await client.get(_path(code), headers={**ALIPAY_UA, **JSON})
    assert again.status == 200 and again.body["id"] == opened.body["id"]

    paid = await client.post(f"/v1/sandbox/payments/{opened.body['id']}/pay")
    assert paid.body["status"] == "succeeded"
    found = await client.get("/v1/payments?out_trade_no=order-77")
    assert found.body["id"] == opened.body["id"]  # exactly one payment for the code
    assert (await alipay_sim.ledger())["totals"]["charges"] == 1
    assert (await wechat_sim.ledger())["totals"]["orders"] == 0
    page = await client.get(_path(code), headers=ALIPAY_UA)
    assert page.status == 200 and b"paid" in page.raw
    # Opened in another wallet once paid: shown as paid, nothing new is started.
    late = await client.get(_path(code), headers={**WECHAT_UA, **JSON})
    assert late.status == 200 and late.body["status"] == "succeeded", late.body
    assert (await wechat_sim.ledger())["totals"]["orders"] == 0


async def test_an_order_opened_in_one_wallet_can_be_paid_in_another(
    wallet_gateway: Gateway, alipay_sim: Sim, wechat_sim: Sim
) -> None:
    """The payer opens the order code in WeChat, does not pay, then opens it in Alipay:
    the WeChat order is closed at its rail (confirmed), and the same payment continues
    in Alipay. One payment, one charge."""
    client, _ = await wallet_gateway.merchant()
    code = await _order_code(client, "order-88")
    in_wechat = await client.get(_path(code), headers={**WECHAT_UA, **JSON})
    assert in_wechat.status == 201 and in_wechat.body["adapter"] == "wechatpay", in_wechat.body
    wechat_order = in_wechat.body["attempts"][0]["rail_order_no"]

    in_alipay = await client.get(_path(code), headers={**ALIPAY_UA, **JSON})
    assert in_alipay.status == 200, in_alipay.body
    assert in_alipay.body["id"] == in_wechat.body["id"]
    assert in_alipay.body["adapter"] == "alipay" and in_alipay.body["status"] == "requires_action"
    assert in_alipay.body["action"]["type"] == "redirect"
    first, second = in_alipay.body["attempts"]
    assert first["failure_code"] == "HANDED_OVER" and second["via"] == "checkout_code"
    assert (await wechat_sim.ledger())["orders"][wechat_order]["status"] == "CLOSED"

    paid = await client.post(f"/v1/sandbox/payments/{in_alipay.body['id']}/pay")
    assert paid.status == 200 and paid.body["status"] == "succeeded", paid.body
    assert (await alipay_sim.ledger())["totals"]["charges"] == 1
    assert (await wechat_sim.ledger())["totals"]["charges"] == 0
    back = await client.get(_path(code), headers={**WECHAT_UA, **JSON})
    assert back.status == 200 and back.body["status"] == "succeeded"
    assert len(back.body["attempts"]) == 2  # nothing new once paid


async def test_a_browser_sends_alipay_to_its_wap_page(wallet_gateway: Gateway) -> None:
    client, _ = await wallet_gateway.merchant()
    code = await _order_code(client, "order-78")
    async with client.session.get(client.base + _path(code), headers=ALIPAY_UA,
                                  allow_redirects=False) as resp:
        assert resp.status == 302
        assert "alipay.trade.wap.pay" in resp.headers["Location"]


async def test_wechat_gets_jsapi_with_an_openid_and_a_qr_without(
    wallet_gateway: Gateway,
) -> None:
    client, _ = await wallet_gateway.merchant()
    with_openid = await client.get(_path(await _order_code(client, "o-1")) + f"?openid={OPENID}",
                                   headers={**WECHAT_UA, **JSON})
    assert with_openid.status == 201 and with_openid.body["scene"] == "jsapi"
    assert with_openid.body["action"]["type"] == "sdk_params"
    assert with_openid.body["action"]["package"].startswith("prepay_id=")
    without = await client.get(_path(await _order_code(client, "o-2")),
                               headers={**WECHAT_UA, **JSON})
    assert without.body["scene"] == "native" and without.body["action"]["type"] == "qr_code"
    html = await client.get(_path(await _order_code(client, "o-3")), headers=WECHAT_UA)
    assert html.status == 201 and b"weixin://" in html.raw


async def test_an_unknown_browser_chooses(wallet_gateway: Gateway) -> None:
    client, _ = await wallet_gateway.merchant()
    code = await _order_code(client, "o-4")
    choice = await client.get(_path(code), headers=JSON)
    assert choice.status == 200 and choice.body["wallets"] == ["wechat", "alipay"]
    page = await client.get(_path(code))
    assert b"?wallet=alipay" in page.raw and b"?wallet=wechat" in page.raw
    chosen = await client.get(_path(code) + "?wallet=alipay", headers=JSON)
    assert chosen.status == 201 and chosen.body["adapter"] == "alipay"


async def test_static_code_takes_the_payers_amount_each_time(
    wallet_gateway: Gateway, wechat_sim: Sim
) -> None:
    client, _ = await wallet_gateway.merchant()
    made = await client.post("/v1/checkout_codes", {"type": "static", "currency": "CNY",
                                                    "description": "Counter"})
    assert made.status == 201 and "amount" not in made.body
    path = _path(made.body)
    form = await client.get(path, headers=WECHAT_UA)
    assert form.status == 200 and b'name="amount"' in form.raw
    asked = await client.get(path, headers={**WECHAT_UA, **JSON})
    assert asked.status == 422
    first = await client.get(path + f"?amount=1234&openid={OPENID}", headers={**WECHAT_UA, **JSON})
    second = await client.get(path + f"?amount=500&openid={OPENID}", headers={**WECHAT_UA, **JSON})
    assert first.status == second.status == 201
    assert (first.body["amount"], second.body["amount"]) == (1234, 500)
    assert first.body["out_trade_no"] != second.body["out_trade_no"]
    assert (await wechat_sim.ledger())["totals"]["orders"] == 2


async def test_codes_are_validated_and_private(wallet_gateway: Gateway) -> None:
    client, _ = await wallet_gateway.merchant()
    for body, param in (
        ({"type": "static", "currency": "CNY", "amount": 100}, "amount"),
        ({"type": "order", "currency": "CNY", "out_trade_no": "x1"}, "amount"),
        ({"type": "sticker", "currency": "CNY"}, "type"),
        ({"type": "order", "amount": 100, "currency": "XXX", "out_trade_no": "x2"}, "currency"),
    ):
        refused = await client.post("/v1/checkout_codes", body)
        assert refused.status == 422 and refused.body["error"]["param"] == param, refused.body
    code = await _order_code(client, "mine")
    other, _ = await wallet_gateway.merchant("Other")
    assert (await other.get(f"/v1/checkout_codes/{code['id']}")).status == 404
    assert (await client.get(f"/v1/checkout_codes/{code['id']}")).body["id"] == code["id"]
    unknown = await client.get("/c/cc_00AAAAAAAAAAAAAAAAAAAA", headers=JSON)
    assert unknown.status == 404
