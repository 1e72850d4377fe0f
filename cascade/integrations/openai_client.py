"""A cascade in the shape of `openai.AsyncOpenAI`, so code written for the SDK runs on it unchanged.

`client.chat.completions.create(model=..., messages=..., stream=..., ...)` answers with the
SDK's own `ChatCompletion`, or an async stream of its `ChatCompletionChunk`s; the
cascade's whole result rides along in the extra field `cascade` (the SDK's models keep
fields they do not know). `usage` holds the tokens of the returned answer. `model` is
taken and ignored: the cascade picks the model. A stream uses the `buffer` policy (a
plain client cannot take back text it was sent): text arrives once it is verified, tool
calls whole at the end. No acceptable answer raises `CascadeAPIError`, an `openai.APIError`
carrying the result; a request no tier could take raises `CascadeBadRequestError`, an
`openai.BadRequestError`, from `create`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal, Protocol, overload

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from cascade.core.errors import ExhaustedError
from cascade.core.events import CascadeEvent, StreamDelta, StreamRestart, StreamResult
from cascade.core.messages import CALL_PARAMS
from cascade.core.policy import FILTERED, TRUNCATED
from cascade.core.values import Result, openai_tool_call

try:  # the SDK's HTTP library: httpx2 in current releases, httpx before
    import httpx2 as _httpx
except ImportError:  # pragma: no cover
    import httpx as _httpx  # type: ignore[no-redef,import-not-found,unused-ignore]

# what `create` takes besides the messages: passed on (the cascade's per-call parameters),
# or taken and left (client-side options)
PASSED = CALL_PARAMS
IGNORED = frozenset({"model", "user", "metadata", "store", "timeout", "extra_headers", "extra_query"})
REQUEST = frozenset({"tools", "tool_choice", "response_format"})  # what the cascade's checks read


class Answers(Protocol):
    """What the client needs of a cascade."""

    def arun(self, prompt: Any, **kwargs: Any) -> Any: ...

    def astream(self, prompt: Any, **kwargs: Any) -> AsyncIterator[CascadeEvent]: ...

    async def aclose(self) -> None: ...


class CascadeAPIError(openai.APIError):
    """No acceptable answer: what `openai.APIError` handlers catch, with the cascade's result."""

    def __init__(self, error: ExhaustedError) -> None:
        request = _httpx.Request("POST", "cascade://chat/completions")
        super().__init__(str(error), request, body={"error": {"message": str(error)}})
        self.result = error.result


class CascadeBadRequestError(openai.BadRequestError, ValueError):
    """A request no tier could take (malformed messages, tools, response_format): what the
    API answers with HTTP 400, raised before any call. Also a ValueError, as `run` raises."""

    def __init__(self, error: ValueError) -> None:
        response = _httpx.Response(400, request=_httpx.Request("POST", "cascade://chat/completions"))
        super().__init__(str(error), response=response, body={"error": {"message": str(error)}})


class CascadeOpenAIClient:
    """`client.chat.completions.create(...)` on a cascade; `close`, and `async with`, close it."""

    def __init__(self, cascade: Answers) -> None:
        self.chat = _Chat(_Completions(cascade))
        self._cascade = cascade

    async def close(self) -> None:
        await self._cascade.aclose()

    async def __aenter__(self) -> CascadeOpenAIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Chat:
    def __init__(self, completions: _Completions) -> None:
        self.completions = completions


class _Completions:
    def __init__(self, cascade: Answers) -> None:
        self._cascade = cascade

    @overload
    async def create(
        self, *, messages: Sequence[Mapping[str, Any]], stream: Literal[True], **options: Any
    ) -> ChunkStream: ...

    @overload
    async def create(
        self, *, messages: Sequence[Mapping[str, Any]], stream: Literal[False] | None = None, **options: Any
    ) -> ChatCompletion: ...

    @overload
    async def create(
        self, *, messages: Sequence[Mapping[str, Any]], stream: bool, **options: Any
    ) -> ChatCompletion | ChunkStream: ...

    async def create(
        self, *, messages: Sequence[Mapping[str, Any]], **options: Any
    ) -> ChatCompletion | ChunkStream:
        """The cascade's answer as the SDK's `chat.completions.create` gives it. An argument
        given as None, or as the SDK's markers of one left out (`omit`, `NOT_GIVEN`), is
        not given."""
        asked = {k: v for k, v in options.items() if _given(v) is not None}
        stream, stream_options = asked.pop("stream", False), asked.pop("stream_options", None)
        n, extra_body = asked.pop("n", 1), asked.pop("extra_body", None)
        if "max_completion_tokens" in asked:
            asked["max_tokens"] = asked.pop("max_completion_tokens")
        unknown = sorted(set(asked) - PASSED - IGNORED - REQUEST)
        if unknown or n != 1 or extra_body:
            what = ", ".join(unknown) or ("n > 1" if n != 1 else "extra_body")
            raise TypeError(f"create(): a cascade does not take {what}")
        ask = {k: v for k, v in asked.items() if k in PASSED | REQUEST}
        if stream:
            usage = bool(stream_options and stream_options.get("include_usage"))
            chunks = ChunkStream(self._cascade.astream(messages, policy="buffer", **ask), include_usage=usage)
            await chunks.start()
            return chunks
        try:
            result = await self._cascade.arun(messages, **ask)
        except ExhaustedError as exc:
            raise CascadeAPIError(exc) from None
        except ValueError as exc:
            raise CascadeBadRequestError(exc) from None
        return chat_completion(result)


