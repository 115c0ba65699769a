"""The suite's fixtures live in tests/support/fixtures_*.py; its helpers in tests/support/."""

import pytest

pytest.register_assert_rewrite("tests.support")

pytest_plugins = [
    "pytester",
    "tests.support.fixtures_proxy",
    "tests.support.fixtures_scenarios",
    "tests.support.fixtures_claude_code",
    "tests.support.fixtures_ui",
    "tests.support.fixtures_providers",
]
