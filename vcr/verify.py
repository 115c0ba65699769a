"""Replay recorded requests against another Anthropic-compatible endpoint and judge its answers.

Each recorded request is sent, with its stored headers, to the endpoint under test (a proxy, a gateway, a
translating peer). Its live answer is checked twice:

1. by the protocol validators (`vcr.protocol`, rule ids from PROTOCOL.md: S4, F2, M8, ...);
2. against the recording, by meaning (`compare_views`): pings dropped, deltas joined per block, tool JSON
   parsed, ids normalised, token counts checked only for presence and sanity. These rules are V1-V10:

   V1  E  status or body kind (SSE, JSON) differs
   V2  E  stream shape differs: block starts/stops, delta kinds and their indexes, in order (pings and
          chunking ignored)
   V3  E  a content block means something else: type, tool name, id prefix, joined text or thinking,
          parsed tool input, citations, signature presence or length
   V4  E  stop_reason or stop_sequence differs
   V5  E  usage: input/output_tokens missing or not a count, zero where the recording is not, or the
          100/1 placeholder; W for an optional usage field (cache_*) the recording had and the answer lacks
   V6  W  the recording's stream had pings and the live one has none (P13: without pings a long silence
          trips client idle timeouts; PROTOCOL.md rates pings a warning, and so does verify)
   V7  E  the error differs (an error event or error body of another type, or none where one was recorded)
   V8  E  other JSON differs (count_tokens without a sane input_tokens, a models list with other entries)
   V9  W  a header the recording carried is missing: request-id, retry-after, retry-after-ms, x-should-retry
   V10 E  no answer: connection refused, timeout, or the body broke off

A recording fails when its live answer has an error, or a warning the recording itself did not have (a
peer must be at least as compliant as what it replaces; `allow_new_warnings` fails on errors only). The
other findings are "tolerated": reported after `| tolerated:` and in JUnit's system-out. Info findings are
left out. So warning-level pitfalls (`[DONE]` F2, missing pings V6, dropped request-id H1/V9) fail by
default. aiohttp is imported only when requests are sent.

Recordings made on a cloud go to that cloud, authenticated the way the proxy authenticates when recording
(`vcr.cloud_auth`): Bedrock's (`/model/...`, the control plane) signed afresh with SigV4 from the standard
AWS sources, to `--target` or the region's endpoint; Vertex's (`/v1/projects/...`) with a bearer token
from GOOGLE_OAUTH_ACCESS_TOKEN or the application-default credentials, to `--target` or the location's
endpoint. Bedrock's binary event stream is compared as the Anthropic events its frames carry, so a stream
framed or chunked differently but saying the same passes. First-party recordings need `--target`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import providers, untrusted
from .cloud_auth import CloudCredentials, endpoint
from .errors import ClaudeVCRError, CredentialsError
from .excerpts import differences, excerpt, quote
from .fixtures import semantic_view
from .headers import is_secret
from .lint import label, lint_detail
from .names import validate_cassette_name
from .protocol import Finding, Severity, validate_response
from .report import CheckResult, check_each, send, summary
from .report import junit_xml as report_junit
from .secrets import redact_url
from .sigv4 import SIGNATURE_HEADERS

if TYPE_CHECKING:
    from pathlib import Path

    from .records import Recording, RecordingRow

__all__ = [
    "API_KEY_ENV",
    "PLACEHOLDER_API_KEY",
    "VerifyResult",
    "check_answer",
    "compare_views",
    "junit_xml",
    "target_url",
    "verify_db",
    "verify_details",
    "verify_summary",
]

API_KEY_ENV = "VCR_VERIFY_API_KEY"
PLACEHOLDER_API_KEY = "sk-ant-vcr-verify-placeholder"
"""Sent as x-api-key when VCR_VERIFY_API_KEY is unset: recordings never hold the original key."""
NOT_SENT = frozenset({"accept-encoding", "content-length", "host", "x-api-key", "authorization"})
"""Stored request headers verify does not resend: the client library recomputes these, keys come fresh."""
REQUIRED_USAGE = ("input_tokens", "output_tokens")
PLACEHOLDER_USAGE = (100, 1)


# --- comparing by meaning -------------------------------------------------------------------------------


class _Out:
    """Collects comparison findings."""

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(self, rule: str, severity: Severity, message: str) -> None:
        self.items.append(Finding(rule, severity, None, message))


def _first_difference(recorded: Any, live: Any) -> str | None:
    """The first place two JSON values differ, as `path: live vs recorded`."""
    found = differences(recorded, live, limit=1)
    if not found:
        return None
    d = found[0]
    where = d.path or "value"
    if d.only_in_a:
        return f"{where} is missing (recorded {quote(d.a)})"
    if d.only_in_b:
        return f"{where} is extra ({quote(d.b)})"
    if d.lengths:
        return f"{where} has {len(d.b)} items, recorded {len(d.a)}"
    if d.at is not None:
        return f"{where} differs at character {d.at}: {excerpt(d.b, d.at)} vs recorded {excerpt(d.a, d.at)}"
    return f"{where} is {quote(d.b)}, recorded {quote(d.a)}"


def _shape_difference(recorded: list[str], live: list[str]) -> str | None:
    """The first event (pings left out, delta runs joined) where two streams part."""
    for position, (a, b) in enumerate(zip(recorded, live, strict=False)):
        if a != b:
            return f"step {position} is {b}, recorded {a}"
    if len(live) < len(recorded):
        return f"the stream ends after {len(live)} steps, recorded continues with {recorded[len(live)]}"
    if len(live) > len(recorded):
        return f"extra {live[len(recorded)]} after the recorded {len(recorded)} steps"
    return None


def _kind(block: Mapping[str, Any]) -> str:
    """`tool_use Bash`, `text`: what a block is."""
    return f"{block.get('type')} {block['name']}" if block.get("name") else str(block.get("type"))


def _block_name(block: Mapping[str, Any]) -> str:
    """`block 1 (tool_use Bash)` for messages."""
    return f"block {block.get('index')} ({_kind(block)})"


def _compare_blocks(out: _Out, recorded: list[dict[str, Any]], live: list[dict[str, Any]]) -> None:
    """V3: each block's meaning; ids compared by prefix and order (both views number them the same way)."""
    if len(recorded) != len(live):
        out.add(
            "V3",
            "error",
            f"{len(live)} content block(s) {[b.get('type') for b in live]}, "
            f"recorded {len(recorded)} {[b.get('type') for b in recorded]}",
        )
    for rec, got in zip(recorded, live, strict=False):
        if (rec.get("type"), rec.get("name")) != (got.get("type"), got.get("name")):
            out.add("V3", "error", f"{_block_name(rec)} is a {_kind(got)} block")
            continue
        difference = _first_difference(rec, got)
        if difference:
            out.add("V3", "error", f"{_block_name(rec)}: {difference}")


