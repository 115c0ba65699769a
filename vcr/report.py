"""The one report shape of `verify` and `conformance`: a result per request sent, its line, summary and JUnit.

Both commands send requests to an endpoint under test and judge each answer with the protocol validators
(`vcr.protocol`) plus their own rules; what they report is the same: one line per request with the rule ids
that failed it and those only tolerated, a summary line, JUnit XML for CI and JSON.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .lint import format_findings
from .protocol import Finding

__all__ = ["Answer", "CheckResult", "check_each", "junit_xml", "send", "summary"]


@dataclass
class Answer:
    """What an endpoint under test answered to one request, or why it did not (`error`)."""

    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    elapsed_ms: float
    error: str | None = None


async def send(session: Any, method: str, url: str, headers: Any, body: bytes | None) -> Answer:
    """Send one request as recorded or scripted (no redirects followed) and time it; a transport failure is
    an `Answer` with `error`, so each command turns it into its own finding."""
    import aiohttp

    started = time.perf_counter()
    try:
        async with session.request(method, url, headers=headers, data=body or None, allow_redirects=False) as r:
            data = await r.read()
            status, got = r.status, list(r.headers.items())
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
        return Answer(None, [], b"", (time.perf_counter() - started) * 1000, str(error) or type(error).__name__)
    return Answer(status, got, data, (time.perf_counter() - started) * 1000)


async def check_each(
    items: Iterable[Any],
    check: Callable[[Any, Any], Awaitable[Any]],
    timeout: float,
    on_result: Callable[[Any], None] | None,
) -> list[Any]:
    """`check(session, item)` for each item over one session, one request at a time, in the items' order (so
    output and JUnit are stable); `on_result` hears each result as it comes."""
    import aiohttp

    results = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        for item in items:
            result = await check(session, item)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


class CheckResult:
    """One request checked against an endpoint. Subclasses (dataclasses) give `name`, `group`, `url`,
    `status` (None: no answer), `elapsed_ms`, `findings` (no info) and `failures` (those that fail it)."""

    name: str
    group: str
    url: str
    status: int | None
    elapsed_ms: float
    findings: list[Finding]
    failures: list[Finding]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def tolerated(self) -> list[Finding]:
        """Findings that do not fail the request: warnings it is allowed."""
        return [f for f in self.findings if f not in self.failures]

    def line(self) -> str:
        """`FAIL <name> 200 12ms: <failures> | tolerated: <findings>`, greppable in CI logs."""
        verdict = "PASS" if self.passed else "FAIL"
        status = "---" if self.status is None else str(self.status)
        line = f"{verdict} {self.name} {status} {self.elapsed_ms:.0f}ms"
        if self.failures:
            line += f": {format_findings(self.failures)}"
        if self.tolerated:
            line += f" | tolerated: {format_findings(self.tolerated)}"
        return line

    def result_json(self) -> dict[str, Any]:
        """The fields every result shares in `--json` output."""
        return {
            "url": self.url,
            "status": self.status,
            "elapsed_ms": round(self.elapsed_ms, 1),
            "passed": self.passed,
            "failures": [f.to_json() for f in self.failures],
            "tolerated": [f.to_json() for f in self.tolerated],
        }


def summary(results: Sequence[CheckResult], target: str, checked: str) -> str:
    """`Verified 3 recording(s) against URL: 2 passed, 1 failed`; `checked` is `Verified 3 recording(s)`."""
    failed = sum(1 for r in results if not r.passed)
    return f"{checked} against {target}: {len(results) - failed:,} passed, {failed:,} failed"


def junit_xml(results: Sequence[CheckResult], target: str, suite: str) -> str:
    """JUnit XML for CI: one testcase per request, a <failure> listing what failed it (rule ids first);
    no answer at all is an <error>; tolerated findings go to system-out."""
    import xml.etree.ElementTree as ET

    failures = sum(1 for r in results if not r.passed)
    transport = sum(1 for r in results if r.status is None and not r.passed)
    root = ET.Element("testsuites", name=suite, tests=str(len(results)), failures=str(failures - transport))
    root.set("errors", str(transport))
    testsuite = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(failures - transport),
        errors=str(transport),
        time=f"{sum(r.elapsed_ms for r in results) / 1000:.3f}",
    )
    properties = ET.SubElement(testsuite, "properties")
    ET.SubElement(properties, "property", name="target", value=target)
    for result in results:
        case = ET.SubElement(
            testsuite,
            "testcase",
            classname=f"claude-vcr.{result.group}",
            name=result.name,
            time=f"{result.elapsed_ms / 1000:.3f}",
        )
        if result.failures:
            rules = sorted({f.rule for f in result.failures})
            tag = "error" if result.status is None else "failure"
            element = ET.SubElement(
                case, tag, message=str(result.failures[0]), type=" ".join(rules)
            )
            element.text = "\n".join(str(f) for f in result.failures)
        if result.tolerated:
            ET.SubElement(case, "system-out").text = "\n".join(
                f"tolerated: {f}" for f in result.tolerated
            )
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
