"""Adapter for the Anthropic messages API."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, cast

import anthropic

from cascade.core.errors import PermanentProviderError, ProviderError, ProviderTimeout, TransientProviderError
from cascade.core.messages import tool_arguments
from cascade.core.redaction import redact
from cascade.core.stream_events import InputReported, StreamDone, StreamEvent, StreamStarted, TextDelta
from cascade.core.tokens import fill_usage
from cascade.core.values import (
    Completion,
    ContentPart,
    ForcedTool,
    Message,
    Request,
    TextPart,
    ToolCall,
    ToolChoice,
    Usage,
)
from cascade.providers.base import (
    STREAM_TRANSPORT_ERRORS,
    SdkAdapter,
    StreamCutOff,
    error_message,
    status_error,
    stream_transport_error,
)
from cascade.providers.signatures import sdk_parameters

DEFAULT_MAX_TOKENS = 1024  # the messages API requires max_tokens; this is used when params omit it


class AnthropicAdapter(SdkAdapter[anthropic.AsyncAnthropic]):
    """Calls `client.messages.create`; the client's own retries must be off."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic | None,
        model: str,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(client, model, {"max_tokens": DEFAULT_MAX_TOKENS, **(params or {})}, **kwargs)

    def _answer_tool(self, request: Request) -> str | None:
        """The name of the tool whose forced call carries the structured answer, if one is
        sent: with structured output on and an object schema (a tool's input is always an
        object)."""
        schema = request.response_schema
        if self.structured_output and schema is not None and schema.get("type") == "object":
            # the caller's own tools are offered instead: one call cannot force two tools
            return None if request.tools else request.response_schema_name
        return None

    def _options(self, request: Request) -> dict[str, Any]:
        """Call options: the tier's params under the call's own, the system prompt, the
        tools, and a forced tool call carrying the response schema when structured output
        is on."""
        options: dict[str, Any] = {**self.params, **call_params(request.params)}
        if request.system:
            options["system"] = request.system
        if request.tools:
            options["tools"] = [
                {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "input_schema": dict(t.parameters),
                }
                for t in request.tools
            ]
            if request.tool_choice is not None:
                options["tool_choice"] = _tool_choice(request.tool_choice)
        schema = request.response_schema
        name = self._answer_tool(request)
        if schema is not None and name is not None:
            options["tools"] = [
                {
                    "name": name,
                    "description": "Give the answer as structured data.",
                    "input_schema": dict(schema),
                }
            ]
            options["tool_choice"] = {"type": "tool", "name": name}
        return options

    async def stream_events(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        """The answer as it is generated (a forced tool call's JSON input streams as text).
        Input tokens are reported at the start; a stream without `message_stop` raises
        StreamCutOff."""
        client = self._ready_client()
        try:
            stream = cast(
                "anthropic.AsyncStream[Any]",
                await client.messages.create(
                    model=self.model, messages=self._messages(request), stream=True, **self._options(request)
                ),
            )
        except anthropic.APIError as exc:
            raise translate_anthropic_error(exc) from None
        yield StreamStarted()
        input_tokens: int | None = None
        output_tokens: int | None = None
        stop_reason: str | None = None
        finished = False
        answer_tool = self._answer_tool(request)
        tool_calls: dict[int, list[str]] = {}  # block index -> [name, id, input so far]
        try:
            async for event in stream:
                if event.type == "message_start":
                    usage = getattr(event.message, "usage", None)
                    if usage is not None and usage.input_tokens is not None:
                        input_tokens = usage.input_tokens
                        yield InputReported(input_tokens)
                elif event.type == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use" and block.name != answer_tool:
                        tool_calls[event.index] = [block.name, block.id, ""]
                elif event.type == "content_block_delta":
                    piece = getattr(event.delta, "text", None) or getattr(event.delta, "partial_json", None)
                    if piece and event.index in tool_calls:
                        tool_calls[event.index][2] += piece
                    elif piece:
                        yield TextDelta(piece)
                elif event.type == "message_delta":
                    stop_reason = event.delta.stop_reason
                    if event.usage is not None and event.usage.output_tokens is not None:
                        output_tokens = event.usage.output_tokens
                elif event.type == "message_stop":
                    finished = True
        except anthropic.APIError as exc:
            raise translate_anthropic_error(exc) from None
        except STREAM_TRANSPORT_ERRORS as exc:  # this SDK lets them escape unwrapped mid-stream
            raise stream_transport_error(exc) from None
        except ValueError as exc:  # a data line that is not JSON
            raise TransientProviderError(f"malformed stream: {exc}") from None
        finally:
            await stream.close()
        if not finished:
            raise StreamCutOff("stream ended without message_stop (cut off)")
        reported = (
            Usage(input_tokens, output_tokens)
            if input_tokens is not None and output_tokens is not None
            else None
        )
        calls = tuple(ToolCall(name, arguments, call_id) for name, call_id, arguments in tool_calls.values())
        yield StreamDone(stop_reason, reported, tool_calls=calls)

    def _messages(self, request: Request) -> list[Any]:  # plain dicts: the wire shape of the params
        return anthropic_messages(request.messages)

    async def complete(self, request: Request) -> Completion:
        client = self._ready_client()
        try:
            response = await client.messages.create(
                model=self.model,
                messages=self._messages(request),
                **self._options(request),
            )
        except anthropic.APIError as exc:
            raise translate_anthropic_error(exc) from None
        except ValueError as exc:  # the SDK lets a non-JSON body escape as JSONDecodeError
            raise TransientProviderError(f"malformed response: {exc}") from None
        content = getattr(response, "content", None)
        if content is None:
            raise TransientProviderError("malformed response: no content")
        answer_tool = self._answer_tool(request)
        text = "".join(_block_text(block, answer_tool) for block in content)
        tool_calls = tuple(
            ToolCall(block.name, json.dumps(block.input), block.id)
            for block in content
            if block.type == "tool_use" and block.name != answer_tool
        )
        usage = response.usage
        return Completion(
            text=text,
            model=response.model or self.model,
            usage=fill_usage(
                usage.input_tokens if usage else None,
                usage.output_tokens if usage else None,
                request.text(),
                text,
                self.model,
            ),
            finish_reason=response.stop_reason,
            tool_calls=tool_calls,
        )


def call_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Per-call parameters in this API's words (`stop` is `stop_sequences`); those it does
    not take are not sent: seed and the penalties never, and temperature and top_p not to
    an SDK whose `messages.create` has dropped them (2.x)."""
    out = dict(params)
    if "stop" in out:
        stop = out.pop("stop")
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    return {k: v for k, v in out.items() if k in accepted_params()}


def accepted_params() -> frozenset[str]:
    """What this SDK's `messages.create` takes."""
    return sdk_parameters("anthropic", load=True)


def _tool_choice(choice: ToolChoice) -> dict[str, Any]:
    if isinstance(choice, ForcedTool):
        return {"type": "tool", "name": choice.name}
    return {"type": {"auto": "auto", "none": "none", "required": "any"}[choice]}


def anthropic_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation as this API takes it: tool results are user turns of `tool_result`
    blocks, tool calls are `tool_use` blocks, and turns of one role in a row are merged
    (the API wants the roles to alternate). A plain text turn stays a string; an empty
    assistant turn is left out (the API refuses empty text, and it says nothing)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "assistant" and not m.content.strip() and not m.parts and not m.tool_calls:
            continue
        role = "user" if m.role == "tool" else m.role
        blocks = _blocks(m)
        if out and out[-1]["role"] == role:
            last = out[-1]
            if isinstance(last["content"], str):
                last["content"] = [{"type": "text", "text": last["content"]}]
            last["content"] += blocks if isinstance(blocks, list) else [{"type": "text", "text": blocks}]
        else:
            out.append({"role": role, "content": blocks})
    return out


def _blocks(m: Message) -> str | list[dict[str, Any]]:
    if m.role == "tool":
        return [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}]
    if not m.parts and not m.tool_calls:
        return m.content
    blocks: list[dict[str, Any]] = [_part_block(p) for p in m.parts]
    if not m.parts and m.content:
        blocks.append({"type": "text", "text": m.content})
    blocks += [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": tool_arguments(c)} for c in m.tool_calls
    ]
    return blocks


