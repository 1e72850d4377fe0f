"""Hedging and refusal detection with a weighted English lexicon.

Each phrase found adds its weight (once per phrase, however often it occurs); the answer
fails when the total reaches `threshold`. Refusals weigh 1.0, the default threshold, so at that
threshold one refusal fails an answer on its own.
The verdict's score is 1 / (1 + total): 1.0 for an answer with no hedge at all.
`ignore` leaves parts of the answer unsearched: "code" (fenced blocks and inline code),
"json_strings" (string values of JSON in the answer: extracted data, not the model hedging).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence

from cascade import Candidate, Verdict
from cascade_verifiers._boundary import check_score, first_float_where
from cascade_verifiers._json import find_json, string_value_spans

REFUSAL = 1.0
DEFAULT_LEXICON: dict[str, float] = {
    # refusals
    "i cannot help": REFUSAL,
    "i can't help": REFUSAL,
    "i cannot assist": REFUSAL,
    "i can't assist": REFUSAL,
    "i'm unable to": REFUSAL,
    "i am unable to": REFUSAL,
    "i'm not able to": REFUSAL,
    "i am not able to": REFUSAL,
    "i won't be able to": REFUSAL,
    "as an ai": REFUSAL,
    "as a language model": REFUSAL,
    "i cannot provide": REFUSAL,
    "i can't provide": REFUSAL,
    "i cannot answer": REFUSAL,
    "i can't answer": REFUSAL,
    "i don't have access": 0.8,
    # strong hedges
    "i don't know": 1.0,
    "i do not know": 1.0,
    "i'm not sure": 1.0,
    "i am not sure": 1.0,
    "not entirely sure": 0.8,
    "i'm not certain": 0.8,
    "i am not certain": 0.8,
    "i cannot be certain": 0.8,
    "i can't be certain": 0.8,
    "i may be wrong": 0.8,
    "i might be wrong": 0.8,
    "hard to say": 0.7,
    "difficult to say": 0.7,
    "i'm not confident": 0.8,
    # weak hedges: several together fail the answer
    "it depends": 0.4,
    "unclear": 0.4,
    "i think": 0.3,
    "i believe": 0.3,
    "probably": 0.3,
    "possibly": 0.3,
    "perhaps": 0.3,
    "might be": 0.3,
    "may be": 0.2,
    "it seems": 0.3,
    "roughly": 0.2,
    "i guess": 0.5,
}

# a run of word characters, matched on the reversed text: where the last word begins
_WORD_BACKWARDS = re.compile(r"[\w'\u2019\u2018\u02bc]*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})
IGNORABLE = ("code", "json_strings")
MAX_JSON_DOCUMENTS = 10_000  # JSON lines answers hold many documents; each is read once
# a fenced block (to the end of the text when never closed), then inline code spans
_FENCED_CODE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)[^\n]{1,2000}?(?<!`)\1(?!`)")


class HedgingVerifier:
    """Fails answers that hedge or refuse. Phrases can be added (with weights) or removed."""

    name = "hedging"

    def __init__(
        self,
        threshold: float = 1.0,
        add: Mapping[str, float] | None = None,
        remove: Sequence[str] = (),
        ignore: Sequence[str] = (),
    ) -> None:
        valid = isinstance(threshold, int | float) and not isinstance(threshold, bool)
        if not (valid and math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"threshold must be a finite number above 0, not {threshold!r}")
        _check_phrases("ignore", ignore)
        unknown = sorted(set(ignore) - set(IGNORABLE))
        if unknown:
            raise ValueError(
                f"unknown ignore value(s) {', '.join(map(repr, unknown))} (known: {', '.join(IGNORABLE)})"
            )
        self.ignore = frozenset(ignore)
        _check_phrases("remove", remove)
        lexicon = {**DEFAULT_LEXICON, **_added_phrases(add)}
        for phrase in remove:
            lexicon.pop(_normalise(phrase), None)
        self.threshold = threshold
        self.lexicon = lexicon
        # one alternation, longest phrase first, so "i'm not sure" wins over shorter overlaps
        phrases = sorted(lexicon, key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<![\w'])(" + "|".join(re.escape(p) for p in phrases) + r")(?![\w'])")
            if phrases
            else None
        )

    def find(self, text: str) -> dict[str, float]:
        """The lexicon phrases present in `text` (outside the parts ignored), with their weights."""
        if self._pattern is None:
            return {}
        found = {m.group(1) for m in self._pattern.finditer(_normalise(self._searched(text)))}
        return {p: self.lexicon[p] for p in sorted(found)}

    def __call__(self, candidate: Candidate) -> Verdict:
        return self._verdict(candidate.text)

    def threshold_for(self, score: float) -> float:
        """The `threshold` under which an answer passes iff its verdict score reaches `score`
        (score = 1 / (1 + weight), so about 1 / score - 1, exact in floats); inf for 0."""
        cut = check_score(score)
        if cut == 0:
            return math.inf
        return first_float_where(lambda weight: 1.0 / (1.0 + weight) < cut, 0.0, math.inf)

    def check_partial(self, text: str) -> Verdict | None:
        """Fail a streamed answer as soon as its prefix reaches the threshold. Only whole
        words count (the last one may still grow: "i think" -> "i thinking"), so a prefix
        that fails means the whole answer fails. Not when parts are ignored: an unclosed
        code span or JSON string cannot be told from prose yet."""
        if self.ignore:
            return None
        # found on the reversed text: searching forwards for `\w*\Z` is quadratic on a long word
        trailing = _WORD_BACKWARDS.match(text[::-1])
        complete = text[: len(text) - (trailing.end() if trailing else 0)]
        verdict = self._verdict(complete)
        return None if verdict.passed else verdict

    def _verdict(self, text: str) -> Verdict:
        found = self.find(text)
        total = sum(found.values())
        score = 1.0 / (1.0 + total)
        if not found:
            return Verdict(self.name, True, "no hedging or refusal phrases", score=score)
        listed = ", ".join(f'"{p}" ({w:g})' for p, w in found.items())
        passed = total < self.threshold
        verdict = "below" if passed else "reaches"
        return Verdict(
            self.name,
            passed,
            f"hedging weight {total:g} {verdict} threshold {self.threshold:g}: {listed}",
            score=score,
        )

    def _searched(self, text: str) -> str:
        """`text` with the ignored parts blanked out (a blank separates words like a space)."""
        if not self.ignore:
            return text
        spans = list(self._ignored_spans(text))
        if not spans:
            return text
        chars = list(text)
        for start, end in spans:
            chars[start:end] = " " * (end - start)
        return "".join(chars)

    def _ignored_spans(self, text: str) -> Iterator[tuple[int, int]]:
        if "code" in self.ignore:
            for fence in _FENCED_CODE.finditer(text):
                yield fence.span()
            for inline in _INLINE_CODE.finditer(text):
                yield inline.span()
        if "json_strings" in self.ignore:
            for doc in find_json(text, limit=MAX_JSON_DOCUMENTS):
                source = text[doc.start : doc.end]
                for start, end in string_value_spans(source):
                    yield doc.start + start, doc.start + end


def _check_phrases(setting: str, value: object) -> None:
    """`value` must be a list (or tuple) of strings: a lone string is no list of phrases."""
    if isinstance(value, str):
        raise ValueError(f"{setting} must be a list, e.g. [{value!r}]")
    if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{setting} must be a list of strings, not {value!r}")


def _added_phrases(add: object) -> dict[str, float]:
    """The `add` setting, a mapping of phrase to weight, checked: phrases non-empty, weights
    finite and positive (a weight of -1 would make the score 1 / 0)."""
    if add is None:
        return {}
    if not isinstance(add, Mapping):
        raise ValueError(f"add must be a mapping of phrase to weight, not {add!r}")
    added: dict[str, float] = {}
    for phrase, weight in add.items():
        if not isinstance(phrase, str) or not _normalise(phrase):
            raise ValueError(f"add: phrases must be non-empty strings, not {phrase!r}")
        valid = isinstance(weight, int | float) and not isinstance(weight, bool)
        if not (valid and math.isfinite(weight) and weight > 0):
            raise ValueError(f"add: the weight of {phrase!r} must be a finite number above 0, not {weight!r}")
        added[_normalise(phrase)] = float(weight)
    return added


def _normalise(text: str) -> str:
    return " ".join(text.translate(_APOSTROPHES).lower().split())
