"""What the tests share, by role; test modules import from here and never from each other.

- `loopback`: the one way to run servers on 127.0.0.1 beside synchronous clients (a loop thread, free ports,
  scripted servers, a gate for held streams);
- `proxies`: a claude-vcr proxy running on the loop thread;
- `upstream`, `openai_upstream`, `scenario_upstream`: scripted upstreams (Anthropic, OpenAI-compatible, the
  scenario library); `scenarios` and `broken_endpoints`: the library's data and its broken variants;
- `client`: requests as clients send them; `cassettes`: rows as stored; `cli`: the claude-vcr CLI in-process;
- `samples`: real Claude Code requests; `mitm`: mitmproxy dumps and mitmdump; `claude_code`: the Claude Code CLI;
- `fixtures_*`: the pytest fixtures, loaded by `tests/conftest.py` through `pytest_plugins`.
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
