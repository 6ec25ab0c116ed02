"""What the social-payments tests share: a gateway whose payout rails are in-process
(`instant` under the names `wechatpay` and `alipay`), users, and packets funded at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.sandbox.embedded import free_port
from router.settings import RailSettings
from tests.helpers import Client, Gateway, eventually, fast_settings, start_gateway

INSTANT_WALLETS = (
    RailSettings(name="instant"),
    RailSettings(name="wechatpay", options={"adapter": "instant"}),
    RailSettings(name="alipay", options={"adapter": "instant"}),
)
FUNDING = {"scene": "quickpay", "method": "instant", "payer": {"auth_code": "134567890123456781"}}


@pytest.fixture
async def social_gateway(redis_url: str, tmp_path: Path,
                         http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    settings = fast_settings(redis_url, INSTANT_WALLETS, free_port(), str(tmp_path / "data"))
    gw = await start_gateway(settings, http)
    yield gw
    await gw.close()


async def user(client: Client, uid: str, *, verified: bool = True, name: str = "张三",
               openid: str | None = None) -> dict[str, Any]:
    body = {"wallets": {"wechatpay": {"openid": openid or f"o{uid}x1"}},
            "real_name": {"status": "verified" if verified else "unverified",
                          "method": "id_card" if verified else None, "name": name}}
    if not verified:
        del body["real_name"]["method"]  # type: ignore[attr-defined]
    got = await client.request("PUT", f"/v1/users/{uid}", body)
    assert got.status == 200, got.body
    result: dict[str, Any] = got.body
    return result


def packet_body(no: str, *, sender: str = "alice", amount: int = 1000, count: int = 10,
                split: str = "random", **extra: Any) -> dict[str, Any]:
    return {"out_red_packet_no": no, "sender": sender, "amount": amount, "currency": "CNY",
            "count": count, "split": split, "funding": FUNDING, **extra}


async def open_packet(client: Client, no: str, **kw: Any) -> dict[str, Any]:
    created = await client.post("/v1/red_packets", packet_body(no, **kw))
    assert created.status == 201, created.body
    assert created.body["status"] == "open", created.body
    result: dict[str, Any] = created.body
    return result


async def settled_payouts(client: Client, packet_id: str, kind: str = "red_packets"
                          ) -> dict[str, Any]:
    """The packet once every grab's payout has ended."""
    seen: dict[str, Any] = {}

    async def ended() -> bool:
        got = await client.get(f"/v1/{kind}/{packet_id}")
        seen.update(got.body)
        grabs = got.body.get("grabs", [])
        return all(g["payout"]["status"] != "processing" for g in grabs)

    await eventually(ended)
    return seen
