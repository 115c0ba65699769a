"""pytest-recording's record modes, in a stdlib-only module so the pytest plugin can name them without
importing the harness (tests that never use a cassette pay nothing)."""

from __future__ import annotations

RECORD_MODES = ("none", "once", "new_episodes", "all", "rewrite")
"""pytest-recording's record modes, with its default first."""
