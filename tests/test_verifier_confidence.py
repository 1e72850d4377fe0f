"""The self-confidence verifier: inline rating lines and follow-up rating calls."""

from __future__ import annotations

import asyncio
import csv
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import Cascade
from cascade.config import parse_config
from cascade.core.errors import ConfigError
from cascade.core.values import Candidate, Completion, ModelCall, Request, Usage, Verdict
from cascade.testing.server import Reply
from cascade_verifiers.confidence import RatingError, SelfConfidenceVerifier, parse_rating, strip_rating
from tests.conftest import loopback_tier

GSM8K = Path("/work/shared/data/routellm/gsm8k/gsm8k_responses.csv")


def candidate(text: str, *, ask=None, prompt: str = "What is 2 + 2?") -> Candidate:
    return Candidate(
        request=Request.from_prompt(prompt),
        completion=Completion(text=text, model="m", usage=Usage(1, 1)),
        tier="small",
        ask=ask,
    )


def judge(verifier: SelfConfidenceVerifier, cand: Candidate) -> Verdict:
    return asyncio.run(verifier(cand))


def cascade(server, verifier: dict[str, object], *models: str) -> Cascade:
    tiers = [loopback_tier(server, f"t{i}", m) for i, m in enumerate(models)]
    return Cascade.from_config(parse_config({"tiers": tiers, "verifiers": [verifier]}))


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")


def cost(input_tokens: int, output_tokens: int) -> Decimal:
    return (Decimal(input_tokens) * 1 + Decimal(output_tokens) * 2) / Decimal(1_000_000)


# -- inline: the rating line ------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "The answer is 4.\nCONFIDENCE: 8",
        "The answer is 4.\nConfidence: 8/10",
        "The answer is 4.\n\n**Confidence:** 8",
        "The answer is 4.\n**Confidence: 8**",
        "The answer is 4.\nCONFIDENCE: 8   \n\n",
        "The answer is 4.\r\nconfidence: 8\r\n",
        "The answer is 4. CONFIDENCE: 8",
    ],
)
def test_inline_rating_variants_are_stripped_and_parsed(raw):
    verifier = SelfConfidenceVerifier()
    assert verifier.clean_output(raw) == "The answer is 4."
    assert parse_rating(raw, 10) == 8


def test_clean_output_strips_only_the_rating_line():
    raw = "Step 1: 2 + 2 = 4.\nConfidence intervals do not apply here.\n\nAnswer: 4\nCONFIDENCE: 9"
    expected = "Step 1: 2 + 2 = 4.\nConfidence intervals do not apply here.\n\nAnswer: 4"
    assert SelfConfidenceVerifier().clean_output(raw) == expected


def test_clean_output_leaves_an_answer_without_rating_untouched():
    raw = "  The answer is 4.  \n\n"
    assert SelfConfidenceVerifier().clean_output(raw) == raw


def test_prepare_request_adds_the_rating_instruction_to_the_system_prompt():
    request = Request.from_prompt("q", system="Be brief.")
    sent = SelfConfidenceVerifier().prepare_request(request)
    assert sent.system is not None and sent.system.startswith("Be brief.\n\n")
    assert "CONFIDENCE: <integer 0-10>" in sent.system
    assert sent.messages == request.messages


def test_instruction_override_replaces_the_note():
    sent = SelfConfidenceVerifier(instruction="Rate yourself as CONFIDENCE: n of {scale}.", scale=5)
    assert sent.prepare_request(Request.from_prompt("q")).system == "Rate yourself as CONFIDENCE: n of 5."


def test_high_inline_rating_passes_with_normalised_score():
    verdict = judge(SelfConfidenceVerifier(), candidate("It is 4.\nCONFIDENCE: 8"))
    assert verdict.passed and verdict.score == pytest.approx(0.8)
    assert verdict.reason == "self-rated 8/10 (threshold 7/10)"
    assert verdict.cost_usd == 0


def test_rating_at_the_threshold_passes():
    assert judge(SelfConfidenceVerifier(threshold=0.7), candidate("It is 4.\nCONFIDENCE: 7")).passed


def test_low_inline_rating_fails():
    verdict = judge(SelfConfidenceVerifier(), candidate("It is 5.\nCONFIDENCE: 3"))
    assert not verdict.passed and verdict.score == pytest.approx(0.3)
    assert verdict.reason == "self-rated 3/10 (threshold 7/10)"


def test_missing_rating_fails_saying_so():
    verdict = judge(SelfConfidenceVerifier(), candidate("It is 4."))
    assert not verdict.passed and "no confidence rating" in verdict.reason


def test_out_of_range_rating_fails():
    verdict = judge(SelfConfidenceVerifier(), candidate("It is 4.\nCONFIDENCE: 11"))
    assert not verdict.passed and "out of range" in verdict.reason