def _is_count(value: Any) -> bool:
    """A token count: a non-negative JSON integer."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _compare_usage(out: _Out, recorded: Mapping[str, Any], live: Mapping[str, Any]) -> None:
    """V5: counts are only checked for presence and sanity; models, caches and tokenizers differ."""
    for key, value in recorded.items():
        if key not in live:
            severity: Severity = "error" if key in REQUIRED_USAGE else "warning"
            out.add("V5", severity, f"usage.{key} is missing (recorded {value})")
        elif not _is_count(live[key]):
            out.add("V5", "error", f"usage.{key} is {live[key]!r}, not a token count")
    if not recorded:
        return
    if (
        _is_count(recorded.get("output_tokens"))
        and recorded["output_tokens"] > 0
        and live.get("output_tokens") == 0
    ):
        out.add("V5", "error", f"usage.output_tokens is 0, recorded {recorded['output_tokens']}")
    inputs = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    recorded_in = sum(v for k in inputs if _is_count(v := recorded.get(k)))
    live_in = sum(v for k in inputs if _is_count(v := live.get(k)))
    if recorded_in > 0 and live_in == 0 and any(k in live for k in inputs):
        out.add("V5", "error", f"usage reports no input tokens, recorded {recorded_in}")
    pair = (live.get("input_tokens"), live.get("output_tokens"))
    if pair == PLACEHOLDER_USAGE and (recorded.get("input_tokens"), recorded.get("output_tokens")) != pair:
        out.add("V5", "error", "usage is the placeholder input_tokens=100, output_tokens=1")


def _compare_json(out: _Out, path: str, recorded: Any, live: Any) -> None:
    """V8: count_tokens is an estimate (a positive count is enough); other JSON must mean the same."""
    if providers.counts_tokens(path):
        value = (live or {}).get("input_tokens") if isinstance(live, dict) else None
        expected = (recorded or {}).get("input_tokens") if isinstance(recorded, dict) else None
        if not _is_count(value) or (value == 0 and _is_count(expected) and expected > 0):
            out.add("V8", "error", f"count_tokens input_tokens is {value!r}, recorded {expected!r}")
        return
    difference = _first_difference(recorded, live)
    if difference:
        out.add("V8", "error", f"body: {difference}")


def _error_type(view: Mapping[str, Any]) -> str:
    """`overloaded_error`, or `none` when the answer carries no error."""
    error = view.get("error")
    return str(error.get("type")) if isinstance(error, dict) else "none"


def _form(view: Mapping[str, Any]) -> str:
    """`200 sse`, `200 sse in eventstream frames`: a view's status and body kind."""
    framing = f" in {view['framing']} frames" if view.get("framing") else ""
    return f"{view['status']} {view.get('kind')}{framing}"


