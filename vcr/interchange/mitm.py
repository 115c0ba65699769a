"""Read `mitmdump -w` dump files without mitmproxy, so importing a capture needs no heavy dependency.

A dump is a sequence of typed netstrings (tnetstrings), one dict per flow: ``LEN:DATA`` followed by one type
tag, ``,`` bytes, ``;`` UTF-8 text (mitmproxy's addition), ``#`` int, ``^`` float, ``!`` bool, ``~`` null,
``]`` list and ``}`` dict. Flow format version 21 is current (mitmproxy 11 and 12); the HTTP fields read
here have not changed since version 10 (mitmproxy 7), and older files lacking a field get its default.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from ..errors import FormatError

__all__ = [
    "KNOWN_FORMAT_VERSION",
    "ContentDecodingError",
    "Headers",
    "MitmFlow",
    "MitmFormatError",
    "MitmRequest",
    "MitmResponse",
    "decode_content",
    "read_flows",
]

Headers = list[tuple[str, str]]

KNOWN_FORMAT_VERSION = 21
"""The newest flow format version whose fields were checked; a newer flow is read on a best-effort basis,
so an importer may warn when `MitmFlow.version` is above it."""

_MAX_PREFIX_DIGITS = 12
"""mitmproxy's own loader refuses longer length prefixes (a flow under 1 TB); so do we."""

_MAX_DEPTH = 256
DECODED_LIMIT = 128 * 1024 * 1024
"""No body is decoded (gzip, deflate, br, zstd) past this: `compression.BODY_CEILING`, the store's own."""
"""Real flows nest about 6 deep; a deeper value is corrupt data, refused before it costs memory."""

_BYTES, _TEXT, _INT, _FLOAT, _BOOL, _NULL, _LIST, _DICT = b",;#^!~]}"
_TAG_NAMES = {
    _BYTES: "bytes",
    _TEXT: "text",
    _INT: "integer",
    _FLOAT: "float",
    _BOOL: "boolean",
    _NULL: "null",
    _LIST: "list",
    _DICT: "dict",
}


class MitmFormatError(FormatError):
    """Raised for a file that is not, or no longer, a readable mitmproxy dump; says where reading stopped."""

    def __init__(self, problem: str, *, flows_read: int, offset: int, source: str | None = None) -> None:
        self.problem = problem
        self.flows_read = flows_read
        self.offset = offset
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(
            f"{where}not a readable mitmproxy dump: {problem} (at byte offset {offset}; "
            f"{flows_read} flow{'' if flows_read == 1 else 's'} read before the problem)"
        )


class ContentDecodingError(FormatError):
    """Raised when a body's Content-Encoding cannot be undone, so a caller can skip that flow by name."""


@dataclass(frozen=True)
class MitmRequest:
    """The request half of an HTTP flow, as mitmproxy saw it on the wire."""

    method: str
    scheme: str
    host: str
    port: int
    authority: str
    path: str
    http_version: str
    headers: Headers
    content: bytes | None
    """The body as sent (still Content-Encoded); None when mitmproxy streamed it without storing it."""
    timestamp_start: float | None
    timestamp_end: float | None
    trailers: Headers | None = None

    @property
    def url(self) -> str:
        """The full URL, for messages and matching; the default port for the scheme is left out."""
        if self.authority:
            hostport = self.authority
        else:
            default = {"http": 80, "https": 443}.get(self.scheme)
            host = f"[{self.host}]" if ":" in self.host else self.host
            hostport = host if self.port == default else f"{host}:{self.port}"
        return f"{self.scheme}://{hostport}{self.path}"


@dataclass(frozen=True)
class MitmResponse:
    """The response half of an HTTP flow, as mitmproxy saw it on the wire."""

    status_code: int
    reason: str
    http_version: str
    headers: Headers
    content: bytes | None
    """The body as sent (still Content-Encoded); None when mitmproxy streamed it without storing it."""
    timestamp_start: float | None
    timestamp_end: float | None
    trailers: Headers | None = None


@dataclass(frozen=True)
class MitmFlow:
    """One flow of a dump; only HTTP flows carry a request, other types (tcp, udp, dns) are for skipping."""

    id: str
    type: str
    request: MitmRequest | None
    response: MitmResponse | None
    error: str | None
    """mitmproxy's error message (connection reset, body too large, ...), None if the flow completed."""
    version: int | tuple[int, ...] | None = None
    timestamp_created: float | None = None
    offset: int = 0
    """Byte offset of the flow in the stream, for messages that point at it."""
    is_websocket: bool = False


