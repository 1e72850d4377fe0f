"""No check may hang the event loop: every built-in check is linear (or bounded) in its input.

The bound asserted is generous (2 s for 1 MB on a loaded CI machine, where the linear
checks take well under half a second); `python benchmarks/verifier_worst_case.py` prints
the real figures. Each shape here once took seconds to minutes.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cascade.runtime.stream import next_partial_check
from cascade_verifiers._json import NotJson, decode_prefix
from cascade_verifiers.confidence import SelfConfidenceVerifier
from cascade_verifiers.hedging import HedgingVerifier

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from verifier_worst_case import MB, SHAPES, adversarial, run_every_check, stream_seconds

BOUND_S = 2.0


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_check_judges_a_megabyte_of_each_known_shape_quickly(name):
    slow = {check: s for check, s in run_every_check(SHAPES[name](MB)).items() if s > BOUND_S}
    assert slow == {}


# pieces of the syntax the checks parse: fences, markers, JSON, ratings, words, blanks
PIECES = st.sampled_from(
    ["```", "`", "{", "}", "[", '"', ":", ",", "\\", "<<<", ">>>", "END ", "ANSWER", "json\n", "a", " ",
     "\n", "confidence", "9", "/10", "i'm not sure", "ignore", "\u202e", "\u200b", "score: ", "User: "]
)  # fmt: skip


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unit=st.lists(PIECES, min_size=1, max_size=8).map("".join))
@example(unit="a")
@example(unit="```json\n{")
def test_every_check_judges_a_megabyte_of_any_repeated_unit_quickly(unit):
    slow = {check: s for check, s in run_every_check(adversarial(unit, MB)).items() if s > BOUND_S}
    assert slow == {}


JSON_TEXT = st.text(alphabet='{}[]",:0123456789.eE-+tfnrulsa \\\n', max_size=60)


@settings(max_examples=300, deadline=None)
@given(text=JSON_TEXT, window=st.integers(1, 16))
def test_decoding_in_windows_agrees_with_the_decoder_on_the_whole_text(text, window):
    decoder = json.JSONDecoder()
    try:
        expected: object = decoder.raw_decode(text)
    except (ValueError, RecursionError):
        expected = "no document"
    try:
        got: object = decode_prefix(decoder, text, 0, len(text), window=window)
    except (NotJson, ValueError, RecursionError):
        got = "no document"
    assert got == expected


def test_a_stream_is_checked_often_while_short_and_ever_less_often_as_it_grows():
    sizes, checked = [], 0
    for size in range(1, MB + 1, 7):  # the text as it arrives, a few characters at a time
        if size >= next_partial_check(checked):
            sizes.append(size)
            checked = size
    assert sizes[0] <= 40 and sizes[1] - sizes[0] <= 40  # every few words at first
    # at most an eighth of the text unchecked, so the total work of every check stays linear
    assert all(b - a <= max(40, a // 8 + 7) for a, b in itertools.pairwise(sizes))
    assert sum(sizes) < 10 * MB  # checking each prefix 32 characters apart would read 15,000 MB


@pytest.mark.parametrize("verifier", [HedgingVerifier, SelfConfidenceVerifier])
def test_a_megabyte_streamed_in_small_pieces_is_linear_work(verifier):
    # 62,500 deltas, each redacted, shown and re-checked on schedule (once: 5 minutes and more)
    assert stream_seconds(adversarial("word ", MB), [verifier()]) < 5 * BOUND_S
