"""The suite's one loopback-server helper: its loop thread closes its loop, held answers go on when their gate
opens (from any thread, or when the server stops), a silent upstream counts who reached it."""

from __future__ import annotations

import asyncio
import socket
import threading
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.support.loopback import Gate, LoopThread, serving, silent_upstream


class Held:
    """A server whose one answer waits at its gate."""

    def __init__(self) -> None:
        self.gate = Gate()
        self.arrived = threading.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.handle)
        self.gate.attach(app)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.arrived.set()
        await self.gate.wait()
        return web.Response(text="through")


async def text_of(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


def test_the_loop_thread_closes_its_loop_and_cancels_what_is_left():
    with LoopThread("closing") as thread:
        pending = asyncio.run_coroutine_threadsafe(asyncio.sleep(3600), thread.loop)
        assert thread.run(asyncio.sleep(0, "ran")) == "ran"
    assert not thread.thread.is_alive() and thread.loop.is_closed()
    assert pending.cancelled()


def test_a_held_answer_goes_on_when_its_gate_opens_from_another_thread():
    with LoopThread("gate") as thread, serving(thread, Held()) as server:
        answer = asyncio.run_coroutine_threadsafe(text_of(server.url), thread.loop)
        assert server.script.arrived.wait(30)
        assert not answer.done()
        server.script.gate.open()
        assert answer.result(30) == "through"


def test_stopping_a_server_opens_its_gate():
    with LoopThread("shutdown") as thread:
        with serving(thread, Held()) as server:
            answer = asyncio.run_coroutine_threadsafe(text_of(server.url), thread.loop)
            assert server.script.arrived.wait(30)
        assert answer.result(30) == "through"


def test_a_silent_upstream_counts_connections_and_never_answers():
    with silent_upstream() as silent:
        assert silent.connections() == 0
        address = urlsplit(silent.url)
        with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            sock.settimeout(0.2)
            try:
                answered = sock.recv(1)
            except TimeoutError:
                answered = None
            assert answered is None
        assert silent.connections() == 1