class _ParseError(Exception):
    """A problem at a position inside one flow's bytes; turned into MitmFormatError by the reader."""

    def __init__(self, problem: str, pos: int) -> None:
        super().__init__(problem)
        self.problem = problem
        self.pos = pos


def read_flows(stream: BinaryIO) -> Iterator[MitmFlow]:
    """Yield the flows of a dump one at a time, so a capture larger than memory can still be imported.

    Only one flow's bytes are held at once. An empty stream yields nothing. Anything else that is not a
    complete dump raises MitmFormatError after the flows before the problem were yielded.
    """
    source = getattr(stream, "name", None)
    source = str(source) if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__") else None
    try:
        offset = stream.tell()
    except (AttributeError, OSError, ValueError):
        offset = 0
    flows_read = 0

    def fail(problem: str, at: int) -> MitmFormatError:
        return MitmFormatError(problem, flows_read=flows_read, offset=at, source=source)

    while True:
        start = offset
        first = stream.read(1)
        if not first:
            return
        if not isinstance(first, bytes):
            raise TypeError("read_flows needs a binary stream, as from open(path, 'rb')")
        prefix = bytearray()
        char = first
        while char.isdigit() and len(prefix) <= _MAX_PREFIX_DIGITS:
            prefix += char
            char = stream.read(1)
        if not prefix:
            found = _describe_start(first)
            raise fail(f"expected the decimal length that starts a flow, found {found}", start)
        if len(prefix) > _MAX_PREFIX_DIGITS:
            raise fail(f"length prefix longer than {_MAX_PREFIX_DIGITS} digits", start)
        if not char:
            raise fail(f"truncated: the file ends inside the length prefix of flow {flows_read + 1}", start)
        if char != b":":
            raise fail(f"expected ':' after the length prefix {prefix.decode()}, found {char!r}", start)
        length = int(prefix)
        data_start = start + len(prefix) + 1
        payload = _read_exact(stream, length + 1)
        offset = data_start + len(payload)
        if len(payload) < length + 1:
            raise fail(
                f"truncated: flow {flows_read + 1} declares {length} bytes and a type tag but the file "
                f"ends after {len(payload)}",
                start,
            )
        tag = payload[length]
        if tag != _DICT:
            kind = _TAG_NAMES.get(tag)
            if kind is None:
                problem = f"unknown tnetstring type tag {chr(tag)!r} ending flow {flows_read + 1}"
                raise fail(problem, offset - 1)
            raise fail(f"flow {flows_read + 1} is a tnetstring {kind}, expected a dict", start)
        try:
            state = _parse_container(payload, 0, length, _DICT)
            assert isinstance(state, dict)
            flow = _build_flow(state, start)
        except _ParseError as exc:
            raise fail(f"flow {flows_read + 1}: {exc.problem}", data_start + exc.pos) from None
        except _FieldError as exc:
            raise fail(f"flow {flows_read + 1}: {exc}", start) from None
        flows_read += 1
        yield flow


def _describe_start(first: bytes) -> str:
    """Names a well-known other file type, so a user who picked the wrong file sees it at once."""
    hints = {b"{": "JSON", b"[": "JSON", b"\x89": "PNG", b"\x1f": "gzip", b"<": "HTML or XML"}
    hint = hints.get(first)
    return f"{first!r} (a {hint} file?)" if hint else repr(first)


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    """Reads until `size` bytes or end of file, since raw streams and pipes may return short reads."""
    data = stream.read(size)
    if data is None or len(data) >= size:
        return data or b""
    chunks = [data]
    got = len(data)
    while got < size:
        more = stream.read(size - got)
        if not more:
            break
        chunks.append(more)
        got += len(more)
    return b"".join(chunks)


class _Frame:
    """An open list or dict while parsing, kept on an explicit stack so nesting cannot exhaust recursion."""

    __slots__ = ("container", "end", "key")

    def __init__(self, container: list[Any] | dict[str, Any], end: int) -> None:
        self.container = container
        self.end = end
        self.key: str | None = None


