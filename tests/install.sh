#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, after saying what and how big:
#   1. this checkout (editable) with its test extras, into the Python that `python3` is (your venv when one is
#      active; nothing is ever upgraded beyond what the pins need);
#   2. wheels for the fresh venvs some tests build (vcrpy, pytest-recording, claude-agent-sdk releases) into
#      .cache/wheels;
#   3. three releases of the real Claude Code CLI (npm) into tests/node/node_modules;
#   4. mitmproxy in its own venv, .cache/mitm-venv, so its pins never touch ours;
#   5. Debian's chromium, only if no `chromium` is on the PATH (apt-get install, never upgrade; sudo when not root).
# VCR_INSTALL_DRY_RUN=1 prints the plan and stops. VCR_INSTALL_NO_APT=1 skips chromium (tests/test_ui.py's
# browser tests then skip).
set -euo pipefail
cd "$(dirname "$0")/.."
python="$(command -v python3)"
where="$("$python" -c 'import sys; print("the venv " + sys.prefix if sys.prefix != sys.base_prefix else "the system Python " + sys.prefix)')"
need_chromium=0
if ! command -v chromium >/dev/null 2>&1 && [ "${VCR_INSTALL_NO_APT:-0}" != 1 ]; then need_chromium=1; fi
echo "tests/install.sh will install:" >&2
echo "  - claude-vcr (editable) and its test extras (pytest, anthropic, ruff, mkdocs, pyyaml...) into $where (~150 MB)" >&2
echo "  - wheels for vcrpy, pytest and pytest-recording into .cache/wheels (~15 MB)" >&2
echo "  - wheels of three claude-agent-sdk releases (each bundles its Claude Code) into .cache/wheels (100-190 MB each)" >&2
[ -d tests/node/node_modules ] || echo "  - Claude Code 2.1.197, 2.1.328 and 2.1.332 (npm) into tests/node/node_modules (~1 GB)" >&2
[ -d tests/node-releases/node_modules ] || echo "  - Claude Code 2.1.229, 2.1.270, 2.1.306 and 2.1.337 (npm) into tests/node-releases/node_modules (~1.2 GB; one shared npm cache)" >&2
command -v faketime >/dev/null 2>&1 || [ "${VCR_INSTALL_NO_APT:-0}" = 1 ] || echo "  - Debian's faketime with apt-get (the release matrix runs Claude Code on another date)" >&2
[ -x .cache/mitm-venv/bin/mitmdump ] || echo "  - mitmproxy in its own venv .cache/mitm-venv (~130 MB)" >&2
if [ "$need_chromium" = 1 ]; then
  echo "  - Debian's chromium with apt-get (~80 MB download, ~300 MB installed; apt-get install only, never apt-get upgrade)" >&2
fi
if [ "${VCR_INSTALL_DRY_RUN:-0}" = 1 ]; then exit 0; fi
"$python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
# tests/test_packaging.py installs this checkout's wheel beside vcrpy in fresh venvs, offline, from these;
# tests/test_pytest_recording_peer.py adds pytest and pytest-recording (never installed in the suite's own venv)
"$python" -m pip download --quiet --disable-pip-version-check -d .cache/wheels vcrpy pytest pytest-recording -r <("$python" -c \
  'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
# tests/test_agent_sdk_matrix.py builds a venv per claude-agent-sdk release offline from these (the suite's own
# Python's release needs none); one pip download per release, as their pins conflict
for requirement in $("$python" -c 'from tests.support.agent_sdk_matrix import to_download; print(" ".join(to_download()))'); do
  "$python" -m pip download --quiet --disable-pip-version-check -d .cache/wheels "$requirement"
done
npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
# tests/test_claude_code_matrix.py: four more Claude Code releases (about 300 MB each, one shared npm cache)
npm ci --prefix tests/node-releases --no-audit --no-fund --loglevel=error
if [ ! -x .cache/mitm-venv/bin/mitmdump ]; then
  "$python" -m venv .cache/mitm-venv
  .cache/mitm-venv/bin/pip install --quiet --disable-pip-version-check 'mitmproxy>=11,<13'
fi
# tests/test_ui.py drives Debian's headless Chromium through its DevTools protocol; the release matrix runs
# Claude Code on another date with libfaketime (apt-get install only, never upgrade)
need_faketime=0
if ! command -v faketime >/dev/null 2>&1 && [ "${VCR_INSTALL_NO_APT:-0}" != 1 ]; then need_faketime=1; fi
if [ "$need_chromium" = 1 ] || [ "$need_faketime" = 1 ]; then
  if [ "$(id -u)" = 0 ]; then apt_get="apt-get"; else apt_get="sudo apt-get"; fi
  packages=""
  [ "$need_chromium" = 1 ] && packages="chromium"
  [ "$need_faketime" = 1 ] && packages="$packages faketime"
  $apt_get update -qq && DEBIAN_FRONTEND=noninteractive $apt_get install -y -qq --no-install-recommends $packages
fi