def _part_block(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if part.url.startswith("data:"):
        header, _, data = part.url.partition(",")
        media_type = header.removeprefix("data:").split(";")[0]
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": part.url}}


def _block_text(block: Any, answer_tool: str | None) -> str:
    """Text of one content block; the forced answer tool's input is the answer, as JSON
    (any other tool call is no text of the answer)."""
    if block.type == "text":
        return str(block.text)
    if block.type == "tool_use" and block.name == answer_tool:
        return json.dumps(block.input)
    return ""


# error types of an `error` event inside a stream that a retry (or another tier) may get past
_TRANSIENT_STREAM_ERRORS = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})


def translate_anthropic_error(exc: anthropic.APIError) -> ProviderError:
    """The cascade error for an Anthropic SDK error (529 overloaded is transient)."""
    if isinstance(exc, anthropic.APIStatusError) and exc.status_code == 200:
        # an `error` event inside a 200 stream: the SDK classes it by the HTTP status
        kind = getattr(exc, "type", None) or "error"
        message = redact(f"error event in stream: {kind}: {error_message(exc.body, exc.message)}")
        if kind in _TRANSIENT_STREAM_ERRORS:
            return TransientProviderError(message)
        return PermanentProviderError(message)
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderTimeout("timeout: no answer within the tier's timeout_s")
    if isinstance(exc, anthropic.APIConnectionError):
        return TransientProviderError(redact(f"connection error: {exc.message}"))
    if isinstance(exc, anthropic.APIStatusError):
        return status_error(exc.status_code, error_message(exc.body, exc.message), exc.response.headers)
    return TransientProviderError(redact(f"malformed response: {exc.message}"))