def _parse_container(data: bytes, start: int, end: int, tag: int) -> list[Any] | dict[str, Any]:
    """Parses the items of one list or dict body `data[start:end]` without recursion."""
    root: list[Any] | dict[str, Any] = {} if tag == _DICT else []
    stack = [_Frame(root, end)]
    pos = start
    while True:
        frame = stack[-1]
        if pos == frame.end:
            if frame.key is not None:
                raise _ParseError(f"dict key {frame.key!r} has no value", pos)
            stack.pop()
            if not stack:
                return root
            pos = frame.end + 1  # skip the closing type tag
            _attach(stack[-1], frame.container, pos)
            continue
        colon = data.find(b":", pos, min(frame.end, pos + _MAX_PREFIX_DIGITS + 1))
        digits = data[pos:colon] if colon > pos else b""
        if not digits.isdigit():
            raise _ParseError(f"expected a tnetstring length prefix, found {data[pos : pos + 16]!r}", pos)
        value_start = colon + 1
        value_end = value_start + int(digits)
        if value_end >= frame.end:
            raise _ParseError(f"a {int(digits)}-byte item runs past the end of its enclosing value", pos)
        item_tag = data[value_end]
        if item_tag == _LIST or item_tag == _DICT:
            if isinstance(frame.container, dict) and frame.key is None:
                raise _ParseError(f"dict key must be text, found a {_TAG_NAMES[item_tag]}", pos)
            if len(stack) >= _MAX_DEPTH:
                raise _ParseError(f"values nested deeper than {_MAX_DEPTH} levels", pos)
            stack.append(_Frame({} if item_tag == _DICT else [], value_end))
            pos = value_start
            continue
        value = _parse_scalar(item_tag, data, value_start, value_end)
        pos = value_end + 1
        _attach(frame, value, pos)


def _parse_scalar(tag: int, data: bytes, start: int, end: int) -> Any:
    """Decodes one non-container tnetstring value from its type tag."""
    raw = data[start:end]
    if tag == _BYTES:
        return raw
    if tag == _TEXT:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _ParseError(f"invalid UTF-8 in a text value: {exc.reason}", start + exc.start) from None
    if tag == _INT:
        if raw.lstrip(b"-").isdigit():
            return int(raw)
        raise _ParseError(f"invalid integer literal {raw[:32]!r}", start)
    if tag == _FLOAT:
        try:
            return float(raw)
        except ValueError:
            raise _ParseError(f"invalid float literal {raw[:32]!r}", start) from None
    if tag == _BOOL:
        if raw == b"true":
            return True
        if raw == b"false":
            return False
        raise _ParseError(f"invalid boolean literal {raw[:32]!r}", start)
    if tag == _NULL:
        if raw:
            raise _ParseError(f"null with a non-empty body {raw[:32]!r}", start)
        return None
    raise _ParseError(f"unknown tnetstring type tag {chr(tag)!r}", end)


def _attach(frame: _Frame, value: Any, pos: int) -> None:
    """Adds a parsed value to the open container: list item, dict key, or dict value."""
    container = frame.container
    if isinstance(container, list):
        container.append(value)
    elif frame.key is None:
        if isinstance(value, bytes):  # files from mitmproxy before 1.0 (Python 2) have byte keys
            value = value.decode("utf-8", "replace")
        if not isinstance(value, str):
            raise _ParseError(f"dict key must be text, found {type(value).__name__}", pos)
        frame.key = value
    else:
        container[frame.key] = value
        frame.key = None


class _FieldError(Exception):
    """A flow dict that parsed but lacks a field or has one of the wrong type."""


