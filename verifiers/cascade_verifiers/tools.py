"""Tool-call check: every tool the answer calls exists, and is called with valid arguments.

Five levels, each call failing at the first it misses: the tool is one the request
offered; its arguments are JSON; they are a JSON object; the fields the tool's schema
requires are there; and they follow the schema (types, enums, bounds). The call as a
whole also keeps to the request's `tool_choice` ("required": at least one call; a forced
tool: that one; "none": no call). An answer in text passes when the request does not
require a call (`require_call` makes a text answer fail whenever tools are offered).
Score: the share of calls that pass every level (1.0 for a text answer that passes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema

from cascade import Candidate, ForcedTool, Request, Tool, ToolCall, Verdict
from cascade_verifiers._jsonschema import compiled, truncated

MAX_PROBLEMS = 3  # problems named in a failed verdict
_MESSAGE_CHARS = 160
_CACHED_VALIDATORS = 256  # parameter schemas kept compiled (one per tool in use, usually)


class ToolCallVerifier:
    """Fails an answer whose tool calls name no offered tool or carry arguments that do not
    follow the tool's parameter schema, or that break the request's `tool_choice`."""

    name = "tool_call"

    def __init__(self, require_call: bool = False) -> None:
        if not isinstance(require_call, bool):
            raise ValueError(f"require_call must be true or false, not {require_call!r}")
        self.require_call = require_call
        self._validators: dict[str, Any] = {}

    def __call__(self, candidate: Candidate) -> Verdict:
        try:
            return self._judge(candidate)
        except Exception as exc:  # never raise on model text: a check that cannot run fails
            return Verdict(
                self.name, False, f"could not check the tool calls: {type(exc).__name__}", score=0.0
            )

    def _judge(self, candidate: Candidate) -> Verdict:
        request = candidate.sent or candidate.request
        calls = candidate.completion.tool_calls
        if not request.tools:
            return Verdict(self.name, True, "no tools offered", score=1.0)
        choice_problem = self._choice_problem(request, calls)
        if choice_problem is not None:
            return Verdict(self.name, False, choice_problem, score=0.0)
        if not calls:
            return Verdict(self.name, True, "answered in text; no tool called", score=1.0)
        tools = {t.name: t for t in request.tools}
        problems = [p for p in (self._call_problem(c, tools) for c in calls) if p is not None]
        score = 1 - len(problems) / len(calls)
        if not problems:
            names = ", ".join(c.name for c in calls)
            return Verdict(self.name, True, f"{len(calls)} valid tool call(s): {names}", score=score)
        more = f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else ""
        return Verdict(self.name, False, "; ".join(problems[:MAX_PROBLEMS]) + more, score=score)

    def _choice_problem(self, request: Request, calls: tuple[ToolCall, ...]) -> str | None:
        choice = request.tool_choice
        if choice == "none" and calls:
            return "tool_choice is none, but the answer calls a tool"
        if not calls and (choice == "required" or isinstance(choice, ForcedTool) or self.require_call):
            return "no tool called, but the request requires a tool call"
        if isinstance(choice, ForcedTool) and any(c.name != choice.name for c in calls):
            others = ", ".join(sorted({c.name for c in calls if c.name != choice.name}))
            return f"tool_choice forces {choice.name}, but the answer calls {others}"
        return None

    def _call_problem(self, call: ToolCall, tools: Mapping[str, Tool]) -> str | None:
        """Why `call` is invalid, at the first level it misses; None when it is valid."""
        tool = tools.get(call.name)
        if tool is None:
            return f"{_short(call.name)}: no such tool (offered: {', '.join(tools)})"
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError as exc:
            return f"{tool.name}: the arguments are not JSON ({_short(str(exc))})"
        if not isinstance(arguments, dict):
            return f"{tool.name}: the arguments are {type(arguments).__name__}, not a JSON object"
        required = tool.parameters.get("required")
        missing = [k for k in required if k not in arguments] if isinstance(required, list) else []
        if missing:
            return f"{tool.name}: missing required argument(s) {', '.join(map(str, missing))}"
        validator = self._validator(tool)
        error = jsonschema.exceptions.best_match(validator.iter_errors(arguments)) if validator else None
        if error is not None:
            where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
            return f"{tool.name}: arguments{where}: {_short(error.message)}"
        return None

    def _validator(self, tool: Tool) -> Any:
        """The compiled validator of the tool's parameters; None for a schema that is not
        valid JSON Schema (its required fields were still checked)."""
        key = json.dumps(tool.parameters, sort_keys=True, default=str)
        if key not in self._validators:
            if len(self._validators) >= _CACHED_VALIDATORS:
                self._validators.pop(next(iter(self._validators)))
            try:
                self._validators[key] = compiled(dict(tool.parameters))
            except jsonschema.SchemaError:
                self._validators[key] = None
        return self._validators[key]


def _short(text: str) -> str:
    return truncated(text, _MESSAGE_CHARS)
