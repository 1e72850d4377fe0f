"""The runtime's contracts: a cascade is a provider, hooks are protocols, budgets stop
retries without a restart towards a model never called, and the sync API's loop is owned
(and stopped) by its cascade."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncGenerator
from decimal import Decimal

import pytest
import structlog

from cascade import (
    Candidate,
    Cascade,
    ChecksPartial,
    CleansOutput,
    Completion,
    ExhaustedError,
    PreparesRequest,
    Price,
    Provider,
    ProviderTimeout,
    StreamDelta,
    StreamingProvider,
    StreamRestart,
    StreamResult,
    Tier,
    TierModel,
    TransientProviderError,
    Usage,
    Verdict,
)
from cascade.config import parse_config
from cascade.core.policy import exhaustion_message, with_feedback
from cascade.core.stream_events import StreamEvent, StreamStarted, TextDelta
from cascade.core.tokens import estimate_tokens
from cascade.core.values import Attempt, Outcome, Request
from cascade.protocols import CostsToCheck, hook
from cascade.testing import ScriptedProvider
from cascade.testing.server import Reply
from tests.conftest import CHEAP, DEAR, FAST_RETRY, loopback_tier, scripted_tier


def rejects_bad(candidate: Candidate) -> Verdict:
    return Verdict("not_bad", candidate.text != "bad", "the answer was bad")


def test_a_cascade_is_a_provider_and_nests_as_a_tier() -> None:
    inner = Cascade(
        [scripted_tier("small", ("s", ["bad"])), scripted_tier("large", ("l", ["good"]), price=DEAR)],
        [rejects_bad],
    )
    assert isinstance(inner, Provider) and not isinstance(inner, StreamingProvider)
    outer = Cascade([Tier("nested", (TierModel(inner, CHEAP, FAST_RETRY),))], [rejects_bad])
    result = outer.run("q")
    assert result.output == "good" and result.verified
    (attempt,) = result.attempts
    # billed what the inner cascade's two attempts cost (not the outer tier's CHEAP price),
    # with their tokens, under the nested cascade's name
    q = estimate_tokens("q")
    inner_cost = CHEAP.cost(Usage(q, estimate_tokens("bad"))) + DEAR.cost(Usage(q, estimate_tokens("good")))
    assert attempt.cost_usd == inner_cost and attempt.model == "cascade:small+large"
    assert attempt.usage == Usage(2 * q, estimate_tokens("bad") + estimate_tokens("good"))
    outer.close()


def test_a_nested_cascade_that_finds_no_answer_is_a_failed_call() -> None:
    inner = Cascade([scripted_tier("small", ("s", ["bad"]))], [rejects_bad], on_exhausted="raise")
    backup = scripted_tier("backup", ("b", ["good"]))
    outer = Cascade([Tier("nested", (TierModel(inner, CHEAP, FAST_RETRY),)), backup], [rejects_bad])
    result = outer.run("q")
    first, second = result.attempts
    assert first.outcome is Outcome.ERROR and "no tier gave an answer" in (first.error or "")
    assert second.tier == "backup" and result.output == "good"


class _Hooked:
    """A verifier with every optional hook."""

    name = "hooked"

    def __call__(self, candidate: Candidate) -> bool:
        return True

    def prepare_request(self, request: Request) -> Request:
        return request

    def clean_output(self, text: str) -> str:
        return text.strip()

    def check_partial(self, text: str) -> Verdict | None:
        return None


def test_hooks_are_protocols_found_with_isinstance() -> None:
    hooked = _Hooked()
    assert isinstance(hooked, PreparesRequest) and isinstance(hooked, CleansOutput)
    assert isinstance(hooked, ChecksPartial)
    assert not isinstance(rejects_bad, CleansOutput)  # a plain function has no hooks
    result = Cascade([scripted_tier("t", ("m", ["  padded  "]))], [hooked]).run("q")
    assert result.output == "padded"  # its clean_output ran


def test_a_budget_spent_between_retries_stops_without_a_restart_event() -> None:
    timeouts = [ProviderTimeout("timeout")] * 3
    cascade = Cascade(
        [scripted_tier("small", ("s", timeouts), price=DEAR), scripted_tier("large", ("l", ["good"]))],
        max_cost_usd=Decimal("0.000001"),
        on_exhausted="raise",
    )

    async def events() -> list[object]:
        seen: list[object] = []
        with pytest.raises(ExhaustedError, match="budget"):
            async for event in cascade.astream("a prompt long enough to cost something", policy="restart"):
                seen.append(event)
        return seen

    seen = asyncio.run(events())
    # the budget ran out after the first try: no retry, and no restart towards `large`
    assert not any(isinstance(e, StreamRestart) for e in seen)
    assert not any(isinstance(e, StreamResult) for e in seen)


def test_feedback_and_exhaustion_texts_come_from_the_policy() -> None:
    rejected = Attempt(
        "t", "m", Outcome.REJECTED, verdicts=(Verdict("schema", False, "missing field 'total'"),), output="{}"
    )
    asked = with_feedback(Request.from_prompt("q"), rejected, "fix: {reasons} {not a field}")
    assert [m.role for m in asked.messages][-2:] == ["assistant", "user"]
    assert asked.messages[-1].content == "fix: schema: missing field 'total' {not a field}"
    failed = Attempt("t", "m", Outcome.ERROR, error="HTTP 500: boom")
    assert exhaustion_message([failed], "exhausted", None) == "every tier failed: t (m): HTTP 500: boom"
    assert exhaustion_message([], "budget", Decimal("0.01")).startswith("the request's budget of $0.01")


def test_the_sync_api_runs_every_cascade_on_one_loop_thread() -> None:
    cascades = [Cascade([scripted_tier("t", ("m", ["a"]))]) for _ in range(5)]
    assert [c.run("q").output for c in cascades] == ["a"] * 5  # none closed
    assert len([t for t in threading.enumerate() if t.name == "cascade-portal"]) == 1


def test_cascades_sharing_providers_share_their_connections_through_the_sync_api(fake_server) -> None:
    """A cascade's copy on the same tiers (what a batch job makes) uses the same SDK client:
    its pooled connections must stay usable from both, one after the other."""
    fake_server.default = Reply.text("fine")
    config = parse_config({"tiers": [loopback_tier(fake_server, "small", "m1")]})
    original = Cascade.from_config(config)
    copy = original.with_tiers(original.tiers)
    runs = [original.run("a"), copy.run("b"), original.run("c")]
    assert [(r.tier, r.verified) for r in runs] == [("small", True)] * 3
    original.close()


def test_a_cascade_never_closed_or_a_stream_left_open_does_not_keep_the_interpreter_alive() -> None:
    program = textwrap.dedent(
        """
        from cascade import Cascade, Price, Tier, TierModel
        from cascade.testing import ScriptedProvider
        cascade = Cascade([Tier("t", (TierModel(ScriptedProvider("m", default="hi"), Price(0, 0)),))])
        print(cascade.run("q").output)
        unfinished = cascade.stream("q", policy="restart")  # left suspended at exit
        next(unfinished)
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "hi", done.stderr