def _build_flow(state: dict[str, Any], offset: int) -> MitmFlow:
    """Maps one flow's state dict to a MitmFlow, tolerating the field changes of format versions 7..21+."""
    version = state.get("version")
    if isinstance(version, list):
        version = tuple(version)
    elif not isinstance(version, int):
        version = None
    flow_type = _text(state.get("type", "http"), "type")
    error = state.get("error")
    if isinstance(error, dict):
        error_msg: str | None = _text(error.get("msg", ""), "error.msg")
    elif error is None:
        error_msg = None
    else:
        error_msg = _text(error, "error")
    request = response = None
    if flow_type == "http":
        raw_request = state.get("request")
        if not isinstance(raw_request, dict):
            problem = "HTTP flow has no request" if raw_request is None else "request is not a dict"
            raise _FieldError(problem)
        request = _build_request(raw_request)
        raw_response = state.get("response")
        if raw_response is not None:
            if not isinstance(raw_response, dict):
                raise _FieldError("response is not a dict")
            response = _build_response(raw_response)
    return MitmFlow(
        id=_text(state.get("id", ""), "id"),
        type=flow_type,
        request=request,
        response=response,
        error=error_msg,
        version=version,
        timestamp_created=_timestamp(state.get("timestamp_created"), "timestamp_created"),
        offset=offset,
        is_websocket=bool(state.get("websocket")),
    )


def _build_request(req: dict[str, Any]) -> MitmRequest:
    """Reads the request fields, which are bytes in current files and text in some older ones."""
    scheme = _text(req.get("scheme", "http"), "request.scheme")
    port = req.get("port")
    if port is None:
        port = 443 if scheme == "https" else 80
    elif not isinstance(port, int) or isinstance(port, bool):
        raise _FieldError(f"request.port is {port!r}, expected an integer")
    return MitmRequest(
        method=_text(req.get("method", "GET"), "request.method"),
        scheme=scheme,
        host=_text(req.get("host", ""), "request.host"),
        port=port,
        authority=_text(req.get("authority", ""), "request.authority"),
        path=_text(req.get("path", ""), "request.path"),
        http_version=_text(req.get("http_version", "HTTP/1.1"), "request.http_version"),
        headers=_headers(req.get("headers"), "request.headers"),
        content=_content(req, "request"),
        timestamp_start=_timestamp(req.get("timestamp_start"), "request.timestamp_start"),
        timestamp_end=_timestamp(req.get("timestamp_end"), "request.timestamp_end"),
        trailers=_trailers(req.get("trailers"), "request.trailers"),
    )


def _build_response(resp: dict[str, Any]) -> MitmResponse:
    """Reads the response fields; a status code is the one field without a sensible default."""
    status = resp.get("status_code")
    if not isinstance(status, int) or isinstance(status, bool):
        raise _FieldError(f"response.status_code is {status!r}, expected an integer")
    return MitmResponse(
        status_code=status,
        reason=_text(resp.get("reason", ""), "response.reason"),
        http_version=_text(resp.get("http_version", "HTTP/1.1"), "response.http_version"),
        headers=_headers(resp.get("headers"), "response.headers"),
        content=_content(resp, "response"),
        timestamp_start=_timestamp(resp.get("timestamp_start"), "response.timestamp_start"),
        timestamp_end=_timestamp(resp.get("timestamp_end"), "response.timestamp_end"),
        trailers=_trailers(resp.get("trailers"), "response.trailers"),
    )


def _text(value: Any, name: str) -> str:
    """Accepts text or bytes; non-UTF-8 bytes are read as Latin-1, which HTTP allows and which never fails."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")
    raise _FieldError(f"{name} is {type(value).__name__} {value!r:.40}, expected text or bytes")


def _timestamp(value: Any, name: str) -> float | None:
    """Timestamps are floats, sometimes ints or null (mitmproxy issue 4576); anything else is corrupt."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise _FieldError(f"{name} is {value!r:.40}, expected a number")


