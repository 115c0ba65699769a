"""What went wrong on the way to the upstream, in words a person can act on (not an exception's repr)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from urllib.parse import urlsplit

import aiohttp


def _address(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def reach_failure(url: str, error: BaseException) -> str:
    """Why `url` could not be reached: refused, no such host, TLS, a timeout, or a dropped connection."""
    host = urlsplit(url).hostname or url
    cause = getattr(error, "os_error", None) or error.__cause__ or error
    if isinstance(error, aiohttp.ClientConnectorDNSError) or isinstance(cause, socket.gaierror):
        what = f"the name {host} could not be resolved (DNS lookup failed; is the host name right?)"
    elif isinstance(error, aiohttp.ClientConnectorCertificateError):
        what = f"the TLS certificate of {host} was not accepted ({getattr(error, 'certificate_error', error)})"
    elif isinstance(error, aiohttp.ClientSSLError | ssl.SSLError) or isinstance(cause, ssl.SSLError):
        reason = getattr(cause, "reason", None) or getattr(cause, "strerror", None) or "handshake failed"
        what = (
            f"the TLS handshake with {_address(url)} failed ({reason}); "
            "is it an http:// server behind an https:// URL?"
        )
    elif isinstance(cause, ConnectionRefusedError):
        what = f"connection refused: nothing is listening on {_address(url)}"
    elif isinstance(error, aiohttp.ConnectionTimeoutError):
        what = f"connecting to {_address(url)} timed out"
    elif isinstance(error, aiohttp.ServerTimeoutError | asyncio.TimeoutError | TimeoutError):
        what = "it accepted the connection but sent no answer in time (read timeout)"
    elif isinstance(error, aiohttp.ServerDisconnectedError):
        what = "it closed the connection without answering"
    elif isinstance(cause, OSError) and cause.strerror:
        what = f"{cause.strerror} ({_address(url)})"
    else:
        what = str(error) or type(error).__name__
    return f"could not reach the upstream {url}: {what}"


def broke_off(url: str, error: BaseException) -> str:
    """An answer that started and then stopped."""
    if isinstance(error, aiohttp.ServerTimeoutError | asyncio.TimeoutError | TimeoutError):
        what = "it stopped sending mid-answer (read timeout)"
    else:
        what = str(error) or type(error).__name__
    return f"the upstream {url} broke off: {what}"
