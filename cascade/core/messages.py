"""OpenAI-style chat input read into the cascade's values: messages, tools, per-call parameters.

What `Cascade.run` takes besides a prompt string, and what batch lines and `--messages`
files hold: a list of `{"role", "content"}` dicts. Roles are system (or developer),
user, assistant and tool; content is a string or a list of parts (`{"type": "text"}`,
`{"type": "image_url"}`); an assistant turn may carry `tool_calls`, a tool turn names
its `tool_call_id`. Every problem is a MessagesError naming the message and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from cascade.core.values import (
    ContentPart,
    ForcedTool,
    ImagePart,
    Message,
    Request,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    openai_tool_call,
)

SYSTEM_ROLES = frozenset({"system", "developer"})
ROLES = ("system", "developer", "user", "assistant", "tool")
TOOL_CHOICES = ("auto", "none", "required")

# Per-call model parameters, for every tier. Adapters translate them (`stop` is Anthropic's
# `stop_sequences`) and leave out those their API does not take (Anthropic: seed, penalties).
CALL_PARAMS = frozenset(
    {"temperature", "top_p", "max_tokens", "stop", "seed", "presence_penalty", "frequency_penalty"}
)
INTEGER_PARAMS = frozenset({"max_tokens", "seed"})  # the others but `stop` are numbers


class MessagesError(ValueError):
    """A messages list, tool list or parameter that cannot be sent; the message names where."""


def read_messages(
    messages: Sequence[Mapping[str, Any]], *, system: str | None = None
) -> tuple[tuple[Message, ...], str | None]:
    """The turns of an OpenAI-style messages list, and the system prompt (`system`, then
    every system message, joined)."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence) or not messages:
        raise MessagesError("messages must be a non-empty list of {role, content} objects")
    turns: dict[str, Message] = {}  # by where each is in `messages`
    for i, raw in enumerate(messages):
        where = f"messages[{i}]"
        if hasattr(raw, "model_dump"):  # an SDK's message object, appended as OpenAI code does
            raw = raw.model_dump(exclude_none=True)
        if not isinstance(raw, Mapping):
            raise MessagesError(f"{where} must be an object with `role` and `content`")
        role = raw.get("role")
        if role not in ROLES:
            raise MessagesError(f"{where}.role must be one of {', '.join(ROLES)}, not {role!r}")
        if role in SYSTEM_ROLES:
            text, _ = _content(raw.get("content"), f"{where}.content", images=False)
            system = text if system is None else f"{system}\n\n{text}"
            continue
        turns[where] = _turn(raw, role, where)
    if not turns:
        raise MessagesError("messages hold no user turn, only system messages")
    if list(turns.values())[-1].role not in ("user", "tool"):
        raise MessagesError("the last message must be from the user (or a tool's result)")
    _check_tool_results(turns)
    return tuple(turns.values()), system


def _check_tool_results(turns: Mapping[str, Message]) -> None:
    """Every call of an assistant turn is answered by the tool messages right after it, and
    every tool message answers one: both APIs refuse any other conversation (HTTP 400)."""
    unanswered: dict[str | None, str] = {}  # call id -> where the call is
    for where, turn in turns.items():
        if turn.role == "tool":
            if unanswered.pop(turn.tool_call_id, None) is None:
                called = "a call of the assistant message before it"
                raise MessagesError(f"{where}.tool_call_id: {turn.tool_call_id!r} is not {called}")
            continue
        if unanswered:
            raise MessagesError(
                f"{next(iter(unanswered.values()))}: no tool message answers it before {where}"
            )
        unanswered = {call.id: f"{where}.tool_calls[{j}]" for j, call in enumerate(turn.tool_calls)}
    if unanswered:
        raise MessagesError(f"{next(iter(unanswered.values()))}: no tool message answers it")


def _turn(raw: Mapping[str, Any], role: str, where: str) -> Message:
    content = raw.get("content")
    if role == "assistant":
        calls = _tool_calls(raw.get("tool_calls"), f"{where}.tool_calls")
        if content is None and calls:
            return Message("assistant", "", tool_calls=calls)
        text, parts = _content(content, f"{where}.content", images=False)
        return Message("assistant", text, parts, tool_calls=calls)
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise MessagesError(f"{where}.tool_call_id: a tool message names the call it answers")
        text, _ = _content(content, f"{where}.content", images=False)
        return Message("tool", text, tool_call_id=call_id)
    text, parts = _content(content, f"{where}.content", images=True)
    return Message("user", text, parts)


