"""Adapter for the OpenAI chat completions API, and any server that speaks it (vLLM, Ollama, ...)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletionChunk

from cascade.core.errors import ProviderError, ProviderTimeout, TransientProviderError
from cascade.core.messages import write_messages, write_tool_choice, write_tools
from cascade.core.redaction import redact
from cascade.core.stream_events import StreamDone, StreamEvent, StreamStarted, TextDelta
from cascade.core.tokens import fill_usage
from cascade.core.values import Completion, Request, ToolCall, Usage
from cascade.providers.base import (
    STREAM_TRANSPORT_ERRORS,
    SdkAdapter,
    StreamCutOff,
    error_message,
    status_error,
    stream_transport_error,
)


class OpenAIAdapter(SdkAdapter[openai.AsyncOpenAI]):
    """Calls `client.chat.completions.create`; the client's own retries must be off."""

    def _options(self, request: Request) -> dict[str, Any]:
        """Call options: the tier's params under the call's own, the tools, and what the
        verifiers asked for."""
        options = {**self.params, **request.params}
        if request.tools:
            options["tools"] = write_tools(request.tools)
            if request.tool_choice is not None:
                options["tool_choice"] = write_tool_choice(request.tool_choice)
        if request.logprobs:
            options.setdefault("logprobs", True)
        if self.structured_output and request.response_schema is not None:
            options["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.response_schema_name,
                    "schema": dict(request.response_schema),
                    "strict": False,  # strict mode rejects common schemas (optional fields)
                },
            }
        return options

    def _messages(self, request: Request) -> list[Any]:  # plain dicts: the wire shape of the params
        return write_messages(request.messages, request.system)

    async def stream_events(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        """The answer as it is generated. Usage is asked for (`stream_options.include_usage`)
        and reported at the end; a stream without a finish reason raises StreamCutOff."""
        client = self._ready_client()
        options = self._options(request)
        options.setdefault("stream_options", {"include_usage": True})
        try:
            stream = cast(
                "openai.AsyncStream[ChatCompletionChunk]",
                await client.chat.completions.create(
                    model=self.model, messages=self._messages(request), stream=True, **options
                ),
            )
        except openai.APIError as exc:
            raise translate_openai_error(exc) from None
        yield StreamStarted()
        finish_reason: str | None = None
        usage: Usage | None = None
        logprobs: list[float] = []
        tools = _StreamedToolCalls()
        refusal = ""
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.logprobs is not None and choice.logprobs.content:
                    logprobs.extend(t.logprob for t in choice.logprobs.content)
                delta = choice.delta
                if delta is not None:
                    if delta.content:
                        yield TextDelta(delta.content)
                    if delta.tool_calls:
                        tools.add(delta.tool_calls)
                    if delta.refusal:
                        refusal += delta.refusal
                if choice.finish_reason is not None:
                    finish_reason = choice.finish_reason
        except openai.APIError as exc:
            raise translate_openai_error(exc, in_stream=True) from None
        except STREAM_TRANSPORT_ERRORS as exc:
            raise stream_transport_error(exc) from None
        except ValueError as exc:  # a data line that is not JSON
            raise TransientProviderError(f"malformed stream: {exc}") from None
        finally:
            await stream.close()
        if finish_reason is None:
            raise StreamCutOff("stream ended without a finish reason (cut off)")
        yield StreamDone(finish_reason, usage, tuple(logprobs) or None, tools.calls(), refusal or None)

    async def complete(self, request: Request) -> Completion:
        client = self._ready_client()
        try:
            response = await client.chat.completions.create(
                model=self.model,
                messages=self._messages(request),
                **self._options(request),
            )
        except openai.APIError as exc:
            raise translate_openai_error(exc) from None
        except ValueError as exc:  # the SDK lets a non-JSON body escape as JSONDecodeError
            raise TransientProviderError(f"malformed response: {exc}") from None
        if not getattr(response, "choices", None):
            raise TransientProviderError("malformed response: no choices")
        choice = response.choices[0]
        text = choice.message.content or ""
        usage = response.usage
        logprobs = None
        if choice.logprobs is not None and choice.logprobs.content:
            logprobs = tuple(t.logprob for t in choice.logprobs.content)
        return Completion(
            text=text,
            model=response.model or self.model,
            usage=fill_usage(
                usage.prompt_tokens if usage else None,
                usage.completion_tokens if usage else None,
                request.text(),
                text,
                self.model,
            ),
            finish_reason=choice.finish_reason,
            logprobs=logprobs,
            tool_calls=tuple(
                ToolCall(
                    call.function.name, call.function.arguments or "", getattr(call, "id", None) or _made_id()
                )
                for call in choice.message.tool_calls or ()
                if getattr(call, "function", None) is not None
            ),
            refusal=choice.message.refusal or None,
        )


class _StreamedToolCalls:
    """Tool calls put together from a stream's pieces (name and id first, then the arguments)."""

    def __init__(self) -> None:
        self._parts: dict[int, list[str | None]] = {}  # index -> [id, name, arguments]

    def add(self, pieces: Any) -> None:
        for piece in pieces:
            part = self._parts.setdefault(piece.index, [None, None, ""])
            part[0] = part[0] or piece.id
            function = piece.function
            if function is not None:
                part[1] = part[1] or function.name
                part[2] = f"{part[2]}{function.arguments or ''}"

    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(name or "(unnamed)", arguments or "", call_id or _made_id())
            for _, (call_id, name, arguments) in sorted(self._parts.items())
        )


def _made_id() -> str:
    """An id for a call a server sent without one (some OpenAI-compatible ones do): the
    caller's tool message must name it, and Anthropic wants every call's id distinct."""
    return f"call_{uuid.uuid4().hex[:24]}"


def translate_openai_error(exc: openai.APIError, *, in_stream: bool = False) -> ProviderError:
    """The cascade error for an OpenAI SDK error: transient ones are retried, others are not."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout("timeout: no answer within the tier's timeout_s")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__  # the transport's own words say more than "Connection error."
        detail = f"{type(cause).__name__}: {cause}" if cause else exc.message
        return TransientProviderError(redact(f"connection error: {detail}"))
    if isinstance(exc, openai.APIStatusError):
        return status_error(exc.status_code, error_message(exc.body, exc.message), exc.response.headers)
    if in_stream:  # an error event inside the stream (the server gave up mid-answer)
        return TransientProviderError(redact(f"error event in stream: {exc.message}"))
    # APIResponseValidationError and other undecodable answers: a proxy hiccup as often as not
    return TransientProviderError(redact(f"malformed response: {exc.message}"))
