#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine: the package with its test extras,
# the real Claude Code CLI (npm) and mitmproxy (in its own venv, so its pins never touch ours).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
# tests/test_packaging.py installs this checkout's wheel beside vcrpy in fresh venvs, offline, from these;
# tests/test_pytest_recording_peer.py adds pytest and pytest-recording (never installed in the suite's own venv)
python3 -m pip download --quiet --disable-pip-version-check -d .cache/wheels vcrpy pytest pytest-recording -r <(python3 -c \
  'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
# tests/test_claude_code_matrix.py: four more Claude Code releases (about 300 MB each, one shared npm cache)
npm ci --prefix tests/node-releases --no-audit --no-fund --loglevel=error
if [ ! -x .cache/mitm-venv/bin/mitmdump ]; then
  python3 -m venv .cache/mitm-venv
  .cache/mitm-venv/bin/pip install --quiet --disable-pip-version-check 'mitmproxy>=11,<13'
fi
# tests/test_ui.py drives Debian's headless Chromium through its DevTools protocol; the release matrix runs
# Claude Code on another date with libfaketime
if ! command -v chromium >/dev/null 2>&1 || ! command -v faketime >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  $apt_get update -qq && DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq chromium faketime
fi
