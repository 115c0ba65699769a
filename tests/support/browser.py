"""Headless Chromium (Debian's `chromium`) driven through its DevTools protocol with aiohttp's websocket client.

    with Chromium.launch(profile_dir) as browser:        # a real browser process on loopback
        page = browser.page(loop_thread)                 # one tab, driven from the test's loop thread
        page.goto("http://127.0.0.1:8100/")
        page.evaluate("document.title")

Only what the viewer's tests need: navigate and wait for load, evaluate, type real key input, click,
screenshots, and the console and CSP messages the page produced.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from tests.support.loopback import LoopThread

DEVTOOLS_LINE = re.compile(r"DevTools listening on (ws://\S+)")
TIMEOUT = 30.0


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """A headless Chromium process with remote debugging on a free loopback port."""

    def __init__(self, process: subprocess.Popen, endpoint: str) -> None:
        self.process = process
        self.endpoint = endpoint
        """http://127.0.0.1:PORT of the DevTools HTTP interface."""

    @classmethod
    def launch(cls, profile: Path) -> Chromium:
        binary = chromium_path()
        assert binary, "chromium is not installed (tests/install.sh installs it)"
        process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",  # CI containers run as root
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        found: list[str] = []
        done = threading.Event()

        def read_stderr() -> None:  # the first line naming the endpoint; the rest is drained and dropped
            assert process.stderr is not None
            for line in process.stderr:
                match = DEVTOOLS_LINE.search(line)
                if match and not found:
                    found.append(match.group(1))
                    done.set()
            done.set()

        threading.Thread(target=read_stderr, daemon=True).start()
        if not done.wait(TIMEOUT) or not found:
            process.kill()
            raise AssertionError("chromium did not start its DevTools endpoint")
        port = re.search(r":(\d+)/", found[0])
        assert port
        return cls(process, f"http://127.0.0.1:{port.group(1)}")

    def page_socket(self) -> str:
        """The websocket URL of the first tab."""
        with urllib.request.urlopen(self.endpoint + "/json/list", timeout=TIMEOUT) as response:
            targets = json.loads(response.read())
        return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")

    def page(self, loop_thread: LoopThread) -> Page:
        page = Page(loop_thread, self.page_socket())
        loop_thread.run(page.connect())
        return page

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(TIMEOUT)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab: commands are sent from the loop thread; the test calls the synchronous methods."""

    def __init__(self, loop_thread: LoopThread, socket_url: str) -> None:
        self.loop_thread = loop_thread
        self.socket_url = socket_url
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict[str, Any]] = []
        self.waiters: list[tuple[str, asyncio.Future]] = []
        self.session: aiohttp.ClientSession | None = None
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task | None = None

    async def connect(self) -> None:
        self.session = aiohttp.ClientSession()
        self.socket = await self.session.ws_connect(self.socket_url, max_msg_size=0)
        self.reader = asyncio.get_running_loop().create_task(self._read())
        for domain in ("Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")

    async def _read(self) -> None:
        assert self.socket is not None
        async for message in self.socket:
            data = json.loads(message.data)
            if "id" in data:
                future = self.pending.pop(data["id"], None)
                if future and not future.done():
                    future.set_result(data)
                continue
            self.events.append(data)
            for method, waiter in list(self.waiters):
                if data.get("method") == method and not waiter.done():
                    waiter.set_result(data)
                    self.waiters.remove((method, waiter))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.socket is not None
        number = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[number] = future
        await self.socket.send_str(json.dumps({"id": number, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, TIMEOUT)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _waiter(self, method: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiters.append((method, future))
        return future

    async def _goto(self, url: str) -> None:
        loaded = self._waiter("Page.loadEventFired")
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded, TIMEOUT)

    async def _click(self, selector: str) -> None:
        loaded = self._waiter("Page.loadEventFired")
        await self._evaluate(f"document.querySelector({json.dumps(selector)}).click()")
        await asyncio.wait_for(loaded, TIMEOUT)

    async def _evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def _type(self, selector: str, text: str) -> None:
        await self._evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", text=text)

    async def _screenshot(self, path: Path, width: int, height: int, selector: str | None) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        clip = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        if selector is not None:  # that element, with a margin, wherever it is on the page
            box = await self._evaluate(
                f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                " return [r.left + scrollX, r.top + scrollY, r.width, r.height]; })()"
            )
            margin = 12
            clip = {
                "x": max(0, box[0] - margin),
                "y": max(0, box[1] - margin),
                "width": box[2] + 2 * margin,
                "height": box[3] + 2 * margin,
                "scale": 1,
            }
        shot = await self.send("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    async def _close(self) -> None:
        if self.reader:
            self.reader.cancel()
        if self.socket:
            await self.socket.close()
        if self.session:
            await self.session.close()

    # --- for tests (synchronous) ---

    def goto(self, url: str) -> None:
        self.loop_thread.run(self._goto(url))

    def click(self, selector: str) -> None:
        """Click the element and wait for the page it leads to."""
        self.loop_thread.run(self._click(selector))

    def evaluate(self, expression: str) -> Any:
        return self.loop_thread.run(self._evaluate(expression))

    def type(self, selector: str, text: str) -> None:
        """Focus the element and type the text as keyboard input (real `input` events)."""
        self.loop_thread.run(self._type(selector, text))

    def screenshot(
        self, path: Path, width: int = 1200, height: int = 760, selector: str | None = None
    ) -> None:
        """A PNG of the top of the page at this size, or of one element (`selector`)."""
        self.loop_thread.run(self._screenshot(path, width, height, selector))

    def logged(self) -> list[str]:
        """Console messages and browser log entries (CSP violations among them) seen so far."""
        found = []
        for event in self.events:
            if event.get("method") == "Log.entryAdded":
                found.append(event["params"]["entry"].get("text", ""))
            elif event.get("method") == "Runtime.consoleAPICalled":
                found.append(" ".join(str(a.get("value")) for a in event["params"].get("args", [])))
            elif event.get("method") == "Runtime.exceptionThrown":
                found.append(json.dumps(event["params"]["exceptionDetails"]))
        return found

    def close(self) -> None:
        self.loop_thread.run(self._close())
