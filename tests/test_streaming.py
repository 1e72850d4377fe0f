"""Streaming with a restart policy, through the real SDKs against the loopback provider."""

from __future__ import annotations

import asyncio
import json
import textwrap
from typing import Any

import pytest

from cascade import Cascade, Outcome
from cascade.config import parse_config
from cascade.core.events import StreamDelta, StreamRestart, StreamResult
from cascade.core.tokens import count_tokens
from cascade.testing.server import FakeProviderServer, Reply
from tests.conftest import loopback_url, run_cli

SMALL = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
LARGE = "claude-opus-4-8"
RETRY = {"max_attempts": 2, "initial_wait_s": 0, "max_wait_s": 1}
CLI_KEYS = {"OPENAI_API_KEY": "sk-a-123456", "ANTHROPIC_API_KEY": "sk-b-123456"}
HEDGED = "I'm not sure, but I think the answer might possibly be 41, though it could also be 43 or so."


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-stream")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-stream")


@pytest.fixture
def slow_server():
    """A server that pauses between stream chunks, so a client can hang up mid-answer."""
    with FakeProviderServer(chunk_delay_s=0.02) as server:
        yield server


def cascade_for(server, wire: str = "openai", **overrides) -> Cascade:
    small = {
        "name": "small",
        "provider": wire,
        "model": SMALL[wire],
        "base_url": loopback_url(server, wire),
        "retry": RETRY,
        "timeout_s": 5,
        "params": {"max_tokens": 100},
    }
    small.update(overrides.pop("small", {}))
    large = {
        "name": "large",
        "provider": "anthropic",
        "model": LARGE,
        "base_url": server.anthropic_base_url,
        "retry": RETRY,
        "timeout_s": 5,
    }
    config = {"tiers": [small, large], "verifiers": [{"type": "non_empty"}, {"type": "hedging"}], **overrides}
    return Cascade.from_config(parse_config(config))


def collect(cascade: Cascade, prompt: str = "What is 6 * 7?", policy=None) -> list[Any]:
    async def go():
        async with cascade:
            return [event async for event in cascade.astream(prompt, policy=policy)]

    return asyncio.run(go())


def shown_text(events) -> str:
    """What a consumer displays: deltas, with everything before a restart withdrawn."""
    text = ""
    for event in events:
        if isinstance(event, StreamDelta):
            text += event.text
        elif isinstance(event, StreamRestart):
            assert event.void_chars <= len(text)
            text = text[: len(text) - event.void_chars]
    return text


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_dropped_stream_restarts_on_the_next_tier_and_is_billed(fake_server, wire):
    fake_server.script(
        SMALL[wire],
        [Reply.drop(after_chars=30, text="Forty-two is the answer, and here is why: six sevens.")],
    )
    fake_server.script(LARGE, [Reply.text("It is 42.")])
    events = collect(cascade_for(fake_server, wire), policy="restart")
    restart = next(e for e in events if isinstance(e, StreamRestart))
    # "Forty-two is the answer, and h" arrived; the word being written ("h") was not shown
    assert restart.from_tier == "small" and restart.to_tier == "large" and restart.void_chars == 29
    assert "connection lost" in restart.reason or "connection error" in restart.reason
    result = events[-1].result
    assert result.output == "It is 42." and result.verified and shown_text(events) == "It is 42."
    cut = result.attempts[0]
    assert cut.outcome is Outcome.ERROR and cut.usage.estimated and cut.cost_usd > 0
    assert cut.usage.output_tokens == count_tokens("Forty-two is the answer, and h", SMALL[wire])
    assert result.cost.total_usd == cut.cost_usd + result.attempts[1].cost_usd


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_stream_without_its_terminal_event_is_never_accepted(fake_server, wire):
    # nothing was shown (buffer): the cheap model is retried first, then the next tier
    fake_server.script(SMALL[wire], [Reply.truncated("The answer is 42, because six times seven", 16)] * 2)
    fake_server.script(LARGE, [Reply.text("42.")])
    result = collect(cascade_for(fake_server, wire), policy="buffer")[-1].result
    assert result.output == "42." and result.tier == "large"
    assert [(a.tier, a.outcome, a.retry) for a in result.attempts] == [
        ("small", Outcome.ERROR, 0),
        ("small", Outcome.ERROR, 1),
        ("large", Outcome.ACCEPTED, 0),
    ]
    assert all("cut off" in a.error and a.output == "The answer is 42" for a in result.attempts[:2])