def test_unparseable_rating_fails():
    verdict = judge(SelfConfidenceVerifier(), candidate("It is 4.\nCONFIDENCE: very high"))
    assert not verdict.passed and verdict.reason == "unparseable self-rating: 'CONFIDENCE: very high'"


def test_an_unparseable_last_rating_line_is_not_rescued_by_an_earlier_one():
    verdict = judge(SelfConfidenceVerifier(), candidate("It is 4.\nConfidence: 9\nConfidence: not sure"))
    assert not verdict.passed and verdict.reason == "unparseable self-rating: 'Confidence: not sure'"


def test_an_unparseable_rating_line_is_still_stripped():
    assert SelfConfidenceVerifier().clean_output("It is 4.\nCONFIDENCE: very high") == "It is 4."


@pytest.mark.parametrize(
    "rating",
    [
        "Confidence: 8-9",
        "Confidence: 9 out of ten",
        "Confidence: high (9)",
        "Confidence: 9 because " + "I checked every step twice " * 4,
        "CONFIDENCE: <integer 0-10>",
    ],
)
def test_ratings_outside_the_accepted_forms_are_unparseable(rating):
    verdict = judge(SelfConfidenceVerifier(), candidate(f"It is 4.\n{rating}"))
    assert not verdict.passed and verdict.reason.startswith("unparseable self-rating: ")


LOOSE_RATINGS = [
    "Confidence (0-10): 9",
    "Confidence: 9 out of 10",
    "Confidence: 9/10. Hope this helps!",
    "My confidence: 9",
    "**Overall confidence:** 9/10",
    "Confidence level - 90%",
]


@pytest.mark.parametrize("rating", LOOSE_RATINGS)
def test_looser_rating_lines_are_stripped(rating):
    assert SelfConfidenceVerifier().clean_output(f"The answer is 4.\n\n{rating}\n") == "The answer is 4."


@pytest.mark.parametrize("rating", LOOSE_RATINGS)
def test_looser_rating_lines_are_parsed(rating):
    verdict = judge(SelfConfidenceVerifier(), candidate(f"The answer is 4.\n\n{rating}\n"))
    assert verdict.passed and verdict.score == pytest.approx(0.9)


def test_a_rating_tacked_on_after_my_is_stripped_with_it():
    assert SelfConfidenceVerifier().clean_output("The answer is 42. My confidence: 9") == "The answer is 42."


REPORT = "Audit summary.\nConfidence level: 95%\nThe ledger balances; no action is needed."


def test_a_confidence_line_in_the_middle_of_the_answer_is_kept():
    assert SelfConfidenceVerifier().clean_output(REPORT) == REPORT


def test_a_confidence_line_in_the_middle_of_the_answer_is_not_taken_for_the_rating():
    verdict = judge(SelfConfidenceVerifier(), candidate(REPORT))
    assert not verdict.passed and verdict.reason.startswith("no confidence rating")


def test_answer_that_is_only_a_rating_fails():
    verdict = judge(SelfConfidenceVerifier(), candidate("CONFIDENCE: 10"))
    assert not verdict.passed and "nothing but a confidence rating" in verdict.reason


def test_scale_normalises_the_rating():
    verdict = judge(SelfConfidenceVerifier(scale=5, threshold=0.5), candidate("It is 4.\nCONFIDENCE: 3"))
    assert verdict.passed and verdict.score == pytest.approx(0.6)
    assert verdict.reason == "self-rated 3/5 (threshold 2.5/5)"


def test_real_gsm8k_answers_are_untouched_and_lose_an_appended_rating():
    if not GSM8K.exists():
        pytest.skip(f"{GSM8K} not present")
    with GSM8K.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:200]
    verifier = SelfConfidenceVerifier()
    for row in rows:
        for column in ("gpt-4-1106-preview_response", "mistralai/Mixtral-8x7B-Instruct-v0.1_response"):
            answer = row[column]
            assert verifier.clean_output(answer) == answer
            rated = f"{answer.rstrip()}\n\nCONFIDENCE: 9\n"
            assert verifier.clean_output(rated) == answer.rstrip()
            assert parse_rating(rated, 10) == 9


# -- inline, end to end -------------------------------------------------------------------------


def test_inline_rating_is_asked_for_and_never_returned(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("It is 4.\nCONFIDENCE: 9")])
    with cascade(fake_server, {"type": "self_confidence"}, "gpt-4o-mini") as c:
        result = c.run("What is 2 + 2?")
    assert result.verified and result.output == "It is 4."
    assert "CONFIDENCE: <integer 0-10>" in fake_server.requests[0].body["messages"][0]["content"]
    assert result.attempts[0].verdicts[0].reason == "self-rated 9/10 (threshold 7/10)"