def compare_views(path: str, recorded: Mapping[str, Any], live: Mapping[str, Any]) -> list[Finding]:
    """V1-V9: where the live answer means something else than the recording (see the module docstring)."""
    out = _Out()
    if (recorded["status"], recorded.get("kind"), recorded.get("framing")) != (
        live["status"],
        live.get("kind"),
        live.get("framing"),
    ):
        out.add("V1", "error", f"answered {_form(live)}, recorded {_form(recorded)}")
        return out.items
    for name in recorded.get("headers", []):
        if name not in live.get("headers", []):
            out.add("V9", "warning", f"header {name} is missing (the recording has it)")
    if recorded.get("kind") == "sse":
        if recorded.get("pings") and not live.get("pings"):
            out.add("V6", "warning", f"no ping events (the recording has {recorded['pings']})")
        difference = _shape_difference(recorded.get("shape") or [], live.get("shape") or [])
        if difference:
            out.add("V2", "error", f"stream shape (pings left out, delta runs joined) differs: {difference}")
    if recorded.get("error") != live.get("error"):
        out.add("V7", "error", f"error is {_error_type(live)}, recorded {_error_type(recorded)}")
    if "blocks" in recorded or "blocks" in live:
        _compare_blocks(out, recorded.get("blocks") or [], live.get("blocks") or [])
    for key in ("stop_reason", "stop_sequence"):
        if recorded.get(key) != live.get(key):
            out.add("V4", "error", f"{key} is {live.get(key)!r}, recorded {recorded.get(key)!r}")
    if "usage" in recorded:
        _compare_usage(out, recorded.get("usage") or {}, live.get("usage") or {})
    if "json" in recorded or "json" in live:
        _compare_json(out, path, recorded.get("json"), live.get("json"))
    return out.items


# --- running --------------------------------------------------------------------------------------------


@dataclass
class VerifyResult(CheckResult):
    """One recording checked against the endpoint: what came back and what was wrong with it."""

    row: RecordingRow
    url: str
    status: int | None
    elapsed_ms: float
    findings: list[Finding]
    """Live validator findings (no info) and comparison findings, in that order."""
    failures: list[Finding] = field(default_factory=list)
    """The findings that fail the recording: errors, and warnings the recording itself did not have."""

    @property
    def name(self) -> str:
        """`cassette/shortkey METHOD path`."""
        return label(self.row)

    @property
    def group(self) -> str:
        return self.row.cassette

    def to_json(self) -> dict[str, Any]:
        return {**self.row.where(), "recorded_status": self.row.status, **self.result_json()}