def test_a_cut_off_stream_that_was_shown_is_not_retried_on_the_same_model(fake_server):
    fake_server.script(SMALL["openai"], [Reply.truncated("The answer is 42, because six times seven", 16)])
    fake_server.script(LARGE, [Reply.text("42.")])
    result = collect(cascade_for(fake_server), policy="restart")[-1].result
    assert [a.tier for a in result.attempts] == ["small", "large"]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_an_error_event_mid_stream_is_a_failed_attempt(fake_server, wire):
    fake_server.script(SMALL[wire], [Reply.stream_error("The answer is 42 because", 10)])
    fake_server.script(LARGE, [Reply.text("42.")])
    events = collect(cascade_for(fake_server, wire), policy="restart")
    result = events[-1].result
    assert "error event in stream" in result.attempts[0].error and result.tier == "large"
    # "The answer" arrived; "The " was shown: a word is shown once complete (it might be a key)
    assert any(isinstance(e, StreamRestart) and e.void_chars == 4 for e in events)


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_stall_longer_than_the_idle_timeout_fails_the_attempt(fake_server, wire):
    fake_server.script(SMALL[wire], [Reply.stall_mid_stream("The answer is 42.", 7, 3)])
    fake_server.script(LARGE, [Reply.text("42.")])
    cascade = cascade_for(fake_server, wire, small={"idle_timeout_s": 0.3})
    result = collect(cascade, policy="restart")[-1].result
    stalled = result.attempts[0]
    assert stalled.outcome is Outcome.ERROR and "silent for 0.3s" in stalled.error
    assert stalled.usage.estimated and stalled.latency_s < 2
    assert result.tier == "large"


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_hedging_answer_is_stopped_early_and_its_connection_closed(slow_server, wire):
    long_tail = " ".join(["More words that the model would have gone on producing."] * 20)
    slow_server.script(SMALL[wire], [Reply.text(HEDGED + " " + long_tail, chunk_chars=4)])
    slow_server.script(LARGE, [Reply.text("42.")])
    result = collect(cascade_for(slow_server, wire), policy="restart")[-1].result
    aborted = result.attempts[0]
    assert aborted.outcome is Outcome.ABORTED and aborted.verdicts[0].reason.startswith("stopped early")
    assert len(aborted.output) < len(HEDGED) + 40  # stopped soon after the hedge, not at the end
    assert aborted.usage.estimated and aborted.cost_usd > 0
    assert aborted.usage.output_tokens == count_tokens(aborted.output, SMALL[wire])
    first = slow_server.requests_for(SMALL[wire])[0]
    assert first.client_closed and not first.completed  # the provider saw the hang-up
    if wire == "openai":
        assert first.body["stream_options"] == {"include_usage": True}


def test_restart_below_the_threshold_withdraws_what_was_shown(fake_server):
    fake_server.script(SMALL["openai"], [Reply.text("Sure. I'm not sure, maybe 41.")])
    fake_server.script(LARGE, [Reply.text("It is 42.")])
    events = collect(cascade_for(fake_server, stream={"restart_threshold_tokens": 50}), policy="restart")
    deltas = [e for e in events if isinstance(e, StreamDelta)]
    restart = next(e for e in events if isinstance(e, StreamRestart))
    assert deltas[0].tier == "small" and deltas[-1].tier == "large"
    assert restart.void_chars > 0 and restart.void_tokens == count_tokens(
        "Sure. I'm not sure, maybe 41."[: restart.void_chars], "gpt-4o-mini"
    )
    assert shown_text(events) == "It is 42." and events[-1].result.verified


