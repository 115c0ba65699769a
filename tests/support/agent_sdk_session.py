"""One Claude Agent SDK `query()`, as a user's script makes it; run by the Python of the SDK release under test
(a venv of its own), so it imports nothing but the SDK. Arguments as `claude -p` takes them (the prompt,
`--continue`, `--allowedTools NAME`, `--model NAME`); prints what the user sees: the assistant's text, its tool
calls, the tool results (a subagent's: whether it failed) and the final result, one line each. VCR_SDK_CLI_ENV (JSON) goes to the CLI alone
through the SDK's `env` option."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ResultMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    query,
)


def options_and_prompt(argv: list[str]) -> tuple[ClaudeAgentOptions, str]:
    """The `claude -p` arguments the release matrix's sessions use, as the SDK's options."""
    options = ClaudeAgentOptions(env=json.loads(os.environ.get("VCR_SDK_CLI_ENV", "{}")))
    prompt: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--continue":
            options.continue_conversation = True
        elif arg == "--allowedTools":
            options.allowed_tools = [next(args)]
        elif arg == "--model":
            options.model = next(args)
        else:
            prompt.append(arg)
    return options, " ".join(prompt)


def shown(content: object) -> str:
    """A tool result's content as one line."""
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


SUBAGENT_TOOLS = ("Agent", "Task")
"""Their result is Claude Code's own text around the subagent's report (a random agent id, timings; a preamble
that changes between releases): the script shows whether it failed, not the text."""


async def main(argv: list[str]) -> None:
    options, prompt = options_and_prompt(argv)
    subagent_calls: set[str] = set()
    async for message in query(prompt=prompt, options=options):
        if isinstance(message, AssistantMessage):
            for block in message.content:
                if isinstance(block, TextBlock):
                    print("text:", block.text)
                elif isinstance(block, ToolUseBlock):
                    print("tool_use:", block.name, json.dumps(block.input, sort_keys=True))
                    if block.name in SUBAGENT_TOOLS:
                        subagent_calls.add(block.id)
        elif isinstance(message, UserMessage) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, ToolResultBlock):
                    text = "(subagent)" if block.tool_use_id in subagent_calls else shown(block.content).strip()
                    print("tool_result:", text, "error" if block.is_error else "")
        elif isinstance(message, ResultMessage):
            print("result:", message.subtype, message.num_turns, message.result)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
