"""The hedging verifier: real answers pass, hedges and refusals fail with the phrases named,
and `ignore` leaves code and JSON string values unsearched."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import Cascade
from cascade.config import parse_config
from cascade.core.errors import ConfigError
from cascade.core.values import Candidate, Completion, Request, Usage
from cascade_verifiers.hedging import HedgingVerifier
from tests.conftest import json_values

GSM8K = Path(__file__).resolve().parents[2] / "shared/data/routellm/gsm8k/gsm8k_responses.csv"
GPT4 = "gpt-4-1106-preview_response"
MIXTRAL = "mistralai/Mixtral-8x7B-Instruct-v0.1_response"


def candidate(text: str) -> Candidate:
    return Candidate(
        request=Request.from_prompt("q"),
        completion=Completion(text=text, model="m", usage=Usage(1, 1)),
        tier="small",
    )


def gsm8k_answers(column: str, n: int = 300) -> list[str]:
    if not GSM8K.exists():
        pytest.skip(f"{GSM8K} is absent")
    with GSM8K.open(encoding="utf-8", newline="") as f:
        answers = [row[column] for row in csv.DictReader(f) if row[column].strip()]
    return random.Random(8).sample(answers, min(n, len(answers)))


# -- real and hand-written answers -----------------------------------------------------


@pytest.mark.parametrize("column", [GPT4, MIXTRAL])
def test_real_gsm8k_answers_are_mostly_not_flagged(column):
    answers = gsm8k_answers(column)
    verifier = HedgingVerifier()
    flagged = [a for a in answers if not verifier(candidate(a)).passed]
    assert len(flagged) <= len(answers) // 50, flagged[:3]


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("I'm not sure, but I think Janet makes about $18 a day.", '"i\'m not sure" (1)'),
        ("I cannot help with that request.", '"i cannot help" (1)'),
        ("As an AI, I don't have access to the farmers' market prices.", '"as an ai" (1)'),
        ("I don\u2019t know how many bolts the robe takes.", '"i don\'t know" (1)'),
        ("It depends on the price. Perhaps $18, probably less, I think.", '"perhaps" (0.3)'),
    ],
)
def test_hand_written_hedges_and_refusals_are_flagged_with_the_phrase_named(text, phrase):
    verdict = HedgingVerifier()(candidate(text))
    assert not verdict.passed
    assert phrase in verdict.reason
    assert verdict.reason.startswith("hedging weight ")


def test_a_real_answer_with_a_hedge_added_is_flagged():
    answer = gsm8k_answers(GPT4, n=1)[0]
    verdict = HedgingVerifier()(candidate(f"I might be wrong, but I think it goes like this.\n{answer}"))
    assert not verdict.passed
    assert '"i might be wrong" (0.8)' in verdict.reason and '"i think" (0.3)' in verdict.reason


def test_a_clean_answer_passes_with_score_one():
    verdict = HedgingVerifier()(candidate("She sells 9 eggs for $2 each, so she makes $18 every day."))
    assert verdict.passed and verdict.score == 1.0
    assert verdict.reason == "no hedging or refusal phrases"


def test_weak_hedges_below_the_threshold_pass_and_are_listed():
    verdict = HedgingVerifier()(candidate("The robe probably takes 3 bolts."))
    assert verdict.passed
    assert verdict.reason == 'hedging weight 0.3 below threshold 1: "probably" (0.3)'
    assert verdict.score == pytest.approx(1 / 1.3)


# -- ignore: code ----------------------------------------------------------------------

CODE_ANSWER = (
    "Use this function:\n\n"
    "```python\n"
    "def total(eggs):\n"
    "    # I'm not sure the market is open every day; probably it is\n"
    "    return (eggs - 7) * 2\n"
    "```\n\n"
    "Call `maybe_total()` only if the value `may be` missing. It returns 18."
)


def test_code_is_searched_by_default():
    verdict = HedgingVerifier()(candidate(CODE_ANSWER))
    assert not verdict.passed and '"i\'m not sure"' in verdict.reason and '"may be"' in verdict.reason


def test_ignore_code_skips_fenced_blocks_and_inline_code():
    verdict = HedgingVerifier(ignore=["code"])(candidate(CODE_ANSWER))
    assert verdict.passed and verdict.reason == "no hedging or refusal phrases"


def test_ignore_code_still_searches_the_prose():
    text = CODE_ANSWER + "\nI'm not sure this is right, though."
    verdict = HedgingVerifier(ignore=["code"])(candidate(text))
    assert not verdict.passed and '"i\'m not sure"' in verdict.reason


def test_an_unclosed_fence_runs_to_the_end():
    text = "Here is the code:\n```python\n# I don't know why this works\nprint(18)\n"
    assert HedgingVerifier(ignore=["code"])(candidate(text)).passed
    assert not HedgingVerifier()(candidate(text)).passed


def test_ignore_code_does_not_hide_json_outside_code():
    assert not HedgingVerifier(ignore=["code"])(candidate('{"note": "I\'m not sure"}')).passed


# -- ignore: json_strings --------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"note": "I\'m not sure", "answer": 18}',
        'Extracted:\n```json\n{"quote": "I cannot help you with that", "speaker": "clerk"}\n```',
        'The record is {"comment": "it depends, probably", "tags": ["maybe", "I think so"]}.',
        '{"a": "I don\\u2019t know"}\n{"a": "As an AI I cannot answer"}\n',
    ],
)
def test_ignore_json_strings_treats_extracted_strings_as_data(text):
    assert not HedgingVerifier()(candidate(text)).passed
    verdict = HedgingVerifier(ignore=["json_strings"])(candidate(text))
    assert verdict.passed and verdict.reason == "no hedging or refusal phrases"


def test_ignore_json_strings_still_searches_the_prose_around_the_json():
    text = 'I\'m not sure this is complete: {"note": "I think so", "total": 18}'
    verdict = HedgingVerifier(ignore=["json_strings"])(candidate(text))
    assert not verdict.passed
    assert verdict.reason == 'hedging weight 1 reaches threshold 1: "i\'m not sure" (1)'


def test_ignore_json_strings_finds_json_after_latex_in_the_prose():
    prose = "With " + ", ".join(f"\\frac{{a_{i}}}{{b_{i}}}" for i in range(40)) + " the record is "
    text = prose + '{"note": "I\'m not sure", "total": 18}'
    assert HedgingVerifier(ignore=["json_strings"])(candidate(text)).passed


def test_both_ignores_together():
    text = CODE_ANSWER + '\nResult: {"note": "possibly late"}'
    assert HedgingVerifier(ignore=["code", "json_strings"])(candidate(text)).passed


# -- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ignore", "message"),
    [(["comments"], "unknown ignore value"), (["code", "yaml"], "'yaml'"), ("code", "must be a list")],
)
def test_bad_ignore_values_raise_value_error(ignore, message):
    with pytest.raises(ValueError, match=message):
        HedgingVerifier(ignore=ignore)


@pytest.mark.parametrize("weight", [-1, 0, float("nan"), float("inf"), "0.5", True, None])
def test_added_weights_must_be_finite_and_positive(weight):
    with pytest.raises(ValueError, match="must be a finite number above 0"):
        HedgingVerifier(add={"foo": weight})


def test_an_added_phrase_must_not_be_empty():
    with pytest.raises(ValueError, match="non-empty strings"):
        HedgingVerifier(add={"  ": 0.5})


def test_add_must_be_a_mapping():
    with pytest.raises(ValueError, match="add must be a mapping"):
        HedgingVerifier(add=["i think"])  # type: ignore[arg-type]  # the wrong type is the point


@pytest.mark.parametrize(
    ("remove", "message"), [("i think", "must be a list"), ([1], "must be a list of strings")]
)
def test_remove_must_be_a_list_of_phrases(remove, message):
    with pytest.raises(ValueError, match=f"remove {message}"):
        HedgingVerifier(remove=remove)


def test_removed_phrases_are_no_longer_counted():
    verdict = HedgingVerifier(remove=["i think", "probably"])(candidate("I think it is probably 18."))
    assert verdict.passed and verdict.reason == "no hedging or refusal phrases"


def test_bad_ignore_in_a_config_names_the_entry():
    config = parse_config(
        {
            "tiers": [
                {
                    "name": "t",
                    "provider": "simulated",
                    "model": "sim",
                    "price": {"input_per_mtok": 0, "output_per_mtok": 0},
                }
            ],
            "verifiers": [{"type": "hedging", "ignore": ["prose"]}],
        }
    )
    with pytest.raises(ConfigError, match=r"verifiers\.0 \(hedging\): unknown ignore value"):
        Cascade.from_config(config)


# -- properties ------------------------------------------------------------------------

VERIFIERS = [HedgingVerifier(), HedgingVerifier(ignore=["code", "json_strings"])]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_the_verifier_never_raises_on_any_text(text):
    for verifier in VERIFIERS:
        verdict = verifier(candidate(text))
        assert verdict.score is not None and 0.0 < verdict.score <= 1.0


@settings(max_examples=200, deadline=None)
@given(json_values, st.text(max_size=20), st.text(max_size=20))
def test_the_verifier_never_raises_on_any_json_bare_or_in_prose(value, before, after):
    document = json.dumps(value)
    for text in (document, f"{before}{document}{after}", f"{before}\n```json\n{document}\n```\n{after}"):
        for verifier in VERIFIERS:
            score = verifier(candidate(text)).score
            assert score is not None and 0.0 < score <= 1.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=4))
def test_hedges_inside_json_strings_are_never_counted_when_ignored(strings):
    document = json.dumps({"notes": [*strings, "I'm not sure", "As an AI"]})
    assert HedgingVerifier(ignore=["json_strings"])(candidate(document)).passed
