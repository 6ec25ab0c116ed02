"""The dashboard in a real browser (headless Chromium over the DevTools protocol).

The first test runs `payrouter serve` with two gateway processes under a short load,
logs in through the form, watches the figures move, turns the bank simulator to 100 %
errors and waits for the page to show the bank's breaker open; it saves the screenshot
that README.md shows (docs/dashboard.png). The second shows that merchants' strings are
text on the page, never markup, and that without a session there is only the form.
Any JavaScript error, console error, CSP violation or dialog fails them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from router.sandbox.embedded import free_port
from tests.browser import Browser, Page, find_chromium
from tests.conftest import BankSim
from tests.helpers import ADMIN_TOKEN, Client, Gateway, payment_body
from tests.processes import GatewayProcess

SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "dashboard.png"
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_DESCRIPTION = "<script>alert(2)</script>"
XSS_METADATA = "<b onmouseover=alert(3)>x</b>"
LOAD_CAP = 3000  # payments at most, whatever happens
LOAD_MAX_S = 40.0


@pytest.fixture(scope="module")
async def browser(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Browser]:
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium in CI: .ci/run installs Debian's chromium package")
        pytest.skip("no chromium found (apt-get install chromium, or set PAYROUTER_CHROMIUM)")
    folder = tmp_path_factory.mktemp("chromium")
    async with aiohttp.ClientSession() as session:
        started = Browser(executable, folder / "profile", folder / "chromium.log", session)
        try:
            await started.start()
            yield started
        finally:
            started.stop()


@contextlib.asynccontextmanager
async def page_of(browser: Browser) -> AsyncIterator[Page]:
    page = await browser.new_page()
    try:
        yield page
    finally:
        await page.close()


async def log_in(page: Page, base: str, token: str = ADMIN_TOKEN) -> None:
    """Through the form, as a person would: type the token, submit."""
    await page.navigate(f"{base}/dashboard")
    loaded = page.expect("Page.loadEventFired")
    await page.evaluate(f"document.getElementById('token').value = {orjson.dumps(token).decode()};"
                        " document.getElementById('login').requestSubmit(); true")
    await asyncio.wait_for(loaded, 15)


def assert_behaved(page: Page) -> None:
    assert page.errors == [], page.errors
    assert page.dialogs == [], page.dialogs


# --------------------------------------------------------------------------- under load
def _config(tmp_path: Path, redis_url: str, bank: BankSim) -> Path:
    path = tmp_path / "payrouter.toml"
    path.write_text(f"""
data_dir = "{tmp_path / 'data'}"

[server]
workers = 2

[redis]
url = "{redis_url}"

[sweeper]
first_check_s = 30.0

[routing.breaker]
window_s = 3.0
min_calls = 10
error_rate = 0.5
cool_down_s = 60.0

[rails.bank]
base_url = "{bank.base_url}"
keys_dir = "{bank.keys_dir}"
timeout_s = 5.0

[rails.instant]
""")
    return path


async def drive_load(client: Client, stop: asyncio.Event, answers: Counter[str]) -> None:
    """Bounded load on loopback: 10 payments/s, 10 more each second up to 60/s, sent in
    batches every 100 ms, until `stop`, `LOAD_CAP` payments or `LOAD_MAX_S`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    numbers = itertools.count(1)
    for tick in itertools.count():
        elapsed = loop.time() - started
        if stop.is_set() or elapsed > LOAD_MAX_S or sum(answers.values()) >= LOAD_CAP:
            return
        per_tick = min(6, 1 + int(elapsed))
        batch = [next(numbers) for _ in range(per_tick)]
        replies = await asyncio.gather(*(client.post("/v1/payments", payment_body(
            f"load-{n}", method="bank", auth_code=f"13{n:015d}1")) for n in batch))
        answers.update(str(reply.status) for reply in replies)
        await asyncio.sleep(max(0.0, started + (tick + 1) * 0.1 - loop.time()))


RAIL_ROW = "document.querySelector('#rails tr[data-rail=\"{rail}\"] .{column}')?.textContent"


