"""Every error claude-vcr raises on purpose derives from ClaudeVCRError, so a caller catches one class.

The CLI catches ClaudeVCRError (and OSError) and prints its message on one line with exit status 1: the
message is written for the person who ran the command. Stdlib only, imported by every layer.
"""

from __future__ import annotations


class ClaudeVCRError(Exception):
    """Base class: anything claude-vcr refuses or cannot do, with a message a person can act on."""


# --- the database ------------------------------------------------------------------------------------


class DatabaseError(ClaudeVCRError):
    """A db that claude-vcr will not open or change (damaged, foreign, newer, unwritable); left untouched."""


class NoDatabase(DatabaseError):
    """Read-only commands never create a db, so a wrong --db path is reported instead of hidden."""


class NotFound(ClaudeVCRError, LookupError):
    """An unknown cassette, key or recording."""


class Ambiguous(ClaudeVCRError, LookupError):
    """A key prefix that names several recordings; `matches` lists them."""

    def __init__(self, message: str, matches: list) -> None:
        super().__init__(message)
        self.matches = matches


# --- what the user hands us ----------------------------------------------------------------------------


class InvalidInput(ClaudeVCRError, ValueError):
    """A value the user gave (a flag, a name, a rules file) that cannot be used; the message says why."""


class CredentialsError(InvalidInput):
    """Cloud credentials (AWS, Google) missing, unreadable or refused by their token endpoint; the message
    says where they were looked for and never carries a secret."""


class RulesError(InvalidInput):
    """A rules file or preset that cannot be used; the message says what to fix."""


class BadCassetteName(InvalidInput):
    """A cassette name with a path separator, `..`, a control character, or too long."""


class BadRequestBody(InvalidInput):
    """A request body claude-vcr will not key: JSON nested deeper than `matching.MAX_JSON_DEPTH`."""


class FormatError(ClaudeVCRError, ValueError):
    """A file from elsewhere (a dump, a seed directory) that is not what it claims to be."""


# --- the network ---------------------------------------------------------------------------------------


class ListenError(ClaudeVCRError):
    """The address could not be bound (in use, not ours); only this is reported as a listening problem."""


def cannot_listen(host: str, port: int, error: OSError) -> ListenError:
    """Cannot listen: in use (suggest --port 0), or not ours to bind; one text for `serve`, `run` and `ui`."""
    import errno

    text = f"cannot listen on {host}:{port}: {error.strerror or error}"
    if error.errno == errno.EADDRINUSE:
        text += " (another claude-vcr, or another program, is using it: stop it, or pass --port 0 for a free port)"
    return ListenError(text)


class UpstreamError(ClaudeVCRError):
    """The upstream could not be reached, or broke off mid-answer."""