def test_the_sync_api_works_inside_a_running_loop() -> None:
    cascade = Cascade([scripted_tier("t", ("m", ["inside"]))])

    async def caller() -> str | None:
        return cascade.run("q").output  # a notebook cell calling the sync API

    assert asyncio.run(caller()) == "inside"
    cascade.close()


def test_a_price_on_the_completion_stands_for_the_tiers() -> None:
    priced = Completion("hi", "m", Usage(1, 1), finish_reason="stop", cost_usd=Decimal("0.5"))
    cascade = Cascade([Tier("t", (TierModel(ScriptedProvider("m", [priced]), CHEAP),))])
    assert cascade.run("q").cost.total_usd == Decimal("0.5")


def test_a_nested_cascade_bills_its_spend_when_streamed_and_when_it_finds_nothing() -> None:
    def inner() -> Cascade:
        return Cascade(
            [scripted_tier("small", ("s", ["bad"])), scripted_tier("large", ("l", ["good"]), price=DEAR)],
            [rejects_bad],
        )

    alone = inner().run("q").cost.total_usd
    free = Price(Decimal(0), Decimal(0))
    outer = Cascade([Tier("nested", (TierModel(inner(), free, FAST_RETRY),))], [rejects_bad])

    async def streamed() -> Decimal:
        events = [e async for e in outer.astream("q", policy="restart")]
        last = events[-1]
        assert isinstance(last, StreamResult)
        return last.result.cost.total_usd

    assert asyncio.run(streamed()) == alone > 0
    failing = Cascade([scripted_tier("small", ("s", ["bad"]))], [rejects_bad], on_exhausted="raise")
    spent_inside = CHEAP.cost(Usage(estimate_tokens("q"), estimate_tokens("bad")))
    backup = scripted_tier("backup", ("b", ["good"]))
    result = Cascade([Tier("nested", (TierModel(failing, free, FAST_RETRY),)), backup], [rejects_bad]).run(
        "q"
    )
    assert result.attempts[0].outcome is Outcome.ERROR and result.attempts[0].cost_usd == spent_inside


