"""Headless Chromium driven over the DevTools protocol with aiohttp's websocket client:
no WebDriver and no extra Python package, only the browser from the system's package
manager (Debian `chromium`; .ci/run installs it when it is absent).

A `Page` records everything that counts as the page misbehaving: uncaught exceptions,
`console.error`, error entries of the browser's log (a resource that failed, a
Content-Security-Policy violation) and JavaScript dialogs (an `alert` that an injected
string managed to run).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import orjson

CHROMIUM_ENV = "PAYROUTER_CHROMIUM"  # a browser elsewhere than on PATH
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH = 1280


def find_chromium() -> str | None:
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured
    return next((found for name in _NAMES if (found := shutil.which(name))), None)


class Page:
    """One tab: commands in, results and events out, over its websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._expected: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self._dismissing: set[asyncio.Task[dict[str, Any]]] = set()
        self._reader = asyncio.create_task(self._read())

    async def open(self) -> None:
        for domain in ("Runtime", "Log", "Page"):
            await self.send(f"{domain}.enable")
        await self.resize(900)

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = orjson.loads(message.data)
            if "id" in data:
                waiter = self._pending.pop(data["id"], None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(data)
                continue
            self._on_event(data["method"], data.get("params", {}))
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("the browser closed the page"))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            thrown = details.get("exception", {}).get("description", "")
            self.errors.append(f"exception: {details.get('text')} {thrown}")
        elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
            self.errors.append("console: " + " ".join(
                str(arg.get("value", arg.get("description"))) for arg in params["args"]))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry['text']} {entry.get('url', '')}")
        elif method == "Page.javascriptDialogOpening":
            self.dialogs.append(params["message"])
            dismiss = asyncio.create_task(self.send("Page.handleJavaScriptDialog", accept=False))
            self._dismissing.add(dismiss)
            dismiss.add_done_callback(self._dismissing.discard)
        for expected in [e for e in self._expected if e[0] == method]:
            self._expected.remove(expected)
            if not expected[1].done():
                expected[1].set_result(params)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        command_id = next(self._ids)
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = waiter
        await self._ws.send_str(orjson.dumps(
            {"id": command_id, "method": method, "params": params}).decode())
        reply = await asyncio.wait_for(waiter, 20)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def expect(self, event: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the next `event`; ask before doing what causes it."""
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._expected.append((event, waiter))
        return waiter

    async def navigate(self, url: str) -> None:
        loaded = self.expect("Page.loadEventFired")
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded, 15)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def shows(self, expression: str, timeout: float = 10.0) -> Any:
        """Wait until `expression` is truthy on the page (the page updates itself from
        its own timer: there is no event to await), and return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if loop.time() > deadline:
                raise AssertionError(f"the page never showed {expression}")
            await asyncio.sleep(0.1)

    async def resize(self, height: int) -> None:
        await self.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=height,
                        deviceScaleFactor=1, mobile=False)

    async def screenshot(self, path: Path) -> None:
        """The whole page, at the browser width the README shows."""
        height = int(await self.evaluate("document.documentElement.scrollHeight"))
        await self.resize(height)
        shot = await self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    async def close(self) -> None:
        await self._ws.close()
        await self._reader


class Browser:
    """`chromium --headless` with its DevTools port on loopback, in its own profile."""

    def __init__(self, executable: str, profile: Path, log: Path,
                 session: aiohttp.ClientSession) -> None:
        self.executable = executable
        self.session = session
        self.profile = profile
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = ""

    async def start(self, timeout: float = 30.0) -> None:
        port_file = self.profile / "DevToolsActivePort"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [self.executable, "--headless", "--no-sandbox", "--disable-gpu",
                 "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--password-store=basic", "--hide-scrollbars",
                 "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                 f"--user-data-dir={self.profile}", "about:blank"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # Chromium writes its port to the profile once it listens; no event announces it.
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or loop.time() > deadline:
                raise RuntimeError(f"chromium did not start: {self.log.read_text()[-2000:]}")
            await asyncio.sleep(0.05)
        self.base = f"http://127.0.0.1:{port_file.read_text().split()[0]}"

    async def new_page(self) -> Page:
        async with self.session.put(f"{self.base}/json/new?about:blank") as reply:
            target = await reply.json()
        ws = await self.session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(ws)
        await page.open()
        return page

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
