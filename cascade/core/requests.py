"""What the caller asks: a conversation (text, images, tool calls and results), the tools on
offer, an optional response schema and per-call parameters. All frozen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal


@dataclass(frozen=True)
class ToolCall:
    """A model's call of a tool, as it wrote it: the tool's name and its arguments (JSON text)."""

    name: str
    arguments: str = ""
    id: str | None = None


@dataclass(frozen=True)
class ImagePart:
    """An image in a message: an `https:` URL or a `data:` URL (base64), as OpenAI takes it."""

    url: str
    detail: str | None = None


@dataclass(frozen=True)
class TextPart:
    text: str


ContentPart = TextPart | ImagePart


@dataclass(frozen=True)
class Message:
    """One turn of the conversation.

    `content` is its text (every text part, joined): what verifiers, token counts and
    judges read. `parts` keeps the content in order when it holds more than text (images);
    adapters send `parts` when there are any. An assistant turn may carry the `tool_calls`
    it made; a `tool` turn is the result of the call `tool_call_id` names.
    """

    role: str  # "user" | "assistant" | "tool"
    content: str
    parts: tuple[ContentPart, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, what it does, and a JSON Schema of its arguments."""

    name: str
    description: str = ""
    # dicts are not hashable: a tool hashes by name and description, and compares whole
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}, hash=False
    )


# Which tools the model may call: "auto" (any or none), "none", "required" (at least one),
# or ForcedTool(name) for that one.
@dataclass(frozen=True)
class ForcedTool:
    name: str


ToolChoice = Literal["auto", "none", "required"] | ForcedTool


@dataclass(frozen=True)
class Request:
    """What the caller asks: a conversation and an optional system prompt.

    `response_schema` is a JSON Schema the answer should follow; tiers configured with
    `structured_output: true` pass it to the provider (OpenAI `response_format`, Anthropic
    forced tool use). `logprobs` asks OpenAI-format providers for token log-probabilities.
    Verifiers set both through their `prepare_request` hook.
    """

    messages: tuple[Message, ...]
    system: str | None = None
    id: str | None = None  # the caller's id for it (batch items, recorded outcomes); never sent
    # the mappings take no part in the hash (dicts have none), only in equality
    response_schema: Mapping[str, Any] | None = field(default=None, hash=False)
    response_schema_name: str = "answer"
    logprobs: bool = False
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    # per-call model parameters (`cascade.core.messages.CALL_PARAMS`), over each tier's own
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_prompt(cls, prompt: str, *, system: str | None = None, id: str | None = None) -> Request:
        return cls(messages=(Message("user", prompt),), system=system, id=id)

    def text(self) -> str:
        """All the text of the request, for token estimates."""
        parts = [self.system or ""]
        for m in self.messages:
            parts += [m.content, *(f"{c.name}({c.arguments})" for c in m.tool_calls)]
        return "\n".join(p for p in parts if p)

    def with_system_note(self, note: str) -> Request:
        """This request with `note` appended to its system prompt."""
        return replace(self, system=f"{self.system}\n\n{note}" if self.system else note)

    def followed_by(self, *turns: Message) -> Request:
        """This request with more conversation turns after it."""
        return replace(self, messages=self.messages + turns)

    def replace(self, **changes: Any) -> Request:
        return replace(self, **changes)