def _given(value: Any) -> Any:
    """`value`, or None for the SDK's markers of an argument left out, which code written
    for the SDK passes on (`tools=tools or omit`)."""
    return None if isinstance(value, openai.NotGiven | openai.Omit) else value


def chat_completion(result: Result) -> ChatCompletion:
    """The SDK's completion object for a cascade's result (`.cascade`: the result as a dict)."""
    attempt = result.returned_attempt
    message = result.as_message()
    if attempt is not None and attempt.refusal:
        message["refusal"] = attempt.refusal
    return ChatCompletion.model_validate(
        {
            **_head(result, "chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(result)}],
            "usage": _usage(result),
            "cascade": result.to_dict(),
        }
    )


class ChunkStream:
    """The answer as `ChatCompletionChunk`s, as the SDK's `AsyncStream` gives them."""

    def __init__(self, events: AsyncIterator[CascadeEvent], *, include_usage: bool) -> None:
        self._events = events
        self._include_usage = include_usage
        self._first: CascadeEvent | None = None  # taken by `start`, given first
        self._chunks = self._generate()
        self._id = f"chatcmpl-{uuid.uuid4().hex}"

    def __aiter__(self) -> ChunkStream:
        return self

    async def start(self) -> None:
        """Run the cascade up to its answer (restarts say nothing to a buffered client), so
        that a request it refuses, or no acceptable answer, raises from `create` as the
        SDK's HTTP errors do."""
        try:
            self._first = await anext(self._events)
            while isinstance(self._first, StreamRestart):
                self._first = await anext(self._events)
        except StopAsyncIteration:
            pass
        except ExhaustedError as exc:
            raise CascadeAPIError(exc) from None
        except ValueError as exc:
            raise CascadeBadRequestError(exc) from None

    async def __anext__(self) -> ChatCompletionChunk:
        return await anext(self._chunks)

    async def close(self) -> None:
        await self._chunks.aclose()
        aclose = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> ChunkStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _generate(self) -> Any:  # an async generator of chunks
        yield self._chunk({"role": "assistant", "content": ""})
        shown = False
        try:
            async for event in self._all_events():
                if isinstance(event, StreamDelta) and event.text:
                    shown = True
                    yield self._chunk({"content": event.text})
                elif isinstance(event, StreamResult):
                    result = event.result
                    if result.output and not shown:  # an unverified best answer is sent whole
                        yield self._chunk({"content": result.output})
                    calls = [openai_tool_call(c) | {"index": i} for i, c in enumerate(result.tool_calls)]
                    if calls:
                        yield self._chunk({"tool_calls": calls})
                    yield self._chunk({}, finish_reason(result), model=result.model, cascade=result.to_dict())
                    if self._include_usage:
                        yield self._chunk(None, usage=_usage(result))
        except ExhaustedError as exc:
            raise CascadeAPIError(exc) from None

    async def _all_events(self) -> AsyncIterator[CascadeEvent]:
        if self._first is not None:
            yield self._first
        async for event in self._events:
            yield event

    def _chunk(
        self, delta: dict[str, Any] | None, finish: str | None = None, **extra: Any
    ) -> ChatCompletionChunk:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        head = {"id": self._id, "object": "chat.completion.chunk", "created": int(time.time()), "model": ""}
        extra = {k: v for k, v in extra.items() if v is not None}
        return ChatCompletionChunk.model_validate({**head, "choices": choices, **extra})


def finish_reason(result: Result) -> str:
    """The OpenAI word for how the returned answer ended, whatever the provider said."""
    if result.tool_calls:
        return "tool_calls"
    attempt = result.returned_attempt
    reason = (attempt.finish_reason or "").lower() if attempt else ""
    if reason in TRUNCATED:
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "stop"


def _head(result: Result, kind: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": result.model or "",
    }


def _usage(result: Result) -> dict[str, int]:
    """The tokens of the returned answer (what the client asked for; all attempts are in `.cascade`)."""
    attempt = result.returned_attempt
    prompt, completion = (attempt.usage.input_tokens, attempt.usage.output_tokens) if attempt else (0, 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
