"""Check every recorded response against the protocol rules, so a cassette is known good before tests trust it.

    from .catalog import Catalog
    from .lint import lint

    with Catalog.open("vcr.db") as catalog:
        for result in lint(catalog):
            print(result.line(), result.errors)

Stdlib only: the validators in `vcr.protocol` read the stored bytes, nothing is sent anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import providers
from .protocol import Finding, validate_response
from .sse import SSE_MEDIA_TYPE, media_type

if TYPE_CHECKING:
    from .catalog import Catalog
    from .records import Recording, RecordingRow

__all__ = ["LintResult", "format_findings", "label", "lint", "lint_detail"]

def format_findings(findings: Iterable[Finding], *, include_info: bool = False) -> str:
    """Findings on one line, errors first, separated by `; `."""
    order = {"error": 0, "warning": 1, "info": 2}
    shown = [f for f in findings if include_info or f.severity != "info"]
    return "; ".join(str(f) for f in sorted(shown, key=lambda f: order.get(f.severity, 3)))


def label(row: RecordingRow, *, cassette: bool = True) -> str:
    """`cassette/shortkey METHOD path`: how lint, verify and JUnit name a recording."""
    prefix = f"{row.cassette}/" if cassette else ""
    return f"{prefix}{row.short} {row.method} {row.path}"


def lint_detail(detail: Recording) -> list[Finding]:
    """Every rule that applies to one stored exchange (responses of other paths get none); a large stored
    stream (`Catalog.iter_details(..., large_as_frame=True)`) is checked as it is decompressed."""
    row = detail.row
    body = detail.response_source()
    anthropic_stream = (
        providers.provider_of(row.path) == "anthropic"
        and row.path.split("?", 1)[0].rstrip("/").endswith("/v1/messages")
        and 200 <= row.status < 300
        and media_type(detail.response_headers) == SSE_MEDIA_TYPE
    )
    if not isinstance(body, bytes) and not anthropic_stream:  # only a Messages stream is read in pieces
        body = body.read()
    return validate_response(
        row.path,
        row.status,
        detail.response_headers,
        body,
        detail.request_body,
        request_headers=detail.request_headers,
    )


@dataclass(frozen=True)
class LintResult:
    """One recording and what the validators found in it."""

    row: RecordingRow
    findings: list[Finding]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    def line(self, *, cassette: bool = True) -> str:
        """`<short key> <method> <path>: E S4 @3 ...; W H1 ...` (info findings left out)."""
        return f"{label(self.row, cassette=cassette)}: {format_findings(self.findings)}"

    def to_json(self) -> dict[str, Any]:
        return {
            **self.row.where(),
            "status": self.row.status,
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [f.to_json() for f in self.findings],
        }


def iter_lint(catalog: Catalog, cassette: str | None = None) -> Iterator[LintResult]:
    """Lint results one recording at a time (by cassette, key, ordinal), bodies never all in memory."""
    for detail in catalog.iter_details(cassette, large_as_frame=True):
        yield LintResult(detail.row, lint_detail(detail))


def lint(catalog: Catalog, cassette: str | None = None) -> list[LintResult]:
    """Lint one cassette, or every cassette when None."""
    return list(iter_lint(catalog, cassette))
