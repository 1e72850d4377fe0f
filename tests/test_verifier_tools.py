"""The tool_call verifier: its five levels, the request's tool_choice, and never raising."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.core.messages import to_request
from cascade.core.values import Candidate, Completion, Request, ToolCall, Usage
from cascade_verifiers.tools import ToolCallVerifier

SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
            "required": ["query"],
        },
    },
}


def candidate(*calls: ToolCall, tool_choice: object = None, text: str = "", tools: bool = True) -> Candidate:
    request: Request = to_request("Find it.", tools=[SEARCH] if tools else None, tool_choice=tool_choice)
    completion = Completion(text, "m", Usage(), finish_reason="tool_calls", tool_calls=calls)
    return Candidate(request=request, completion=completion, tier="small")


@pytest.mark.parametrize(
    ("arguments", "name", "reason"),
    [
        ('{"query": "x"}', "lookup", "lookup: no such tool (offered: search)"),
        ('{"query": "x"', "search", "search: the arguments are not JSON"),
        ('["x"]', "search", "search: the arguments are list, not a JSON object"),
        ('{"limit": 2}', "search", "search: missing required argument(s) query"),
        ('{"query": "x", "limit": 0}', "search", "search: arguments.limit: 0 is less than the minimum of 1"),
    ],
)
def test_each_level_names_what_is_wrong_with_the_call(arguments: str, name: str, reason: str):
    verdict = ToolCallVerifier()(candidate(ToolCall(name, arguments, "c1")))
    assert not verdict.passed and verdict.reason.startswith(reason) and verdict.score == 0.0


def test_valid_calls_pass_and_the_score_is_the_share_of_valid_ones():
    good, bad = ToolCall("search", '{"query": "x"}', "c1"), ToolCall("search", "{}", "c2")
    assert ToolCallVerifier()(candidate(good)).passed
    mixed = ToolCallVerifier()(candidate(good, bad))
    assert not mixed.passed and mixed.score == 0.5


@pytest.mark.parametrize(
    ("tool_choice", "calls", "passed"),
    [
        ("auto", (), True),
        ("required", (), False),
        ({"type": "function", "function": {"name": "search"}}, (), False),
        ("none", (ToolCall("search", '{"query": "x"}', "c1"),), False),
    ],
)
def test_the_call_keeps_to_the_requests_tool_choice(
    tool_choice: object, calls: tuple[ToolCall, ...], passed: bool
):
    assert ToolCallVerifier()(candidate(*calls, tool_choice=tool_choice, text="An answer.")).passed is passed


def test_require_call_fails_a_text_answer_when_tools_are_offered():
    assert ToolCallVerifier()(candidate(text="An answer.")).passed
    assert not ToolCallVerifier(require_call=True)(candidate(text="An answer.")).passed
    assert ToolCallVerifier(require_call=True)(candidate(text="An answer.", tools=False)).passed


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=200))
def test_no_tool_call_makes_the_check_raise(name: str, arguments: str):
    verdict = ToolCallVerifier()(candidate(ToolCall(name, arguments, "c1")))
    assert verdict.verifier == "tool_call" and isinstance(verdict.passed, bool)


def test_deeply_nested_arguments_fail_instead_of_raising():
    verdict = ToolCallVerifier()(candidate(ToolCall("search", "[" * 100_000, "c1")))
    assert not verdict.passed