async def test_live_page_under_load_then_the_bank_breaker_opens(
    browser: Browser, redis_url: str, bank_sim: BankSim, tmp_path: Path,
    http: aiohttp.ClientSession,
) -> None:
    port = free_port()
    gateway = GatewayProcess(_config(tmp_path, redis_url, bank_sim), port,
                             tmp_path / "gateway.log")
    await gateway.start(http)
    stop_load = asyncio.Event()
    answers: Counter[str] = Counter()
    load: asyncio.Task[None] | None = None
    try:
        admin = Client(http, gateway.base, ADMIN_TOKEN)
        created = await admin.post("/v1/admin/merchants", {"name": "Tea house"})
        assert created.status == 201, created.body
        merchant = Client(http, gateway.base, created.body["api_key"])
        load = asyncio.create_task(drive_load(merchant, stop_load, answers))

        async with page_of(browser) as page:
            await log_in(page, gateway.base)
            for rail in ("bank", "instant"):
                await page.shows(RAIL_ROW.format(rail=rail, column="rail"))
            first = float(await page.shows(
                "Number(document.getElementById('creates').textContent) > 0"
                " && document.getElementById('creates').textContent"))
            second = float(await page.shows(
                f"Number(document.getElementById('creates').textContent) > 0 && "
                f"Number(document.getElementById('creates').textContent) !== {first}"
                " && document.getElementById('creates').textContent"))
            assert first > 0 and second > 0 and second != first
            assert await page.evaluate(RAIL_ROW.format(rail="bank", column="breaker")) == "closed"
            assert answers["201"] > 0, answers

            await bank_sim.faults(error_rate=1.0)
            faulted_at = asyncio.get_running_loop().time()
            await page.shows(RAIL_ROW.format(rail="bank", column="breaker") + " === 'open'",
                             timeout=15)
            seen_after = asyncio.get_running_loop().time() - faulted_at
            assert seen_after < 10, seen_after
            # The breaker is read as it stands; rates trail by their complete seconds.
            await page.shows(f"parseFloat({RAIL_ROW.format(rail='bank', column='success')})"
                             " < 50", timeout=15)
            stop_load.set()
            await load
            await page.screenshot(SCREENSHOT)
            assert_behaved(page)
    finally:
        stop_load.set()
        if load is not None:
            await load
        gateway.stop()
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()


# --------------------------------------------------------------------------- escaping
async def test_merchant_strings_are_text_and_without_a_session_only_the_form(
    browser: Browser, gateway: Gateway
) -> None:
    client, _ = await gateway.merchant(XSS_NAME)
    for i in range(3):
        assert (await client.post("/v1/payments", payment_body(f"xss-{i}"))).status == 201
    dead = await client.post("/v1/payments", payment_body(
        "xss-dead", description=XSS_DESCRIPTION, metadata={"note": XSS_METADATA},
        notify_url="http://127.0.0.1:9/closed"))
    assert dead.status == 201, dead.body

    async with page_of(browser) as page:
        await page.navigate(f"{gateway.base}/dashboard")
        assert await page.evaluate(
            "!!document.getElementById('login') && !document.getElementById('rails')"
            " && document.scripts.length === 0"
            " && performance.getEntriesByType('resource')"
            "      .every(e => !e.name.includes('/v1/admin/dashboard'))")

        await log_in(page, gateway.base, "not-the-token")
        assert await page.evaluate("document.getElementById('message').textContent") == (
            "That is not the admin token.")
        assert await page.evaluate("!document.getElementById('rails')")
        # The browser logs the refused login's 401 as a failed load: that one is expected.
        refusal = f"status of 401 (Unauthorized) {gateway.base}/dashboard/login"
        assert [e for e in page.errors if e.endswith(refusal)] == page.errors[:1]
        page.errors.clear()

        await log_in(page, gateway.base)
        name = "document.querySelector('#merchants td.name')?.textContent"
        assert await page.shows(name) == XSS_NAME
        cell = "document.querySelector('#dead-letter-list td.{column}')?.textContent"
        assert await page.shows(cell.format(column="description"),
                                timeout=15) == XSS_DESCRIPTION
        assert await page.evaluate(cell.format(column="merchant")) == XSS_NAME
        assert await page.evaluate(cell.format(column="metadata")) == f"note={XSS_METADATA}"
        assert await page.evaluate(
            "document.querySelectorAll('img, b, main script').length") == 0
        assert await page.evaluate("document.getElementById('campaigns').textContent"
                                   ".trim()") == "no campaigns"
        assert_behaved(page)
