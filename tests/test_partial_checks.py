"""Checks on a prefix of a streamed answer: they may stop an answer early, so a prefix may
only fail when the whole answer is bound to fail."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from cascade import Candidate, Completion, Request, Usage
from cascade_verifiers._json import json_prefix_error
from cascade_verifiers.basic import LengthVerifier
from cascade_verifiers.hedging import HedgingVerifier
from cascade_verifiers.schema import JsonSchemaVerifier
from tests.conftest import json_values

WORDS = [
    "i",
    "think",
    "thinking",
    "not",
    "sure",
    "i'm",
    "perhaps",
    "perhapsy",
    "maybe",
    "as",
    "an",
    "ai",
    "the",
    "answer",
    "is",
    "42",
    ",",
    ".",
    "\n",
    "hard",
    "to",
    "say",
    "`code`",
    "probably",
]


def candidate(text: str) -> Candidate:
    return Candidate(Request.from_prompt("q"), Completion(text, "m", Usage()), "small")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=30), st.data())
def test_hedging_prefix_failure_implies_the_whole_answer_fails(words, data):
    verifier = HedgingVerifier()
    text = " ".join(words)
    cut = data.draw(st.integers(0, len(text)))
    partial = verifier.check_partial(text[:cut])
    if partial is not None:
        assert not verifier(candidate(text)).passed


def test_hedging_prefix_waits_for_the_word_to_end():
    verifier = HedgingVerifier()
    assert verifier.check_partial("Well, I think") is None  # could become "I thinking..."
    assert verifier.check_partial("Well, I'm not sure ") is not None


@settings(max_examples=300, deadline=None)
@given(json_values, st.booleans(), st.data())
def test_no_prefix_of_a_valid_json_document_is_called_hopeless(value, pretty, data):
    text = json.dumps(value, indent=2 if pretty else None, ensure_ascii=data.draw(st.booleans()))
    cut = data.draw(st.integers(0, len(text)))
    assert json_prefix_error(text[:cut]) is None
    assert json_prefix_error("```json\n" + text[:cut]) is None


def test_broken_json_prefixes_are_called_hopeless():
    for broken in ['{"a": 1,}', '{"a" 1', "{]", '{"a": nulx', "[1, 2,, 3", '{"a": "x\ny']:
        assert json_prefix_error(broken) is not None, broken


def test_prose_is_not_judged_as_json():
    assert json_prefix_error("Here is the JSON: {") is None


def test_schema_verifier_stops_json_that_cannot_become_valid():
    verifier = JsonSchemaVerifier(schema={"type": "object"})
    assert verifier.check_partial('{"total": 12') is None
    verdict = verifier.check_partial('{"total": 12,, "x"')
    assert verdict is not None and "can no longer become valid" in verdict.reason


def test_length_verifier_stops_an_answer_past_its_limit():
    verifier = LengthVerifier(max_chars=10)
    assert verifier.check_partial("short") is None
    assert verifier.check_partial("far too long an answer") is not None
    assert not verifier(candidate("far too long an answer")).passed
    assert verifier(candidate("fine")).passed
