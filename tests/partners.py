"""What the service-provider and profit-sharing tests share: gateways with a provider's
own rail table (on the WeChat Pay simulator, or the in-process `instant` stand-in),
providers, their sub-merchants, and a provider's client acting for one of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from router.sandbox.embedded import free_port
from router.settings import RailSettings
from tests.conftest import Sim
from tests.helpers import Client, Gateway, fast_settings, start_gateway

SP_RAIL = "wechatpay-sp"  # the providers' own WeChat Pay credentials, in partner mode
SP_MCHID_ACCOUNT = "1230000109"  # where a provider's own shares are paid


def partner_table(sim: Sim | None = None) -> RailSettings:
    if sim is None:  # the in-process stand-in: fast, every topology
        return RailSettings(name=SP_RAIL, options={"adapter": "instant", "dedicated": True})
    return RailSettings(name=SP_RAIL, base_url=sim.base_url, keys_dir=sim.keys_dir,
                        timeout_s=1.0, options={"adapter": "wechatpay", "dedicated": True})


@pytest.fixture
async def instant_partners(redis_url: str, tmp_path: Path,
                           http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    rails = (RailSettings(name="instant"), partner_table())
    gw = await start_gateway(fast_settings(redis_url, rails, free_port(),
                                           str(tmp_path / "data")), http)
    yield gw
    await gw.close()


@pytest.fixture
async def wechat_partners(redis_url: str, wechat_sim: Sim, tmp_path: Path,
                          http: aiohttp.ClientSession) -> AsyncIterator[Gateway]:
    rails = (RailSettings(name="wechatpay", base_url=wechat_sim.base_url,
                          keys_dir=wechat_sim.keys_dir, timeout_s=1.0),
             partner_table(wechat_sim), RailSettings(name="instant"))
    gw = await start_gateway(fast_settings(redis_url, rails, free_port(),
                                           str(tmp_path / "data")), http)
    yield gw
    await gw.close()


async def provider(gw: Gateway, name: str = "Provider", **extra: Any
                   ) -> tuple[Client, dict[str, Any]]:
    created = await gw.admin().post("/v1/admin/service_providers", {
        "name": name, "rails": {"wechatpay": SP_RAIL},
        "accounts": {"wechatpay": SP_MCHID_ACCOUNT}, **extra})
    assert created.status == 201, created.body
    return Client(gw.session, gw.base, created.body["api_key"]), created.body


async def sub_merchant(client: Client, sub_mchid: str, name: str = "Shop",
                       **extra: Any) -> dict[str, Any]:
    got = await client.post("/v1/sub_merchants", {"name": name,
                                                  "wechatpay": {"sub_mchid": sub_mchid},
                                                  **extra})
    assert got.status in (200, 201), got.body
    body: dict[str, Any] = got.body
    return body


def acting(client: Client, merchant_id: str) -> Client:
    """The provider's client acting for one of its sub-merchants."""
    return replace(client, headers={**client.headers, "Payrouter-Account": merchant_id})