def test_low_rating_escalates_and_the_best_rejected_answer_is_returned_clean(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("It is 5.\nCONFIDENCE: 3")])
    fake_server.script("gpt-4o", [Reply.text("It is 4.\n\n**Confidence:** 6/10\n")])
    with cascade(fake_server, {"type": "self_confidence"}, "gpt-4o-mini", "gpt-4o") as c:
        result = c.run("What is 2 + 2?")
    assert not result.verified and result.stop_reason == "exhausted"
    assert [a.outcome.value for a in result.attempts] == ["rejected", "rejected"]
    assert result.output == "It is 4."
    assert [a.output for a in result.attempts] == ["It is 5.", "It is 4."]


def test_answer_that_is_only_a_rating_is_returned_without_it(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("CONFIDENCE: 10")])
    with cascade(fake_server, {"type": "self_confidence"}, "gpt-4o-mini") as c:
        result = c.run("What is 2 + 2?")
    assert not result.verified
    assert result.output == ""
    assert "nothing but a confidence rating" in result.attempts[0].verdicts[0].reason


def test_missing_rating_escalates(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("It is 4.")])
    fake_server.script("gpt-4o", [Reply.text("It is 4.\nCONFIDENCE: 10")])
    with cascade(fake_server, {"type": "self_confidence"}, "gpt-4o-mini", "gpt-4o") as c:
        result = c.run("What is 2 + 2?")
    assert result.verified and result.tier == "t1" and result.output == "It is 4."
    assert "no confidence rating" in result.attempts[0].verdicts[0].reason


def test_bad_mode_is_a_config_error(fake_server):
    with pytest.raises(ConfigError, match="mode must be one of inline, followup"):
        cascade(fake_server, {"type": "self_confidence", "mode": "psychic"}, "gpt-4o-mini")


def test_threshold_above_one_is_a_config_error(fake_server):
    with pytest.raises(ConfigError, match="threshold must be a number from 0 to 1"):
        cascade(fake_server, {"type": "self_confidence", "threshold": 7}, "gpt-4o-mini")


# -- follow-up --------------------------------------------------------------------------------


def test_followup_mode_has_no_hooks_effect():
    verifier = SelfConfidenceVerifier(mode="followup")
    request = Request.from_prompt("q", system="s")
    assert verifier.prepare_request(request) == request
    assert verifier.clean_output("x\nCONFIDENCE: 8") == "x\nCONFIDENCE: 8"


def test_followup_asks_the_same_model_and_bills_the_rating_as_verification(fake_server):
    fake_server.script(
        "gpt-4o-mini",
        [
            Reply.text("The answer is 4.", input_tokens=50, output_tokens=10),
            Reply.text("CONFIDENCE: 9", input_tokens=80, output_tokens=4),
        ],
    )
    with cascade(fake_server, {"type": "self_confidence", "mode": "followup"}, "gpt-4o-mini") as c:
        result = c.run("What is 2 + 2?")
    assert result.verified and result.output == "The answer is 4."
    _, second = fake_server.requests_for("gpt-4o-mini")
    assert [m["role"] for m in second.body["messages"]] == ["user", "assistant", "user"]
    assert second.body["messages"][1]["content"] == "The answer is 4."
    assert "CONFIDENCE: <integer 0-10>" in second.body["messages"][2]["content"]
    attempt = result.attempts[0]
    assert attempt.verdicts[0].cost_usd == cost(80, 4)
    assert result.cost.verification_usd == cost(80, 4)
    assert attempt.cost_usd == cost(50, 10)
    assert result.cost.total_usd == cost(50, 10) + cost(80, 4)


def test_followup_low_rating_escalates_with_both_ratings_billed(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("It is 5.", input_tokens=10, output_tokens=3)])
    fake_server.script("gpt-4o-mini", [Reply.text("2", input_tokens=20, output_tokens=1)])
    fake_server.script("gpt-4o", [Reply.text("It is 4.", input_tokens=10, output_tokens=3)])
    fake_server.script("gpt-4o", [Reply.text("CONFIDENCE: 10", input_tokens=20, output_tokens=4)])
    with cascade(fake_server, {"type": "self_confidence", "mode": "followup"}, "gpt-4o-mini", "gpt-4o") as c:
        result = c.run("What is 2 + 2?")
    assert result.verified and result.tier == "t1"
    assert result.attempts[0].verdicts[0].reason == "self-rated 2/10 (threshold 7/10)"
    assert result.cost.verification_usd == cost(20, 1) + cost(20, 4)


