"""Chat Completions stream chunks -> Anthropic stream events, as a state machine with no I/O.

One `StreamTranslator` per response (nothing is shared between streams). It keeps the Anthropic grammar:
one message_start; blocks numbered 0, 1, 2... with one open at a time; message_delta only once the upstream's
trailing usage has come (at `[DONE]` or the end of the body); then message_stop; or an `error` event and
nothing after it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..adapters.openai_messages import (
    ToolArgumentsError,
    anthropic_tool_id,
    anthropic_usage,
    content_text,
    error_message,
    error_type_for,
    parse_arguments,
    reasoning_signature,
    reasoning_text,
    stop_reason,
    text_tokens,
)
from ..excerpts import quote

log = logging.getLogger("claude_vcr.adapters.openai")

Event = dict[str, Any]


@dataclass
class _Call:
    """One upstream tool call while its fragments arrive."""

    position: int
    upstream_id: str | None = None
    name: str = ""
    arguments: str = ""
    tool_id: str = ""
    sent: int = 0
    """How much of `arguments` has gone out as input_json_delta."""
    started: bool = False
    closed: bool = False

    def complete(self) -> bool:
        """Whether the arguments so far are a whole JSON object (more fragments could only break it)."""
        try:
            return isinstance(json.loads(self.arguments), dict)
        except ValueError:
            return False


class StreamTranslator:
    """Turns the chunks of one Chat Completions stream into Anthropic events.

    Feed it each chunk (`feed`), then `end` at `[DONE]` or the end of the body. A tool call streams live as
    input_json_delta while its block is open; fragments of other calls (parallel calls interleaved) wait
    until the open call's arguments form a whole JSON object, then follow in order, none lost. At the close
    of a tool block its joined arguments must be a JSON object; if not, the stream ends with an `error`
    event (api_error) instead, and `failed` says why (a truncated call under finish_reason `length` is kept,
    as the Anthropic API keeps one cut by max_tokens).
    """

    def __init__(
        self,
        *,
        message_id: str,
        model: str,
        input_tokens: int,
        stop_sequences: Iterable[str] = (),
        tool_names: Mapping[str, str] | None = None,
    ) -> None:
        self.message_id = message_id
        self.tool_names = dict(tool_names or {})
        """Upstream tool name -> the client's, for names the request had to shorten."""
        self.model = model
        self.input_tokens = input_tokens
        self.stop_sequences = tuple(stop_sequences)
        self.failed: str | None = None
        """Why the stream ended with an error event; None while it is fine."""
        self.done = False
        self._events: list[Event] = []
        self._blocks = 0
        self._open: str | None = None
        self._open_call: _Call | None = None
        self._thinking: list[str] = []
        self._calls: list[_Call] = []
        self._by_index: dict[int, _Call] = {}
        self._queue: list[_Call] = []
        self._deferred: list[tuple[str, str]] = []
        self._space = ""
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._refused = False
        self._matched: Any = None
        self._output = 0.0

    # What the reply calls ------------------------------------------------------------------------------------

    def start(self) -> list[Event]:
        """message_start, sent before the first chunk so the client sees the answer begin (and pings are
        valid); input_tokens here is the local estimate, the upstream's count follows in message_delta."""
        message = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}]

    def feed(self, chunk: Mapping[str, Any]) -> list[Event]:
        """Events for one parsed chunk (`data:` JSON) of the upstream stream."""
        if self.done:
            return []
        error = chunk.get("error")
        if error:
            detail = error if isinstance(error, dict) else {}
            return self.fail(error_type_for(detail), f"upstream error: {error_message(dict(chunk))}")
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            self._delta(delta)
            if choice.get("stop_reason") is not None:
                self._matched = choice["stop_reason"]
            finish = choice.get("finish_reason")
            if finish == "error":
                return self.fail("api_error", "the upstream ended the answer with finish_reason error")
            if finish and not self.done:
                self._finish = finish
                self._close_all()
        return self._flush()

    def end(self, *, saw_done: bool) -> list[Event]:
        """The upstream body is over: close what is open, then message_delta (with the usage that came) and
        message_stop. A body that ends with neither a finish_reason nor `[DONE]` was cut: an error event."""
        if self.done:
            return []
        if self._finish is None:
            if not saw_done:
                return self.fail("api_error", "the upstream stream ended before the answer was finished")
            log.warning("upstream stream ended with [DONE] but no finish_reason; answering end_turn")
            self._finish = "stop"
        self._close_all()
        if self.done:
            return self._flush()
        if self._blocks == 0 and self._space:
            self._open_block("text", {"type": "text", "text": ""})
            self._emit_delta({"type": "text_delta", "text": self._space})
            self._close()
        reason, sequence = stop_reason(
            self._finish,
            tool_calls=any(call.started for call in self._calls),
            refused=self._refused,
            matched=self._matched,
            stop_sequences=self.stop_sequences,
        )
        if self._usage is not None:
            usage = anthropic_usage(self._usage)
        else:
            log.warning("upstream sent no usage chunk; message_delta carries estimated counts")
            usage = {
                "input_tokens": self.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": max(1, math.ceil(self._output)),
            }
        self._emit(
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": usage,
            }
        )
        self._emit({"type": "message_stop"})
        self.done = True
        return self._flush()

    def fail(self, kind: str, message: str) -> list[Event]:
        """End the stream with an `error` event (after whatever was already due), logged."""
        self._fail(kind, message)
        return self._flush()

    def _fail(self, kind: str, message: str) -> None:
        """Queue the `error` event that ends the stream; nothing is emitted after it."""
        if not self.done:
            self.failed = message
            log.warning("stream %s ends with an %s event: %s", self.message_id, kind, message)
            self._events.append({"type": "error", "error": {"type": kind, "message": message}})
            self.done = True

    # Content ------------------------------------------------------------------------------------------------

    def _delta(self, delta: Mapping[str, Any]) -> None:
        """Reasoning, then text, then tool call fragments of one delta (some servers send all at once)."""
        reasoning = reasoning_text(delta)
        if reasoning:
            self._text("thinking", reasoning)
        text = content_text(delta.get("content"))
        if text:
            self._text("text", text)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refused = True
            self._text("text", refusal)
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                self._tool_fragment(call)
        if isinstance(delta.get("function_call"), dict):
            self._tool_fragment({"index": 0, "function": delta["function_call"]})

    def _text(self, kind: str, text: str) -> None:
        """Text or reasoning: extends the open block of its kind, else closes the open block and starts one.

        Whitespace-only text is held until real text follows (so `\\n\\n` before a tool call makes no empty
        text block); text that arrives while a tool call is still incomplete waits until the calls are done.
        """
        if self.done:
            return
        self._output += text_tokens(text)
        if kind == "text" and self._open != "text":
            if not (self._space + text).strip():
                self._space += text
                return
            text, self._space = self._space + text, ""
        if self._open == kind:
            self._emit_text(kind, text)
            return
        if self._queue or (self._open_call is not None and not self._open_call.complete()):
            if self._deferred and self._deferred[-1][0] == kind:
                text = self._deferred.pop()[1] + text
            self._deferred.append((kind, text))
            return
        self._close()
        if kind == "thinking":
            self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        else:
            self._open_block("text", {"type": "text", "text": ""})
        self._emit_text(kind, text)

    def _emit_text(self, kind: str, text: str) -> None:
        """A text_delta or thinking_delta into the open block."""
        if kind == "thinking":
            self._thinking.append(text)
            self._emit_delta({"type": "thinking_delta", "thinking": text})
        else:
            self._emit_delta({"type": "text_delta", "text": text})

    def _tool_fragment(self, fragment: Mapping[str, Any]) -> None:
        """One entry of `delta.tool_calls`: finds (or starts) its call by `index`, else by id, then streams."""
        if self.done:
            return
        index = fragment.get("index")
        upstream_id = (
            fragment.get("id") if isinstance(fragment.get("id"), str) and fragment.get("id") else None
        )
        function = fragment.get("function") if isinstance(fragment.get("function"), dict) else {}
        name = function.get("name") if isinstance(function.get("name"), str) else ""
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        arguments = arguments or ""
        call: _Call | None
        if isinstance(index, int) and not isinstance(index, bool):
            call = self._by_index.get(index)
        elif upstream_id:
            call = next((c for c in self._calls if c.upstream_id == upstream_id), None)
        else:
            call = self._calls[-1] if self._calls else None
        if call is not None and upstream_id and call.upstream_id and upstream_id != call.upstream_id:
            call = None  # a new call that reuses the index of an earlier one
        elif call is not None and index is None and not upstream_id and name and call.name:
            call = None  # a server that sends whole calls with neither index nor id
        if call is None:
            call = _Call(position=len(self._calls), upstream_id=upstream_id)
            self._calls.append(call)
            self._queue.append(call)
            if isinstance(index, int):
                self._by_index[index] = call
        if upstream_id and not call.upstream_id:
            call.upstream_id = upstream_id
        if name and not call.name:
            call.name = name
        self._output += text_tokens(arguments)
        if call.closed:
            if arguments.strip():
                self._fail(
                    "api_error",
                    f"the upstream sent more arguments for tool call {call.name} ({call.tool_id}) after they "
                    f"formed a whole JSON object: {quote(arguments, 80)}",
                )
            return
        call.arguments += arguments
        self._pump()

    def _pump(self) -> None:
        """Stream the open call's new arguments; once they are whole and another call waits, move on."""
        while not self.done:
            call = self._open_call
            if call is not None:
                fresh = call.arguments[call.sent :]
                if fresh:
                    call.sent = len(call.arguments)
                    self._emit_delta({"type": "input_json_delta", "partial_json": fresh})
                if self._queue and call.complete():
                    self._close()
                    continue
                return
            if self._queue and self._queue[0].name:
                self._close()
                self._start_call(self._queue.pop(0))
                continue
            return

    def _start_call(self, call: _Call) -> None:
        """content_block_start for a tool call, with an Anthropic id derived from the upstream's."""
        tool_id = anthropic_tool_id(call.upstream_id, f"{self.message_id}:{call.position}")
        if any(other.tool_id == tool_id for other in self._calls):
            tool_id = f"{tool_id}_{call.position}"
        call.tool_id, call.started = tool_id, True
        self._space = ""  # whitespace before a tool call is not worth a text block
        name = self.tool_names.get(call.name, call.name)
        self._open_block("tool_use", {"type": "tool_use", "id": tool_id, "name": name, "input": {}})
        self._open_call = call

    def _close_all(self) -> None:
        """The answer is finished: close the open block, then every waiting call and waiting text in order."""
        self._close()
        while self._queue and not self.done:
            call = self._queue.pop(0)
            if not call.name:
                self._fail(
                    "api_error", f"the upstream sent a tool call with no function name ({call.upstream_id})"
                )
                return
            self._start_call(call)
            self._pump()
            self._close()
        deferred, self._deferred = self._deferred, []
        for kind, text in deferred:
            self._text(kind, text)
        self._close()

    # Blocks -------------------------------------------------------------------------------------------------

    def _open_block(self, kind: str, block: Event) -> None:
        """content_block_start with the next index."""
        self._emit({"type": "content_block_start", "index": self._blocks, "content_block": block})
        self._open = kind

    def _close(self) -> None:
        """content_block_stop for the open block: a thinking block gets its signature first, a tool block's
        joined arguments are checked (blank means `{}`, sent as such)."""
        if self._open is None or self.done:
            return
        if self._open == "thinking":
            signature = reasoning_signature("".join(self._thinking))
            self._emit_delta({"type": "signature_delta", "signature": signature})
            self._thinking = []
        elif self._open == "tool_use" and self._open_call is not None:
            call = self._open_call
            if not call.arguments.strip():
                self._emit_delta({"type": "input_json_delta", "partial_json": "{}"})
            else:
                try:
                    parse_arguments(call.name, call.tool_id, call.arguments)
                except ToolArgumentsError as error:
                    if self._finish != "length":
                        self._fail("api_error", str(error))
                        return
                    log.warning("tool call %s was cut by max_tokens: its JSON stays incomplete", call.tool_id)
            call.closed = True
            self._open_call = None
        self._emit({"type": "content_block_stop", "index": self._blocks})
        self._blocks += 1
        self._open = None

    def _emit_delta(self, delta: Event) -> None:
        """A content_block_delta for the open block."""
        self._emit({"type": "content_block_delta", "index": self._blocks, "delta": delta})

    def _emit(self, event: Event) -> None:
        """Queue an event for the next flush; nothing after the stream has ended."""
        if not self.done:
            self._events.append(event)

    def _flush(self) -> list[Event]:
        """The events due so far, handed out once."""
        events, self._events = self._events, []
        return events
