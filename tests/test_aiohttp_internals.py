"""The proxy's edge (`claude_vcr.proxy.edge`) hardens aiohttp's connection handler through private members;
if an aiohttp release moves them, this fails with one clear message instead of the header timeout quietly
breaking."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from claude_vcr.proxy import edge


async def _made() -> tuple[web.Server, RequestHandler]:
    async def handler(request: web.BaseRequest) -> web.Response:
        return web.Response()

    server = edge._Server(handler, header_timeout=5.0)
    return server, server()


def test_the_private_aiohttp_members_the_edge_uses_are_still_there():
    server, connection = asyncio.run(_made())
    missing = [f"web.Server.{name}" for name in ("_loop", "_kwargs") if not hasattr(server, name)]
    missing += [f"RequestHandler.{name}" for name in ("_messages", "_waiter") if not hasattr(connection, name)]
    assert not missing, (
        f"aiohttp {aiohttp.__version__} moved {', '.join(missing)}, which claude_vcr/proxy/edge.py's header "
        "timeout relies on: adapt edge.py (the only module touching aiohttp internals) or pin aiohttp lower"
    )
    assert isinstance(connection, edge._Connection) and connection.header_timeout == 5.0