def _judge(findings: list[Finding], recorded: list[Finding], allow_new_warnings: bool) -> list[Finding]:
    """Errors fail; a warning fails unless the recording had the same rule broken (or warnings are allowed)."""
    baseline = {f.rule for f in recorded if f.severity == "warning"}
    failing = []
    for finding in findings:
        if finding.severity == "error":
            failing.append(finding)
        elif finding.severity == "warning" and not allow_new_warnings and finding.rule not in baseline:
            failing.append(finding)
    return failing


def _stored_headers(detail: Recording) -> list[tuple[str, str]]:
    """The stored request headers that are re-sent: no credential an older version or another tool stored
    (`headers.is_secret`), no signature, nothing the client library recomputes."""
    return [
        (name, value)
        for name, value in detail.request_headers
        if name.lower() not in NOT_SENT
        and name.lower() not in SIGNATURE_HEADERS
        and not is_secret(name, value)
    ]


def request_headers(detail: Recording, api_key: str) -> list[tuple[str, str]]:
    """The stored request headers, plus a key for a first-party (or Foundry) endpoint."""
    return [*_stored_headers(detail), ("x-api-key", api_key)]


def target_url(target: str, row: RecordingRow) -> str:
    """The target with `{cassette}` filled in, and the recorded path and query appended: built from the
    target and values that passed `untrusted` only, so a stored path such as `@host:port/v1/messages` (which
    would land in the URL's userinfo) never sends the key to another host."""
    base = target.replace("{cassette}", validate_cassette_name(row.cassette)).rstrip("/")
    url = base + untrusted.request_path(row.path)
    if urlsplit(url).netloc != urlsplit(base).netloc:
        raise untrusted.StoredValueError(f"stored path {untrusted.shown(row.path)} would change the host; refused")
    return url


FIRST_PARTY_NEEDS_TARGET = "first-party recordings need --target (only Bedrock and Vertex ones have an endpoint of their own)"


class Addressing:
    """Where each recording is sent and with what credentials: an x-api-key for the first-party API (and
    Foundry); for Bedrock and Vertex what the proxy adds when recording (`cloud_auth.CloudCredentials`),
    looked up at the first recording that needs them. Missing ones are a CredentialsError (one line for
    the run), never a finding per recording."""

    def __init__(self, target: str | None, api_key: str, env: Mapping[str, str]) -> None:
        self.target = target
        self.api_key = api_key
        self.credentials = CloudCredentials(env)

    async def request(self, session: Any, detail: Recording) -> tuple[Any, list[tuple[str, str]]]:
        """(URL as on the wire, headers) for one recording; a ClaudeVCRError when it cannot be sent."""
        from yarl import URL

        row = detail.row
        path = untrusted.request_path(row.path)
        provider = providers.provider_of(path)
        base = endpoint(provider, path, self.target, self.credentials.env)
        if base is None:
            raise ClaudeVCRError(FIRST_PARTY_NEEDS_TARGET)
        url = target_url(base, row)
        base = url[: len(url) - len(path)]  # {cassette} filled in
        headers = request_headers(detail, self.api_key) if provider == "anthropic" else _stored_headers(detail)
        headers = await self.credentials.authenticate(
            session, provider, untrusted.method(row.method), base, path, headers, detail.request_body or b""
        )
        return URL(url, encoded=True), headers


