"""Monitor mode (`--check`): every answer, replayed or forwarded, judged by the protocol validators."""

from __future__ import annotations

import asyncio
import logging

from ..headers import Headers
from ..matching import short_key
from .exchange import Exchange

log = logging.getLogger("claude_vcr.proxy")


async def check_answer(exchange: Exchange, status: int, headers: Headers, body: bytes) -> None:
    """Validate a response against the protocol rules off the event loop; log each finding with the key."""
    from ..protocol import validate_response

    findings = await asyncio.to_thread(validate_response, exchange.path, status, headers, body, exchange.body)
    for finding in findings:
        if finding.severity != "info":
            log.warning("check       %s %s", short_key(exchange.key) if exchange.keyed else "-", finding)
