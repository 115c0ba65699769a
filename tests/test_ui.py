"""`claude-vcr ui`: the read-only viewer, over a db recorded through the real proxy, checked in headless Chromium.

Screenshots for the manual (docs/cassettes.md) come from the same browser steps: `VCR_UI_SCREENSHOTS=1 pytest tests/test_ui.py`
writes them under docs/images/ui/ (the manual shows them).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from claude_vcr.catalog import Catalog
from claude_vcr.ui.server import CONTENT_SECURITY_POLICY

from tests.support.browser import Page
from tests.support.cli import cli
from tests.support.fixtures_ui import PAYLOAD, ViewerData, file_digest, recording_id, viewing
from tests.support.loopback import LoopThread

SCREENSHOTS = Path(__file__).parent.parent / "docs" / "images" / "ui"
pytestmark = pytest.mark.usefixtures("viewer_url")


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def screenshot(page: Page, name: str, height: int = 760, selector: str | None = None) -> None:
    if os.environ.get("VCR_UI_SCREENSHOTS"):
        page.screenshot(SCREENSHOTS / f"{name}.png", height=height, selector=selector)


# --- over HTTP --------------------------------------------------------------------------------------------


def test_every_page_is_html_with_a_strict_policy_and_errors_are_pages(viewer_url, viewer_data):
    recording = recording_id(viewer_data.db, "basic_tests", "Hi there")
    for path in (
        "",
        "c/basic_tests",
        "c/basic_tests?q=story",
        f"r/{recording}",
        "c/agent_tools/lint",
        "misses",
    ):
        status, headers, text = fetch(viewer_url + path)
        assert status == 200, (path, text)
        assert headers["Content-Type"].startswith("text/html")
        assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert (
            "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
        )
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "<script>" not in text  # the only script is the file /static/ui.js
    for path, status_wanted in (
        ("c/no_such", 404),
        ("r/99999", 404),
        ("r/99999999999999999999999999", 404),
        ("c/basic_tests?offset=x", 400),
        ("c/basic_tests?offset=1e23", 400),
        ("c/basic_tests?offset=100000000000000000000000", 400),
        ("c/basic_tests?offset=-1", 400),
        ("x", 404),
    ):
        status, headers, text = fetch(viewer_url + path)
        assert status == status_wanted, (path, text)
        assert "Traceback" not in text and headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    status, headers, _ = fetch(viewer_url + "static/ui.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")


def test_a_foreign_host_name_is_refused_on_loopback(viewer_url):
    status, _, text = fetch(viewer_url, {"Host": "attacker.example"})
    assert status == 403 and "loopback" in text


def test_the_recorded_payload_is_escaped_in_the_html(viewer_url, viewer_data):
    _, _, listing = fetch(viewer_url + "c/basic_tests")
    _, _, page = fetch(viewer_url + f"r/{recording_id(viewer_data.db, 'basic_tests', 'explain')}")
    for text in (listing, page):
        assert "<script>window" not in text and "<img src" not in text
        assert "&lt;script&gt;window.__pwned" in text
    assert "&lt;img src=&quot;x&quot; onerror=" in page


def test_the_viewer_never_changes_the_db(viewer_url, viewer_data):
    for path in ("", "c/basic_tests", "c/basic_tests/lint", "c/agent_tools/lint", "misses"):
        assert fetch(viewer_url + path)[0] == 200
    assert file_digest(viewer_data.db) == viewer_data.digest


def test_cassette_pages_page_and_filter_on_the_server(viewer_url, viewer_data, loop_thread: LoopThread):
    from claude_vcr.ui import server

    _, _, everything = fetch(viewer_url + "c/basic_tests")
    assert "1–4 of 5" not in everything and "of 5" in everything  # 5 recordings, 4 keys (one repeated)
    assert 'class="badge">×2' in everything and 'class="repeat"' in everything
    _, _, story = fetch(viewer_url + "c/basic_tests?q=LIGHTHOUSE")
    assert "of 2 matching LIGHTHOUSE" in story and "Hi there" not in story
    original = server.PAGE_SIZE
    server.PAGE_SIZE = 2
    try:
        _, _, first = fetch(viewer_url + "c/basic_tests")
        _, _, last = fetch(viewer_url + "c/basic_tests?offset=4")
    finally:
        server.PAGE_SIZE = original
    assert "1–2 of 5" in first and 'rel="next" href="/c/basic_tests?offset=2"' in first
    assert (
        "5–5 of 5" in last
        and 'rel="prev" href="/c/basic_tests?offset=2"' in last
        and 'rel="next"' not in last
    )


def test_a_recording_page_shows_the_conversation_answer_events_chart_and_lint(viewer_url, viewer_data):
    _, _, tools = fetch(viewer_url + f"r/{recording_id(viewer_data.db, 'agent_tools', 'weather')}")
    assert "system prompt (" in tools and "You are a weather bot." in tools
    assert "<summary>1 tools</summary>" in tools and "<summary>get_weather</summary>" in tools
    assert "What is the weather in Paris?" in tools
    assert "tool_use</span> <b>get_weather</b>" in tools and "&quot;city&quot;: &quot;Paris&quot;" in tools
    assert "stop_reason <b>tool_use</b>" in tools and "output_tokens" in tools
    assert '<svg class="chart"' in tools and "<circle" in tools
    assert 'id="event-0"' in tools and "message_start" in tools
    assert "request-id" in tools and "x-api-key" not in tools.lower()
    _, _, broken = fetch(viewer_url + f"r/{recording_id(viewer_data.db, 'basic_tests', 'BADINDEX')}")
    flagged = re.search(r'<tr id="event-(\d+)" class="flagged">.*?</tr>', broken, re.S)
    assert flagged, "a lint finding sits beside the event it concerns"
    assert f"@{flagged.group(1)} " in flagged.group(0)


def test_misses_show_the_closest_recordings_and_the_paths_that_differ_from_each(viewer_url, viewer_data):
    _, _, page = fetch(viewer_url + "misses")
    assert "1 saved" in page and "closest recordings" in page
    hi_there = recording_id(viewer_data.db, "basic_tests", "Hi there")
    item = re.search(rf'<li><a href="/r/{hi_there}">[0-9a-f]{{12}}</a>.*?</li></ul></li>', page, re.S)
    assert item, "the recording the miss resembles is among the closest, linked to its page"
    assert "Hi there, what can you do?" in item.group(0)
    assert "<mark>messages[0].content</mark>" in item.group(0) and "what can you «do today?»" in item.group(0)  # the differing words marked (issue 15)


def test_list_shows_the_prompt_excerpt(viewer_data):
    result = cli("list", "basic_tests", "--db", str(viewer_data.db))
    header, *lines = result.output.splitlines()
    assert header.split()[-1] == "PROMPT"
    assert any(line.endswith("Hi there, what can you do?") for line in lines)
    listed = json.loads(cli("list", "basic_tests", "--json", "--db", str(viewer_data.db)).output)
    assert {r["prompt_excerpt"] for r in listed} >= {
        "Hi there, what can you do?",
        "Tell me a story about a lighthouse",
    }


def test_ui_command_refuses_a_missing_db_and_a_bad_port(tmp_path):
    missing = cli("ui", "--db", str(tmp_path / "none.db"), "--port", "0")
    assert missing.exit_code == 1 and "no database at" in missing.output
    assert not (tmp_path / "none.db").exists()
    assert cli("ui", "--port", "70000").exit_code == 2


def test_ui_on_a_busy_port_suggests_port_0(viewer_data):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = cli("ui", "--db", str(viewer_data.db), "--port", str(port))
    assert busy.exit_code == 1, busy.output
    assert f"cannot listen on 127.0.0.1:{port}" in busy.output and "pass --port 0 for a free port" in busy.output
    assert len(busy.output.strip().splitlines()) == 1


def test_the_index_answers_while_a_page_is_being_built(viewer_url, viewer_data, loop_thread: LoopThread):
    """Pages are built in one reading thread: concurrent requests all get whole pages."""

    async def many() -> list[int]:
        async with aiohttp.ClientSession() as session:

            async def one(path: str) -> int:
                async with session.get(viewer_url + path) as response:
                    await response.read()
                    return response.status

            return await asyncio.gather(*(one(p) for p in ["", "c/basic_tests", "misses"] * 5))

    assert loop_thread.run(many()) == [200] * 15


# --- in a real browser ------------------------------------------------------------------------------------


def test_in_chromium_pages_render_and_links_lead_where_they_say(browser: Page, viewer_url, viewer_data):
    browser.goto(viewer_url)
    assert browser.evaluate("document.title") == "cassettes · claude-vcr"
    names = browser.evaluate(
        "[...document.querySelectorAll('#cassettes tbody tr td:first-child a')].map(a => a.textContent)"
    )
    assert names == ["agent_tools", "basic_tests", "pasted_key"]
    screenshot(browser, "index", height=300)
    browser.click("#cassettes a[href='/c/basic_tests']")
    assert browser.evaluate("location.pathname") == "/c/basic_tests"
    assert browser.evaluate("document.querySelector('h1').textContent") == "basic_tests"
    assert browser.evaluate("document.querySelectorAll('#recordings tbody tr').length") == 5
    screenshot(browser, "cassette", height=420)
    key = browser.evaluate(
        "[...document.querySelectorAll('#recordings tbody tr')].find(r => r.textContent.includes('weather') "
        "|| r.textContent.includes('Hi there')).querySelector('td.key a').textContent"
    )
    browser.click(
        f"#recordings td.key a[href='/r/{recording_id(viewer_data.db, 'basic_tests', 'Hi there')}']"
    )
    assert browser.evaluate("document.querySelector('h1').textContent") == key
    with Catalog.open(viewer_data.db) as catalog:
        assert catalog.resolve(key, "basic_tests").prompt_excerpt == "Hi there, what can you do?"
    browser.click("nav a")  # the breadcrumb back to the cassette
    assert browser.evaluate("location.pathname") == "/c/basic_tests"
    browser.goto(viewer_url + f"r/{recording_id(viewer_data.db, 'agent_tools', 'weather')}")
    assert browser.evaluate("document.querySelector('svg.chart circle') !== null")
    assert browser.evaluate("document.querySelector('details.system').open") is False
    screenshot(browser, "recording", height=900)
    browser.goto(viewer_url + f"r/{recording_id(viewer_data.db, 'agent_tools', 'forecast')}")
    assert browser.evaluate("document.querySelectorAll('svg.chart circle').length") > 1
    screenshot(browser, "chart", selector="svg.chart")
    browser.goto(viewer_url + "misses")
    assert browser.evaluate("document.querySelectorAll('.miss mark').length") >= 1
    screenshot(browser, "misses", height=420)
    assert not [m for m in browser.logged() if "Content Security Policy" in m], browser.logged()


def test_in_chromium_the_filter_box_hides_rows_as_you_type(browser: Page, viewer_url):
    browser.goto(viewer_url + "c/basic_tests")
    visible = "[...document.querySelectorAll('#recordings tbody tr')].filter(r => !r.hidden).length"
    assert browser.evaluate(visible) == 5
    browser.type("input[data-filter]", "lighthouse")
    assert browser.evaluate(visible) == 2
    assert all(
        "lighthouse" in text.lower()
        for text in browser.evaluate(
            "[...document.querySelectorAll('#recordings tbody tr')].filter(r => !r.hidden).map(r => r.textContent)"
        )
    )
    browser.type("input[data-filter]", " nothing like this")
    assert browser.evaluate(visible) == 0


def test_in_chromium_a_script_payload_in_a_prompt_shows_as_text_and_never_runs(
    browser: Page, viewer_url, viewer_data: ViewerData
):
    for path in ("c/basic_tests", f"r/{recording_id(viewer_data.db, 'basic_tests', 'explain')}"):
        browser.goto(viewer_url + path)
        assert browser.evaluate("typeof window.__pwned") == "undefined"
        assert browser.evaluate("document.querySelectorAll('main script, main img').length") == 0
        assert "<script>window.__pwned" in browser.evaluate("document.querySelector('main').innerText")
    assert PAYLOAD in browser.evaluate("document.querySelector('.message.user .text').textContent")


def test_a_secret_pasted_into_a_prompt_is_shown_masked_never_whole(viewer_url, viewer_data):
    from tests.support.fixtures_ui import PASTED_KEY

    _, _, listing = fetch(viewer_url + "c/pasted_key")
    _, _, page = fetch(viewer_url + f"r/{recording_id(viewer_data.db, 'pasted_key', 'my key is')}")
    for html in (listing, page):
        assert PASTED_KEY not in html and PASTED_KEY[20:40] not in html
    assert "sk-ant-…(" in page  # the masked preview: kind's prefix and length


# --- cloud recordings -------------------------------------------------------------------------------------


def test_bedrock_and_vertex_recordings_show_their_events_not_their_bytes(
    proxy, bedrock, vertex, aws_credentials, db_path, loop_thread: LoopThread
):
    """Bedrock's binary event stream is shown as the Anthropic events its frames carry (a damaged one with
    its problem and lint finding, never a traceback); Vertex's SSE as any stream."""
    from tests.support.bedrock_upstream import MODEL
    from tests.support.bedrock_upstream import client as bedrock_client
    from tests.support.vertex_upstream import MODEL as VERTEX_MODEL
    from tests.support.vertex_upstream import client as vertex_client

    ask = {"model": MODEL, "max_tokens": 50}
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    on_bedrock = bedrock_client(recorder.url + "/c/on_bedrock")
    for text in ("Say hello from Bedrock", "please DAMAGE this"):
        with on_bedrock.messages.with_streaming_response.create(
            stream=True, messages=[{"role": "user", "content": text}], **ask
        ) as response:
            response.read()
    on_bedrock.messages.create(messages=[{"role": "user", "content": "A JSON answer"}], **ask)
    recorder.stop()
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    with vertex_client(recorder.url + "/c/on_vertex").messages.stream(
        model=VERTEX_MODEL, max_tokens=50, messages=[{"role": "user", "content": "Say hello from Vertex"}]
    ) as stream:
        stream.get_final_message()
    recorder.stop()

    with viewing(loop_thread, db_path) as url:
        status, _, index = fetch(url)
        assert status == 200 and "on_bedrock" in index and "on_vertex" in index
        for cassette in ("on_bedrock", "on_vertex"):
            status, _, listing = fetch(url + f"c/{cassette}")
            assert status == 200, listing
            status, _, linted = fetch(url + f"c/{cassette}/lint")
            assert status == 200 and "Traceback" not in linted
        with Catalog.open(db_path) as catalog:
            rows = {r.prompt_excerpt: r for r in catalog.recordings()}
        pages = {}
        for excerpt, row in rows.items():
            status, _, page = fetch(url + f"r/{row.id}")
            assert status == 200 and "Traceback" not in page, page
            assert ":event-type" not in page and "\ufffd" not in page, "raw frame bytes shown"
            pages[excerpt] = page
    hello = next(page for excerpt, page in pages.items() if "from Bedrock" in excerpt)
    assert "Bedrock event stream: " in hello and "shown as the Anthropic events they carry" in hello
    assert "bedrock " + MODEL in hello
    assert "Bedrock reply number" in hello and 'id="event-0"' in hello and "message_start" in hello
    assert "content_block_delta" in hello and "stream incomplete" not in hello
    damaged = next(page for excerpt, page in pages.items() if "DAMAGE" in excerpt)
    assert "bad message CRC in the frame at byte" in damaged and "A1" in damaged
    assert "stream incomplete" in damaged
    as_json = next(page for excerpt, page in pages.items() if "JSON answer" in excerpt)
    assert "stop_reason <b>end_turn</b>" in as_json and "Bedrock event stream" not in as_json
    on_vertex = next(page for excerpt, page in pages.items() if "from Vertex" in excerpt)
    assert "vertex " + VERTEX_MODEL in on_vertex and "message_start" in on_vertex
    assert "Scripted reply number" in on_vertex
