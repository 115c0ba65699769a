"""claude-vcr: a record/replay proxy for the Anthropic Messages API, with cassettes in one SQLite file."""

__version__ = "0.1.0"

__all__ = ["__version__"]