def test_past_the_threshold_the_answer_finishes_degraded(fake_server):
    late_hedge = "Six times seven is forty-two, as the multiplication table says. I'm not sure though."
    fake_server.script(SMALL["openai"], [Reply.text(late_hedge)])
    cascade = cascade_for(fake_server, stream={"restart_threshold_tokens": 5})
    events = collect(cascade, policy="restart")
    assert not any(isinstance(e, StreamRestart) for e in events)
    result = events[-1].result
    assert result.degraded and not result.verified and result.stop_reason == "degraded"
    assert result.output == late_hedge == shown_text(events)
    assert len(fake_server.requests_for(LARGE)) == 0


def test_a_failure_at_exactly_the_threshold_finishes_degraded_and_one_token_short_restarts(fake_server):
    answer = "Sure. I'm not sure, maybe 41."

    def run(threshold: int) -> list[Any]:
        fake_server.script(SMALL["openai"], [Reply.text(answer)])
        fake_server.script(LARGE, [Reply.text("It is 42.")])
        return collect(
            cascade_for(fake_server, stream={"restart_threshold_tokens": threshold}), policy="restart"
        )

    # the tokens shown when the hedge is seen: what a restart withdraws
    shown = next(e for e in run(1000) if isinstance(e, StreamRestart)).void_tokens
    at = run(shown)
    assert not any(isinstance(e, StreamRestart) for e in at) and at[-1].result.degraded
    below = run(shown + 1)
    assert any(isinstance(e, StreamRestart) for e in below) and below[-1].result.tier == "large"


def test_the_threshold_defaults_to_a_fifth_of_max_tokens(fake_server):
    # max_tokens 100 -> threshold 20 tokens; the hedge comes after about 6
    fake_server.script(SMALL["openai"], [Reply.text("Forty-two. I'm not sure, though.")])
    fake_server.script(LARGE, [Reply.text("42.")])
    events = collect(cascade_for(fake_server), policy="restart")
    assert any(isinstance(e, StreamRestart) for e in events) and events[-1].result.tier == "large"


def test_finish_degraded_never_restarts(fake_server):
    fake_server.script(SMALL["openai"], [Reply.text(HEDGED)])
    events = collect(cascade_for(fake_server), policy="finish_degraded")
    assert not any(isinstance(e, StreamRestart) for e in events)
    assert events[-1].result.degraded and events[-1].result.output == HEDGED


def test_finish_degraded_returns_a_cut_off_stream_marked_degraded(fake_server):
    fake_server.script(SMALL["openai"], [Reply.drop(after_chars=12, text="Forty-two is the answer.")])
    result = collect(cascade_for(fake_server), policy="finish_degraded")[-1].result
    assert result.degraded and not result.verified and result.output == "Forty-two is"
    assert result.attempts[0].outcome is Outcome.ERROR


def test_buffer_never_shows_unverified_text(fake_server):
    fake_server.script(SMALL["openai"], [Reply.text(HEDGED)])
    fake_server.script(LARGE, [Reply.text("It is 42.")])
    events = collect(cascade_for(fake_server), policy="buffer")
    deltas = [e for e in events if isinstance(e, StreamDelta)]
    assert [(d.tier, d.text) for d in deltas] == [("large", "It is 42.")]
    assert all(e.void_chars == 0 for e in events if isinstance(e, StreamRestart))


def test_buffer_is_the_default_policy(fake_server):
    fake_server.script(SMALL["openai"], [Reply.text(HEDGED)])
    fake_server.script(LARGE, [Reply.text("It is 42.")])
    events = collect(cascade_for(fake_server))
    assert [e.tier for e in events if isinstance(e, StreamDelta)] == ["large"]


