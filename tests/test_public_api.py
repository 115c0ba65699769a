"""The names `claude_vcr` exports are its public API: each resolves, and importing the package stays cheap."""

from __future__ import annotations

import subprocess
import sys

import claude_vcr
import pytest


def test_every_public_name_resolves_and_all_lists_exactly_them():
    assert set(claude_vcr.__all__) == set(claude_vcr._PUBLIC) | {"__version__"}
    for name in claude_vcr.__all__:
        assert getattr(claude_vcr, name) is not None
    assert issubclass(claude_vcr.NotFound, claude_vcr.ClaudeVCRError)
    assert issubclass(claude_vcr.DatabaseError, claude_vcr.ClaudeVCRError)
    with pytest.raises(AttributeError, match="no attribute 'proxy_internals'"):
        claude_vcr.proxy_internals  # noqa: B018


def test_importing_the_package_and_its_read_side_loads_neither_aiohttp_nor_sqlite_utils():
    code = (
        "import sys, claude_vcr; claude_vcr.Catalog; claude_vcr.describe; claude_vcr.ClaudeVCRError; "
        "print(sorted(m for m in ('aiohttp', 'sqlite_utils') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_proxy_runs_in_process_through_the_public_api(tmp_path):
    import asyncio

    import aiohttp

    claude_vcr.Store(tmp_path / "vcr.db").close()  # the write side creates and migrates the db

    async def one_request() -> tuple[int, str]:
        config = claude_vcr.ProxyConfig(db=tmp_path / "vcr.db", mode="replay", port=0)
        async with claude_vcr.running(config) as proxy, aiohttp.ClientSession() as session:
            async with session.post(proxy.url + "/v1/messages", json={"model": "m", "messages": []}) as response:
                return response.status, response.headers["x-vcr-outcome"]

    assert asyncio.run(one_request()) == (400, "miss")
    with claude_vcr.Catalog.open(tmp_path / "vcr.db") as catalog:
        assert catalog.cassettes() == []