def test_a_hook_must_be_callable() -> None:
    class Odd:
        worst_cost_usd = 0.01  # a setting that happens to share a hook's name
        clean_output = "not a method"

        def __call__(self, candidate: Candidate) -> bool:
            return True

    assert hook(Odd(), CostsToCheck) is None and hook(Odd(), CleansOutput) is None
    assert hook(_Hooked(), CleansOutput) is not None
    result = Cascade([scripted_tier("t", ("m", ["  kept  "]))], [Odd()]).run("q")
    assert result.output == "  kept  " and result.verified


class _BreaksMidStream:
    """Streams a piece of an answer, then loses the connection."""

    def __init__(self, model: str) -> None:
        self.model = model

    async def complete(self, request: Request) -> Completion:  # pragma: no cover - streams only
        raise AssertionError

    async def stream_events(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        yield StreamStarted()
        yield TextDelta("partial text ")
        raise TransientProviderError("connection lost")

    async def aclose(self) -> None:
        return None


def test_text_shown_before_the_budget_ran_out_is_withdrawn() -> None:
    dear = Price(Decimal(1000), Decimal(1000))
    cascade = Cascade(
        [
            scripted_tier("a", ("ma", ["bad"])),
            Tier("b", (TierModel(_BreaksMidStream("mb"), dear, FAST_RETRY),)),
            scripted_tier("c", ("mc", ["good"])),
        ],
        [rejects_bad],
        max_cost_usd=Decimal("0.001"),
    )

    async def events() -> list[object]:
        return [e async for e in cascade.astream("q", policy="restart")]

    seen = asyncio.run(events())
    restarts = [e for e in seen if isinstance(e, StreamRestart)]
    assert [(r.from_tier, r.to_tier) for r in restarts] == [("a", "b"), ("b", None)]
    assert restarts[-1].void_chars == len("partial text ")
    last = seen[-1]
    assert isinstance(last, StreamResult) and last.result.stop_reason == "budget"
    assert [a.tier for a in last.result.attempts] == ["a", "b"]  # c was never called


def test_an_application_logger_without_levels_still_gets_every_attempt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    structlog.configure(wrapper_class=structlog.BoundLogger, logger_factory=structlog.PrintLoggerFactory())
    result = Cascade([scripted_tier("t", ("m", ["fine"]))]).run("q")
    assert result.output == "fine" and "attempt_finished" in capsys.readouterr().out


class _Tracked:
    """Streams forever, a piece at a time; counts the streams opened and those still open.
    With `fail_on_close`, closing a stream raises a provider error (a plug-in's cleanup)."""

    def __init__(self, fail_on_close: bool = False) -> None:
        self.model = "tracked"
        self.opened = 0
        self.open = 0
        self.fail_on_close = fail_on_close

    async def complete(self, request: Request) -> Completion:  # pragma: no cover - streams only
        raise AssertionError

    async def stream_events(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        self.opened += 1
        self.open += 1
        try:
            yield StreamStarted()
            while True:
                yield TextDelta("more text ")
        finally:
            self.open -= 1
            if self.fail_on_close:
                raise TransientProviderError("connection reset while closing")

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("fail_on_close", [False, True])
def test_a_consumer_that_stops_early_closes_the_stream_at_once_and_starts_no_other(
    fail_on_close: bool,
) -> None:
    provider = _Tracked(fail_on_close)
    cascade = Cascade([Tier("t", (TierModel(provider, CHEAP, FAST_RETRY),))])

    async def first_delta_then_close() -> None:
        events = cascade.astream("q", policy="restart")
        assert isinstance(await anext(events), StreamDelta)
        await events.aclose()
        assert provider.open == 0  # closed by the time aclose returns, not by a later GC

    asyncio.run(first_delta_then_close())
    assert provider.opened == 1  # a failing close is not a failed try to retry