def test_a_streamed_result_has_the_same_accounting_as_a_plain_run(fake_server):
    for _ in range(2):  # an empty answer: rejected at the end, by a check with no partial form
        fake_server.script(SMALL["openai"], [Reply.text("", input_tokens=30, output_tokens=0)])
        fake_server.script(LARGE, [Reply.text("It is 42.", input_tokens=31, output_tokens=5)])
    streamed = collect(cascade_for(fake_server), policy="buffer")[-1].result
    with cascade_for(fake_server) as cascade:
        plain = cascade.run("What is 6 * 7?")
    for a, b in zip(streamed.attempts, plain.attempts, strict=True):
        assert (a.outcome, a.usage, a.cost_usd) == (b.outcome, b.usage, b.cost_usd)
    assert streamed.cost == plain.cost


def test_inline_confidence_rating_is_not_shown_while_streaming(fake_server):
    fake_server.script(
        SMALL["openai"], [Reply.text("It is 42.\nThat is six sevens.\nCONFIDENCE: 9", chunk_chars=3)]
    )
    cascade = cascade_for(fake_server, verifiers=[{"type": "self_confidence"}])
    events = collect(cascade, policy="restart")
    assert "CONFIDENCE" not in shown_text(events)
    assert events[-1].result.output == shown_text(events) == "It is 42.\nThat is six sevens."


def test_sync_stream_yields_the_same_events(fake_server):
    fake_server.script(SMALL["openai"], [Reply.text("Forty-two.")])
    with cascade_for(fake_server) as cascade:
        events = list(cascade.stream("q", policy="restart"))
    assert isinstance(events[-1], StreamResult) and events[-1].result.output == "Forty-two."
    assert "".join(e.text for e in events if isinstance(e, StreamDelta)) == "Forty-two."


def test_cli_stream_json_lines(fake_server, tmp_path):
    fake_server.script(SMALL["openai"], [Reply.text(HEDGED)])
    fake_server.script(LARGE, [Reply.text("It is 42.")])
    config = tmp_path / "c.yaml"
    config.write_text(
        textwrap.dedent(f"""
        tiers:
          - {{name: small, provider: openai, model: gpt-4o-mini, base_url: "{fake_server.openai_base_url}"}}
          - {{name: large, provider: anthropic, model: {LARGE}, base_url: "{fake_server.anthropic_base_url}"}}
        verifiers: [{{type: hedging}}]
        stream: {{policy: restart, restart_threshold_tokens: 100}}
    """)
    )
    proc = run_cli("run", str(config), "q", "--stream", "--json", env=CLI_KEYS, timeout=60)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "delta" and "restart" in kinds and kinds[-1] == "result"
    assert events[-1]["output"] == "It is 42." and events[-1]["verified"] is True

    fake_server.script(SMALL["openai"], [Reply.text(HEDGED)])
    fake_server.script(LARGE, [Reply.text("It is 42.")])
    plain = run_cli("run", str(config), "q", "--stream", env=CLI_KEYS, timeout=60)
    assert plain.returncode == 0 and plain.stdout.rstrip().endswith("It is 42.")
    assert "withdrawn; restarting on large" in " ".join(plain.stderr.split())


def test_held_back_text_does_not_turn_a_restart_into_a_degraded_finish(fake_server):
    # the rating line is held back; only "It is 41." (a few tokens) was shown when the
    # answer failed, below the threshold: restart, not degraded
    fake_server.script(SMALL["openai"], [Reply.text("It is 41.\nCONFIDENCE: 2")])
    fake_server.script(LARGE, [Reply.text("It is 42.\nCONFIDENCE: 9")])
    cascade = cascade_for(
        fake_server, verifiers=[{"type": "self_confidence"}], stream={"restart_threshold_tokens": 10}
    )
    events = collect(cascade, policy="restart")
    result = events[-1].result
    assert not result.degraded and result.verified and result.tier == "large"
    assert shown_text(events) == "It is 42."