def _content(content: Any, where: str, *, images: bool) -> tuple[str, tuple[ContentPart, ...]]:
    """(the text, the parts in order when there is more than text) of a message's content."""
    if isinstance(content, str):
        return content, ()
    if isinstance(content, str | bytes) or not isinstance(content, Sequence) or not content:
        raise MessagesError(f"{where} must be a string or a non-empty list of content parts")
    parts: list[ContentPart] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append(TextPart(part["text"]))
        elif kind == "image_url" and images:
            parts.append(_image(part.get("image_url"), at))
        elif kind == "image_url":
            raise MessagesError(f"{at}: only user messages may hold images")
        else:
            raise MessagesError(
                f"{at} must be {{type: text, text: ...}} or {{type: image_url, image_url: ...}}"
            )
    text = "\n".join(p.text for p in parts if isinstance(p, TextPart))
    return text, (tuple(parts) if any(isinstance(p, ImagePart) for p in parts) else ())


def _image(image: Any, where: str) -> ImagePart:
    if isinstance(image, str):
        image = {"url": image}
    url = image.get("url") if isinstance(image, Mapping) else None
    if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:image/")):
        raise MessagesError(f"{where}.image_url.url must be an http(s) URL or a data:image/... URL")
    detail = image.get("detail")
    if detail is not None and not isinstance(detail, str):
        raise MessagesError(f"{where}.image_url.detail must be a string")
    return ImagePart(url, detail)


def _tool_calls(raw: Any, where: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str | bytes) or not isinstance(raw, Sequence):
        raise MessagesError(f"{where} must be a list")
    calls: list[ToolCall] = []
    for j, call in enumerate(raw):
        function = call.get("function") if isinstance(call, Mapping) else None
        name = function.get("name") if isinstance(function, Mapping) else None
        arguments = function.get("arguments", "") if isinstance(function, Mapping) else None
        call_id = call.get("id") if isinstance(call, Mapping) else None
        if (
            not isinstance(name, str)
            or not isinstance(arguments, str)
            or not call_id
            or not isinstance(call_id, str)
        ):
            raise MessagesError(
                f"{where}[{j}] must be {{id, type: function, function: {{name, arguments: JSON text}}}}"
            )
        if any(c.id == call_id for c in calls):
            raise MessagesError(f"{where}[{j}].id: a second call with id {call_id!r}")
        calls.append(ToolCall(name, arguments, call_id))
        _check_arguments(calls[-1], f"{where}[{j}].function.arguments")
    return tuple(calls)


def _check_arguments(call: ToolCall, where: str) -> None:
    """The arguments of a call in the conversation are a JSON object, as text: Anthropic takes
    them as one (`tool_use.input`), and a model reads them back."""
    try:
        arguments = tool_arguments(call)
    except (ValueError, RecursionError):
        raise MessagesError(f"{where} is not JSON (a JSON object, as text)") from None
    if not isinstance(arguments, dict):
        raise MessagesError(f"{where} must be a JSON object, not {type(arguments).__name__}")