def test_failed_followup_call_fails_the_check_with_the_error(fake_server):
    fake_server.script("gpt-4o-mini", [Reply.text("It is 4."), Reply.status(400, message="context too long")])
    with cascade(fake_server, {"type": "self_confidence", "mode": "followup"}, "gpt-4o-mini") as c:
        result = c.run("What is 2 + 2?")
    verdict = result.attempts[0].verdicts[0]
    assert not result.verified and not verdict.passed
    assert "follow-up rating call failed" in verdict.reason and "context too long" in verdict.reason
    assert verdict.cost_usd == 0


def test_followup_cost_is_kept_when_the_reply_has_no_rating():
    async def ask(request: Request) -> ModelCall:
        return ModelCall(Completion("I'd rather not say.", "m", Usage(5, 5)), Decimal("0.002"))

    verdict = judge(SelfConfidenceVerifier(mode="followup"), candidate("It is 4.", ask=ask))
    assert not verdict.passed and "no confidence rating" in verdict.reason
    assert verdict.cost_usd == Decimal("0.002")


def test_followup_without_ask_fails():
    verdict = judge(SelfConfidenceVerifier(mode="followup"), candidate("It is 4."))
    assert not verdict.passed and "cannot ask the model" in verdict.reason


def test_followup_drops_schema_and_logprobs_from_the_rating_request():
    seen: list[Request] = []

    async def ask(request: Request) -> ModelCall:
        seen.append(request)
        return ModelCall(Completion("CONFIDENCE: 8", "m", Usage(5, 5)), Decimal(0))

    cand = candidate("{}", ask=ask)
    cand = Candidate(
        request=cand.request.replace(response_schema={"type": "object"}, logprobs=True),
        completion=cand.completion,
        tier="small",
        ask=ask,
    )
    assert judge(SelfConfidenceVerifier(mode="followup"), cand).passed
    assert seen[0].response_schema is None and seen[0].logprobs is False


# -- properties -------------------------------------------------------------------------------

ratings = st.sampled_from(
    ["CONFIDENCE: 8", "Confidence: 3/10", "**Confidence:** 7", "confidence level: 80%", "CONFIDENCE: 12"]
)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_parse_rating_raises_only_rating_error(text):
    try:
        value = parse_rating(text, 10)
    except RatingError:
        return
    assert 0 <= value <= 10


@settings(max_examples=200, deadline=None)
@given(st.text(), ratings, st.sampled_from(["\n", " ", "\n\n", "\r\n"]), st.sampled_from(["", "\n", "  "]))
def test_stripped_text_holds_no_rating(text, rating, sep, tail):
    cleaned = strip_rating(f"{text}{sep}{rating}{tail}")
    with pytest.raises(RatingError):
        parse_rating(cleaned, 10)


loose_ratings = st.sampled_from([*LOOSE_RATINGS, "CONFIDENCE: 8", "Confidence: very high", "confidence"])


@settings(max_examples=200, deadline=None)
@given(st.text(), loose_ratings, st.sampled_from(["", "\n", "  \n\n"]))
def test_an_appended_rating_line_never_remains_in_the_output(text, rating, tail):
    cleaned = SelfConfidenceVerifier().clean_output(f"{text}\n{rating}{tail}")
    assert text.startswith(cleaned)


@settings(max_examples=200, deadline=None)
@given(st.text(), loose_ratings)
def test_a_rating_line_before_the_last_line_is_never_removed(text, rating):
    raw = f"{text}\n{rating}\nThe answer is 4."
    assert SelfConfidenceVerifier().clean_output(raw) == raw


@settings(max_examples=20, deadline=None)
@given(st.lists(loose_ratings, min_size=1, max_size=5), st.sampled_from(["\n", "\n\n", " \r\n"]))
def test_twenty_kilobytes_of_rating_lines_are_stripped_in_one_pass(ratings, sep):
    block = sep.join(ratings) + sep
    raw = "The answer is 4." + sep + block * (20_000 // len(block) + 1)
    assert len(raw) > 20_000
    assert SelfConfidenceVerifier().clean_output(raw) == "The answer is 4."


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_inline_verifier_never_raises(text):
    verdict = judge(SelfConfidenceVerifier(), candidate(text))
    assert isinstance(verdict, Verdict)
    assert verdict.score is None or 0 <= verdict.score <= 1


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text())
def test_followup_verifier_never_raises(answer, reply):
    async def ask(request: Request) -> ModelCall:
        return ModelCall(Completion(reply, "m", Usage(1, 1)), Decimal("0.001"))

    verdict = judge(SelfConfidenceVerifier(mode="followup"), candidate(answer, ask=ask))
    assert isinstance(verdict, Verdict) and verdict.cost_usd == Decimal("0.001")
    assert verdict.score is None or 0 <= verdict.score <= 1
