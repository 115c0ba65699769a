"""The installed official `anthropic` SDK as the oracle for folding a stream into a Message.

`sdk_accumulate` runs the SDK's own `accumulate_event` (the beta one by default, the GA one on request) over
event payloads, exactly as `client.beta.messages.stream(...)` does, and returns the snapshot as the JSON dict
the SDK would serialise. `sdk_events` checks payloads against the SDK's event types (pydantic validation), so
a corpus "built from the SDK's types" cannot drift from them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from anthropic.lib.streaming._beta_messages import accumulate_event as beta_accumulate_event
from anthropic.lib.streaming._messages import accumulate_event as ga_accumulate_event
from anthropic.types.beta import BetaRawMessageStreamEvent
from pydantic import TypeAdapter

FOLDED_EVENTS = frozenset(
    {"message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta"}
)
_BETA_EVENT = TypeAdapter(BetaRawMessageStreamEvent)


def sdk_accumulate(
    payloads: Iterable[dict[str, Any]], request_headers: Mapping[str, str] | None = None, *, beta: bool = True
) -> dict[str, Any]:
    """The Message the SDK's stream accumulates to, as a dict (API field names, unset fields left out).

    Every payload goes through `accumulate_event`, as in the SDK's MessageStream (which also feeds it pings,
    message_stop and unknown events; it raises on `error` before accumulating, so those are not passed).
    """
    snapshot: Any = None
    json_bufs: dict[int, bytes] = {}
    for payload in payloads:
        if payload.get("type") == "error":
            raise AssertionError("the SDK raises on an error event; the corpus must not fold one")
        if beta:
            snapshot = beta_accumulate_event(
                event=payload,
                current_snapshot=snapshot,
                json_bufs=json_bufs,
                request_headers=dict(request_headers or {}),
            )
        else:
            snapshot = ga_accumulate_event(event=payload, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None, "no message_start"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydantic warns when serialising a block type it does not know
        return snapshot.to_dict()


def sdk_events(payloads: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Payloads validated as the SDK's beta stream event types and serialised back by the SDK."""
    out = []
    for payload in payloads:
        event = _BETA_EVENT.validate_python(payload)
        out.append(event.to_dict())
    return out