def write_messages(messages: Sequence[Message], system: str | None = None) -> list[dict[str, Any]]:
    """The OpenAI-style list `read_messages` reads back (batch records, replays, the wire)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in messages:
        line: dict[str, Any] = {"role": m.role, "content": _write_content(m)}
        if m.tool_calls:
            line["tool_calls"] = [openai_tool_call(c) for c in m.tool_calls]
            line["content"] = line["content"] or None
        if m.tool_call_id is not None:
            line["tool_call_id"] = m.tool_call_id
        out.append(line)
    return out


def _write_content(message: Message) -> str | list[dict[str, Any]]:
    if not message.parts:
        return message.content
    return [
        {"type": "text", "text": p.text}
        if isinstance(p, TextPart)
        else {"type": "image_url", "image_url": {"url": p.url, **({"detail": p.detail} if p.detail else {})}}
        for p in message.parts
    ]


def read_tools(tools: Sequence[Mapping[str, Any]] | None) -> tuple[Tool, ...]:
    """Tools in the OpenAI shape (`{type: function, function: {name, description,
    parameters}}`; the bare inner object is taken too)."""
    if tools is None:
        return ()
    if isinstance(tools, str | bytes) or not isinstance(tools, Sequence):
        raise MessagesError("tools must be a list of {type: function, function: {...}} objects")
    read: list[Tool] = []
    for i, raw in enumerate(tools):
        spec = raw.get("function", raw) if isinstance(raw, Mapping) else None
        name = spec.get("name") if isinstance(spec, Mapping) else None
        if not isinstance(spec, Mapping) or not isinstance(name, str) or not name:
            raise MessagesError(f"tools[{i}] must be {{type: function, function: {{name, parameters}}}}")
        parameters = spec.get("parameters", {"type": "object", "properties": {}})
        description = spec.get("description", "")
        if not isinstance(parameters, Mapping) or not isinstance(description, str):
            raise MessagesError(f"tools[{i}]: `parameters` is a JSON Schema object, `description` a string")
        if any(t.name == name for t in read):
            raise MessagesError(f"tools[{i}]: a second tool named {name!r}")
        try:  # sent as JSON: a value an SDK cannot write fails its tier only (see `_of_kind`)
            json.dumps(parameters, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise MessagesError(f"tools[{i}]: `parameters` is no JSON ({exc})") from None
        read.append(Tool(name, description, dict(parameters)))
    return tuple(read)


def write_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """The OpenAI shape of `tools` (a description only where there is one)."""
    return [{"type": "function", "function": _function(t)} for t in tools]


def _function(tool: Tool) -> dict[str, Any]:
    described = {"description": tool.description} if tool.description else {}
    return {"name": tool.name, **described, "parameters": dict(tool.parameters)}


def read_tool_choice(choice: Any, tools: Sequence[Tool]) -> ToolChoice | None:
    """ "auto", "none", "required", or `{type: function, function: {name}}` naming one of `tools`."""
    if choice is None:
        return None
    if not tools:
        raise MessagesError("tool_choice is given without tools")
    if choice in TOOL_CHOICES:
        return choice  # type: ignore[no-any-return]  # one of the literals, checked just above
    function = choice.get("function") if isinstance(choice, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str):
        raise MessagesError(
            "tool_choice must be auto, none, required or {type: function, function: {name: ...}}"
        )
    if all(t.name != name for t in tools):
        raise MessagesError(f"tool_choice names {name!r}, which is not one of the tools")
    return ForcedTool(name)


def write_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    """The OpenAI shape of `choice`."""
    if isinstance(choice, ForcedTool):
        return {"type": "function", "function": {"name": choice.name}}
    return choice


def read_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Per-call model parameters, checked: a name outside CALL_PARAMS, a `stop` that is
    not a string or a list of strings, or another that is not a (finite) number, or an
    integer for max_tokens and seed, is a MessagesError."""
    unknown = sorted(set(params) - CALL_PARAMS)
    if unknown:
        raise MessagesError(
            f"unknown model parameter {', '.join(unknown)} (per-call parameters: "
            f"{', '.join(sorted(CALL_PARAMS))}; others go in a tier's `params`)"
        )
    stop = params.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise MessagesError("stop must be a string or a list of strings")
    for name, value in params.items():
        if name != "stop" and value is not None and not _of_kind(value, integer=name in INTEGER_PARAMS):
            kind = "an integer" if name in INTEGER_PARAMS else "a number"
            raise MessagesError(f"{name} must be {kind}, not {value!r}")
    return {k: v for k, v in params.items() if v is not None}


def _of_kind(value: Any, *, integer: bool) -> bool:
    """Is `value` what its parameter takes on the wire? A Decimal or a numpy float32 is no
    JSON number to an SDK: its tier would fail while others took it, escalating silently."""
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, int)
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def tool_arguments(call: ToolCall) -> Any:
    """A tool call's arguments as a JSON value; ValueError when they are not JSON (an empty
    text is no arguments at all: `{}`)."""
    return json.loads(call.arguments) if call.arguments.strip() else {}


Prompt = str | Request | Sequence[Mapping[str, Any]]


def to_request(
    prompt: Prompt,
    *,
    system: str | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    params: Mapping[str, Any] | None = None,
) -> Request:
    """The request a caller means: a prompt string, a `Request`, or an OpenAI-style messages
    list; `system`, `tools`, `tool_choice` and per-call `params` go on top (a Request's own
    tools and parameters stay unless given again)."""
    if isinstance(prompt, Request):
        request = prompt if system is None else prompt.replace(system=system)
    elif isinstance(prompt, str):
        request = Request.from_prompt(prompt, system=system)
    else:
        turns, joined = read_messages(prompt, system=system)
        request = Request(messages=turns, system=joined)
    changes: dict[str, Any] = {}
    if tools is not None:
        changes["tools"] = read_tools(tools)
    if tool_choice is not None or tools is not None:
        changes["tool_choice"] = read_tool_choice(tool_choice, changes.get("tools", request.tools))
    if params:
        changes["params"] = {**request.params, **read_params(params)}
    return request.replace(**changes) if changes else request


REQUEST_KEYS = frozenset({"prompt", "messages", "system", "tools", "tool_choice"})  # what read_request reads


def read_request(data: Mapping[str, Any]) -> Request:
    """The request an input object holds, as batch lines, recorded outcomes and `--messages`
    files do: `prompt` (a string) or `messages` (a list), with optional `system`, `tools`
    and `tool_choice`."""
    has_prompt, has_messages = "prompt" in data, "messages" in data
    if has_prompt == has_messages:
        raise MessagesError("give exactly one of `prompt` or `messages`")
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise MessagesError("`system` must be a string")
    prompt = data.get("prompt")
    if has_prompt and not (isinstance(prompt, str) and prompt.strip()):
        raise MessagesError("`prompt` must be a non-empty string")
    return to_request(
        data["prompt"] if has_prompt else data["messages"],
        system=system,
        tools=data.get("tools"),
        tool_choice=data.get("tool_choice"),
    )