def _headers(value: Any, name: str) -> Headers:
    """Headers are a list of [name, value] pairs, kept in order and with repeats, as on the wire."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _FieldError(f"{name} is a {type(value).__name__}, expected a list of [name, value] pairs")
    out: Headers = []
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise _FieldError(f"{name} has an entry {pair!r:.60}, expected a [name, value] pair")
        out.append((_text(pair[0], name), _text(pair[1], name)))
    return out


def _trailers(value: Any, name: str) -> Headers | None:
    """Trailers are rare; None (no trailers) stays distinct from an empty list."""
    return None if value is None else _headers(value, name)


def _content(message: dict[str, Any], name: str) -> bytes | None:
    """The stored body; 'body' is its name in files from before mitmproxy 0.16."""
    value = message.get("content", message.get("body"))
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    raise _FieldError(f"{name}.content is a {type(value).__name__}, expected bytes or null")


def decode_content(headers: Sequence[tuple[str, str]], content: bytes, limit: int = DECODED_LIMIT) -> bytes:
    """Undoes every Content-Encoding (gzip, deflate, br, zstd, identity) in reverse order of application.

    Dumps store bodies as sent on the wire; a cassette stores them decoded. Raises ContentDecodingError for
    an unknown coding, a corrupt body, or brotli without the optional `brotli` package.
    """
    codings = [
        coding.strip().lower()
        for name, value in headers
        if name.lower() == "content-encoding"
        for coding in value.split(",")
        if coding.strip()
    ]
    if not content:  # HEAD and 204/304 answers may name an encoding for a body they do not have
        return content
    for coding in reversed(codings):
        content = _decode_one(coding, content, limit)
    return content


def _decode_one(coding: str, content: bytes, limit: int = DECODED_LIMIT) -> bytes:
    """Undoes one content coding, never past `limit` bytes (a 33 KB flow must not import as gigabytes),
    turning each library's own error into ContentDecodingError."""
    if coding in ("identity", "none"):
        return content
    try:
        if coding in ("gzip", "x-gzip"):
            return _bounded_zlib(content, 16 + zlib.MAX_WBITS, limit, coding)
        if coding == "deflate":
            try:
                return _bounded_zlib(content, zlib.MAX_WBITS, limit, coding)
            except zlib.error:  # some servers send raw deflate without the zlib wrapper
                return _bounded_zlib(content, -zlib.MAX_WBITS, limit, coding)
        if coding == "br":
            return _brotli_decompress(content, limit)
        if coding == "zstd":
            import zstandard

            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(content), read_across_frames=True)
            with reader:
                data = reader.read(limit + 1)
            return _within(data, limit, coding)
    except ContentDecodingError:
        raise
    except Exception as exc:  # zlib.error, EOFError, zstandard.ZstdError, brotli.error
        raise ContentDecodingError(f"body is not valid {coding} data: {exc}") from exc
    raise ContentDecodingError(f"unsupported Content-Encoding {coding!r}")


def _within(data: bytes | bytearray, limit: int, coding: str) -> bytes:
    if len(data) > limit:
        raise ContentDecodingError(
            f"{coding} body inflates past {limit:,} bytes; refused (a decompression bomb?)"
        )
    return data


def _bounded_zlib(content: bytes, wbits: int, limit: int, coding: str) -> bytes:
    """gzip (every member, as gzip.decompress reads them) or deflate, inflated at most `limit` + 1 bytes,
    into one growing buffer (a bomb costs `limit` bytes, not twice that)."""
    out = bytearray()
    data = content
    while data:
        inflater = zlib.decompressobj(wbits)
        while data:
            out += inflater.decompress(data, min(1 << 20, limit + 1 - len(out)))
            if len(out) > limit:
                return _within(out, limit, coding)
            data = inflater.unconsumed_tail
            if inflater.eof:
                break
        if not inflater.eof:
            raise ContentDecodingError(f"body is not valid {coding} data: it ends early")
        data = inflater.unused_data if wbits > 16 else b""  # gzip: the next member
    return bytes(out)


def _brotli_decompress(content: bytes, limit: int = 0) -> bytes:
    """Brotli is optional: most Anthropic traffic is gzip or plain, so the package is not a dependency."""
    try:
        import brotli
    except ImportError:
        try:
            import brotlicffi as brotli
        except ImportError:
            raise ContentDecodingError(
                "body is brotli-compressed (Content-Encoding: br) but neither the 'brotli' nor the "
                "'brotlicffi' package is installed; `pip install brotli` to read it"
            ) from None
    decompressor = brotli.Decompressor()
    out = bytearray()
    if limit and hasattr(decompressor, "can_accept_more_data"):  # brotli >= 1.2: output bounded per call
        data = content
        while True:
            piece = decompressor.process(data, output_buffer_limit=min(1 << 20, limit + 1 - len(out)))
            data = b""
            out += piece
            if len(out) > limit:
                return _within(out, limit, "br")
            if decompressor.is_finished() or not piece:
                return bytes(out)
    for at in range(0, len(content), 256):  # older brotli: a little input at a time, output checked each time
        out += decompressor.process(content[at : at + 256])
        if limit and len(out) > limit:
            return _within(out, limit, "br")
    return bytes(out)
