"""Properties that hold for every ladder and every sequence of model behaviours."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import (
    Candidate,
    Cascade,
    ExhaustedError,
    Outcome,
    PermanentProviderError,
    ProviderTimeout,
    Result,
    Tier,
    TransientProviderError,
    Usage,
    Verdict,
)
from cascade.core.policy import Position, next_position
from cascade.core.tokens import estimate_tokens
from cascade.testing.scripted import Reply
from tests.conftest import scripted, scripted_tier

# What one call to a model does.
BEHAVIOURS = ["good", "bad", "transient", "timeout", "permanent"]
CHECK_COST = Decimal("0.000001")  # what the verifier pays per check, as a judge would


def reply(behaviour: str) -> str | BaseException:
    if behaviour == "transient":
        return TransientProviderError("HTTP 503")
    if behaviour == "timeout":
        return ProviderTimeout("timeout")
    if behaviour == "permanent":
        return PermanentProviderError("HTTP 400")
    return behaviour


def accepts_good(candidate: Candidate) -> Verdict:
    return Verdict("good_only", candidate.text == "good", candidate.text, cost_usd=CHECK_COST)


# a ladder: 1-4 tiers, each 1-3 models, each model with a script of up to 4 behaviours
ladders = st.lists(
    st.lists(st.lists(st.sampled_from(BEHAVIOURS), max_size=4), min_size=1, max_size=3),
    min_size=1,
    max_size=4,
)


def run_ladder(ladder: list[list[list[str]]]) -> tuple[Result, list[Tier]]:
    tiers = [
        scripted_tier(
            f"t{i}", *[(f"t{i}m{j}", [reply(b) for b in script]) for j, script in enumerate(models)]
        )
        for i, models in enumerate(ladder)
    ]
    for tier in tiers:
        for model in tier.models:
            scripted(model.provider).default = PermanentProviderError("script exhausted")
    try:
        return Cascade(tiers, [accepts_good]).run("q"), tiers
    except ExhaustedError as exc:
        return exc.result, tiers


@settings(max_examples=150, deadline=None)
@given(ladders)
def test_tiers_are_tried_in_order_and_none_after_the_first_accepted(ladder):
    result, _ = run_ladder(ladder)
    tier_indexes = [int(a.tier[1:]) for a in result.attempts]
    assert tier_indexes == sorted(tier_indexes)
    accepted = [i for i, a in enumerate(result.attempts) if a.outcome is Outcome.ACCEPTED]
    assert len(accepted) <= 1
    if accepted:
        assert accepted[0] == len(result.attempts) - 1
        assert result.verified and result.output == "good"


@settings(max_examples=150, deadline=None)
@given(ladders)
def test_every_call_is_billed_once_and_the_total_adds_up(ladder):
    result, tiers = run_ladder(ladder)
    # Recompute the bill from what the providers actually saw, independently of the ledger.
    calls, expected = 0, Decimal(0)
    for tier in tiers:
        for model in tier.models:
            provider = scripted(model.provider)
            replies: list[Reply | None] = [
                reply(b) for b in ladder[int(tier.name[1:])][int(provider.model.split("m")[-1])]
            ]
            replies += [provider.default] * len(provider.requests)
            for request, answer in zip(provider.requests, replies, strict=False):  # script, then default
                calls += 1
                if isinstance(answer, ProviderTimeout):
                    usage = Usage(estimate_tokens(request.text()), 0, estimated=True)
                elif isinstance(answer, BaseException):
                    usage = Usage()
                else:
                    assert isinstance(answer, str)  # the scripts hold texts and exceptions only
                    usage = Usage(estimate_tokens(request.text()), estimate_tokens(answer))
                    expected += CHECK_COST  # every answer was checked once
                expected += model.price.cost(usage)
    assert calls == len(result.attempts)
    cost = result.cost
    assert cost.total_usd == expected
    returned = result.returned_attempt.cost_usd if result.returned_attempt else Decimal(0)
    assert cost.wasted_usd == expected - cost.verification_usd - returned
    assert cost.verification_usd == CHECK_COST * sum(1 for a in result.attempts if a.output is not None)
    assert cost.saved_usd == cost.baseline_usd - cost.total_usd


@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=5).flatmap(
        lambda counts: st.tuples(
            st.just(counts),
            st.integers(0, len(counts) - 1).flatmap(
                lambda t: st.tuples(st.just(t), st.integers(0, counts[t] - 1))
            ),
            st.sampled_from(list(Outcome)),
        )
    )
)
def test_next_position_only_moves_forward(case):
    counts, (tier, model), outcome = case
    here = Position(tier, model)
    nxt = next_position(counts, here, outcome)
    if outcome is Outcome.ACCEPTED:
        assert nxt is None
    elif nxt is not None:
        assert nxt > here
        assert nxt.tier < len(counts) and nxt.model < counts[nxt.tier]
        if outcome is Outcome.REJECTED:
            assert nxt == Position(tier + 1, 0)