def test_an_unexpected_exception_in_a_stream_is_a_billed_failed_attempt():
    from cascade import Tier, TierModel
    from cascade.core.stream_events import StreamStarted, TextDelta
    from tests.conftest import CHEAP, FAST_RETRY, scripted_tier

    class Exploding:
        model = "boom"

        async def complete(self, request):  # pragma: no cover - streams only
            raise AssertionError

        async def stream_events(self, request):
            yield StreamStarted()
            yield TextDelta("Half an ans")
            raise RuntimeError("SDK surprise")

        async def aclose(self):
            return None

    cascade = Cascade(
        [
            Tier("small", (TierModel(Exploding(), CHEAP, FAST_RETRY),)),
            scripted_tier("large", ("l", ["Whole."])),
        ],
    )
    events = collect(cascade, policy="restart")
    failed = events[-1].result.attempts[0]
    assert failed.outcome is Outcome.ERROR and failed.error.startswith("unexpected RuntimeError")
    assert failed.usage.estimated and failed.cost_usd > 0 and events[-1].result.output == "Whole."


def test_a_stream_dropped_after_it_opened_bills_its_input(fake_server):
    fake_server.script(SMALL["openai"], [Reply.drop(after_chars=0, text="never sent")] * 2)
    fake_server.script(LARGE, [Reply.text("42.")])
    result = collect(cascade_for(fake_server), policy="buffer")[-1].result
    dropped = result.attempts[0]
    assert dropped.outcome is Outcome.ERROR and dropped.usage.input_tokens > 0 and dropped.cost_usd > 0


def test_buffer_shows_nothing_of_an_answer_rejected_at_the_end(fake_server):
    # an empty answer passes every prefix check and fails only when complete
    fake_server.script(SMALL["openai"], [Reply.text("   ")])
    fake_server.script(LARGE, [Reply.text("42.")])
    events = collect(cascade_for(fake_server), policy="buffer")
    assert [(e.tier, e.text) for e in events if isinstance(e, StreamDelta)] == [("large", "42.")]


def test_an_unknown_policy_name_is_refused(fake_server):
    with pytest.raises(ValueError, match="unknown stream policy 'restrat'"):
        collect(cascade_for(fake_server), policy="restrat")


def test_cli_stream_json_ends_with_a_result_event_when_every_tier_fails(fake_server, tmp_path):
    fake_server.script(SMALL["openai"], [Reply.status(400)])
    fake_server.script(LARGE, [Reply.status(400)])
    config = tmp_path / "c.yaml"
    small = (
        f"{{name: small, provider: openai, model: gpt-4o-mini, base_url: '{fake_server.openai_base_url}'}}"
    )
    large = (
        f"{{name: large, provider: anthropic, model: {LARGE}, base_url: '{fake_server.anthropic_base_url}'}}"
    )
    config.write_text(f"tiers:\n  - {small}\n  - {large}\n")
    proc = run_cli("run", str(config), "q", "--stream", "--json", env=CLI_KEYS, timeout=60)
    assert proc.returncode == 3
    last = json.loads(proc.stdout.splitlines()[-1])
    assert last["event"] == "result" and last["output"] is None and "every tier failed" in last["error"]


@pytest.mark.parametrize("streamed", [False, True])
def test_a_hedged_answer_escalates_to_the_next_tier_streamed_or_not(slow_server, streamed):
    """Not to the tier's alternate: a stream stopped early by a check goes where `run` goes."""
    long_tail = " ".join(["More words that the model would have gone on producing."] * 20)
    slow_server.script(SMALL["openai"], [Reply.text(HEDGED + " " + long_tail, chunk_chars=4)])
    slow_server.script("gpt-4.1-nano", [Reply.text("42, says the alternate.")])
    slow_server.script(LARGE, [Reply.text("42.")])
    alternate = {"provider": "openai", "model": "gpt-4.1-nano", "base_url": slow_server.openai_base_url}
    cascade = cascade_for(slow_server, small={"alternates": [alternate]})
    result = collect(cascade, policy="restart")[-1].result if streamed else cascade.run("What is 6 * 7?")
    assert [a.model for a in result.attempts] == [SMALL["openai"], LARGE] and result.output == "42."
    assert slow_server.requests_for("gpt-4.1-nano") == []