def check_answer(
    detail: Recording,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    allow_new_warnings: bool = False,
    translated: bool = False,
) -> tuple[list[Finding], list[Finding]]:
    """(findings, failures) for a live answer to a recorded request; no network, so tests can call it.
    `translated`: the target translates another API, so rules PROTOCOL.md softens for translated streams
    (thinking signatures, estimated input usage) are graded as such."""
    row = detail.row
    live_findings = validate_response(
        row.path,
        status,
        headers,
        body,
        detail.request_body,
        request_headers=detail.request_headers,
        translated=translated,
    )
    recorded_view = semantic_view(row.path, row.status, detail.response_headers, detail.response_body)
    live_view = semantic_view(row.path, status, headers, body)
    findings = [f for f in live_findings if f.severity != "info"]
    findings += compare_views(row.path, recorded_view, live_view)
    return findings, _judge(findings, lint_detail(detail), allow_new_warnings)


async def _verify_one(
    session: Any,
    detail: Recording,
    addressing: Addressing,
    allow_new_warnings: bool,
    translated: bool,
) -> VerifyResult:
    """Send one recorded request and judge the answer; a transport failure is finding V10."""
    row = detail.row
    shown_target = redact_url(addressing.target or providers.provider_of(str(row.path)))
    try:
        method = untrusted.method(row.method)
        url, headers = await addressing.request(session, detail)
    except CredentialsError:
        raise  # cloud credentials missing or unusable: one line for the whole run
    except ClaudeVCRError as error:
        finding = Finding("V10", "error", None, f"not sent: {error}")
        return VerifyResult(row, shown_target, None, 0.0, [finding], [finding])
    shown = redact_url(str(url))
    answer = await send(session, method, url, headers, detail.request_body)
    if answer.error is not None:
        finding = Finding("V10", "error", None, f"no answer from {shown}: {answer.error}")
        return VerifyResult(row, shown, None, answer.elapsed_ms, [finding], [finding])
    findings, failures = check_answer(
        detail, answer.status, answer.headers, answer.body, allow_new_warnings=allow_new_warnings, translated=translated
    )
    return VerifyResult(row, shown, answer.status, answer.elapsed_ms, findings, failures)


def verify_details(
    details: Iterable[Recording],
    target: str | None,
    *,
    api_key: str | None = None,
    timeout: float = 60.0,
    allow_new_warnings: bool = False,
    translated: bool = False,
    on_result: Callable[[VerifyResult], None] | None = None,
    env: Mapping[str, str] | None = None,
) -> list[VerifyResult]:
    """Verify recordings against `target` (a base URL; `{cassette}` is replaced by each one's cassette), or,
    when None, each cloud recording against its cloud's endpoint. `env` holds the cloud credentials'
    variables (os.environ by default)."""
    if target is not None and not target.startswith(("http://", "https://")):
        raise ValueError(f"{redact_url(target)!r} is not an http:// or https:// URL")
    env = os.environ if env is None else env
    key = api_key or env.get(API_KEY_ENV) or PLACEHOLDER_API_KEY
    addressing = Addressing(target, key, env)
    return asyncio.run(
        check_each(
            details,
            lambda session, detail: _verify_one(session, detail, addressing, allow_new_warnings, translated),
            timeout,
            on_result,
        )
    )


def verify_db(
    db: str | Path,
    target: str | None,
    cassette: str | None = None,
    **options: Any,
) -> list[VerifyResult]:
    """Verify one cassette of a db (every cassette when None); options as `verify_details`."""
    from .catalog import Catalog

    with Catalog.open(db) as catalog:
        return verify_details(catalog.iter_details(cassette), target, **options)


def shown_target(target: str | None) -> str:
    """What the summary says the recordings were checked against."""
    return target if target is not None else "their clouds' endpoints"


def verify_summary(results: list[VerifyResult], target: str | None) -> str:
    """The last line of `claude-vcr verify`."""
    return summary(results, shown_target(target), f"Verified {len(results):,} recording(s)")


def junit_xml(results: list[VerifyResult], target: str | None, suite: str = "claude-vcr verify") -> str:
    """JUnit XML for CI: one testcase per recording (`report.junit_xml`)."""
    return report_junit(results, shown_target(target), suite)
