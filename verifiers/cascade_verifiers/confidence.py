"""Self-reported confidence: the model rates its own answer, and a low rating fails it.

`inline` mode asks for the rating as the last line of the answer itself (no extra call)
and strips that line from what is returned (trailing lines that start with "confidence",
never lines in the middle); the rating must read `N`, `N/M`, `N out of M` or `N%`, else
the answer fails as unparseable. `followup` mode asks the same model again,
in a second call whose cost is the verdict's. The verdict's score is the rating divided
by `scale` (0..1, higher = more confident); the answer passes when it reaches `threshold`.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from cascade import Candidate, Message, ModelCall, Request, Usage, Verdict, most_tokens
from cascade_verifiers._recorded import REPLAY_NOTE, recorded_number
from cascade_verifiers._settings import check_scale, check_threshold

MODES = ("inline", "followup")

DEFAULT_INLINE_INSTRUCTION = (
    "After your answer, rate your confidence that the answer is correct and complete, as an integer "
    "from 0 (surely wrong) to {scale} (surely right). Put the rating on a final line of its own, exactly "
    "like this:\nCONFIDENCE: <integer 0-{scale}>\nWrite nothing after that line."
)
DEFAULT_FOLLOWUP_INSTRUCTION = (
    "How confident are you that your previous answer is correct and complete? Reply with the rating "
    "only, an integer from 0 (surely wrong) to {scale} (surely right), exactly like this:\n"
    "CONFIDENCE: <integer 0-{scale}>"
)

_NUMBER = r"[-+]?\d{1,12}(?:\.\d{1,12})?"
_DECORATION_BEFORE = r"[ \t>#*_`\-\[(]*+"
_OWNER = r"(?:(?:my|overall)[ \t]++)?"
# the value: "8", "8/10", "8 out of 10", "80%"
_VALUE = (
    rf"(?P<value>{_NUMBER})(?:[ \t]*+/[ \t]*+(?P<out_of>{_NUMBER})"
    rf"|[ \t]++out[ \t]++of[ \t]++(?P<out_of_words>{_NUMBER})|[ \t]*+(?P<percent>%))?"
)
_HEAD = rf"{_OWNER}confidence(?:[ \t]++(?:level|score|rating))?"
# the start of a rating line: "CONFIDENCE", "**My confidence", "> Overall confidence level"
_RATING_START = re.compile(rf"{_DECORATION_BEFORE}{_OWNER}confidence\b", re.IGNORECASE)
# a rating in one of the accepted forms: "Confidence: 8", "**Confidence (0-10):** 8/10",
# "Confidence level = 80%", "My confidence: 9 out of 10" (possessive: no backtracking on blanks)
_RATING = (
    rf"{_HEAD}(?:[ \t]*+\([^()\n]{{0,20}}\))?"  # a scale note, "(0-10)"
    r"[ \t*_`]*+(?:(?:[:=]|[-\u2013\u2014](?=[ \t])|is\b)[ \t*_`]*+)?"
    rf"{_VALUE}"
)
_RATING_LINE = re.compile(rf"{_DECORATION_BEFORE}{_RATING}", re.IGNORECASE)
# after the rating: decoration and punctuation, then perhaps a short remark ("Hope this helps!")
_AFTER_RATING = re.compile(r"[ \t*_`.,;:!?)\]]*+")
_NOT_A_REMARK = re.compile(r"[-+\u2013\u2014/%]?[ \t]*\d|(?:out[ \t]+)?of\b", re.IGNORECASE)
MAX_REMARK_CHARS = 80
# a rating tacked on to the end of the last line ("The answer is 4. CONFIDENCE: 9")
_KEYWORD = re.compile(rf"\b{_OWNER}confidence\b", re.IGNORECASE)
_RATING_TAIL = re.compile(rf"{_RATING}[ \t*_`.)\]]*+", re.IGNORECASE)
_DECORATION_CHARS = frozenset(" \t>#*_`-[(")
_BARE_RATING = re.compile(rf"\A\s*+{_VALUE}\s*+\Z", re.IGNORECASE)


class RatingError(ValueError):
    """The text holds no usable confidence rating."""


def _skip_blanks_back(text: str, end: int) -> int:
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


def _rating_tails(line: str) -> tuple[int, list[str]]:
    """Ratings tacked on to the end of `line` after other words, last first, and where the
    line's own text ends (`len(line)` and none when it has none).

    Scanned for by hand, from the last keyword back: a regex search would backtrack."""
    keywords = [match.start() for match in _KEYWORD.finditer(line)]
    end, tails = len(line), []
    for start in reversed(keywords):
        if _RATING_TAIL.fullmatch(line, start, end) is None:
            break
        cut = start
        while cut > 0 and line[cut - 1] in _DECORATION_CHARS:
            cut -= 1
        if cut > 0 and not any(c in " \t" for c in line[cut:start]):
            break  # glued to a word
        tails.append(line[start:end].strip())
        end = cut
    return end, tails


def split_rating(text: str) -> tuple[str, list[str]]:
    """`text` without its confidence rating, and the rating text(s) removed, last first.

    Only the end of the text is looked at, in one pass backwards: trailing lines (blank lines
    skipped) that start with "confidence" (or "my"/"overall confidence", after markdown
    decoration) are removed, whatever follows; then ratings in an accepted form tacked on
    to the end of the last line left. Lines in the middle are never touched, and an answer
    without a rating comes back unchanged.
    """
    removed: list[str] = []
    end = _skip_blanks_back(text, len(text))
    while end > 0:
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end]
        if _RATING_START.match(line) is None:
            kept, tails = _rating_tails(line)
            if tails:
                removed += tails
                end = _skip_blanks_back(text, start + kept)
            break
        removed.append(line.strip())
        end = _skip_blanks_back(text, start)
    return (text[:end] if removed else text), removed


def strip_rating(text: str) -> str:
    """`text` without its trailing confidence rating line(s); unchanged when it has none."""
    return split_rating(text)[0]


def _read_rating(line: str) -> re.Match[str] | None:
    """The rating of a removed rating line when it is in an accepted form: `N`, `N/M`,
    `N out of M` or `N%`, then nothing but punctuation or a short remark."""
    match = _RATING_LINE.match(line)
    if match is None:
        return None
    after = _AFTER_RATING.match(line, match.end())
    after_end = after.end() if after else match.end()  # always a match, possibly empty
    remark = line[after_end:].strip()
    if remark and (
        after_end == match.end()  # "8x", "8-9": glued to the number
        or _NOT_A_REMARK.match(remark) is not None  # "8 9", "8 out of ten"
        or len(remark) > MAX_REMARK_CHARS
    ):
        return None
    return match


def _value(match: re.Match[str], scale: float) -> float:
    raw = " ".join(match.group(0).split())
    value = float(match.group("value"))
    out_of_text = match.group("out_of") or match.group("out_of_words")
    out_of = 100.0 if match.group("percent") else float(out_of_text or scale)
    if not (math.isfinite(value) and out_of > 0 and 0 <= value <= out_of):
        raise RatingError(f"rating {raw!r} is out of range 0-{out_of:g}")
    # "4/5" or "80%" is a clear enough statement on another scale: convert it
    return value if out_of == scale else value / out_of * scale


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REMARK_CHARS else text[: MAX_REMARK_CHARS - 1] + "…"


def rating_from(removed: list[str], scale: float) -> float:
    """The rating in what `split_rating` removed, on the 0..`scale` scale; raises RatingError.

    The last rating written counts, and only when it is in an accepted form.
    """
    if not removed:
        raise RatingError(f"no confidence rating (expected a final line like `CONFIDENCE: <0-{scale:g}>`)")
    match = _read_rating(removed[0])
    if match is None:
        raise RatingError(f"unparseable self-rating: {_short(removed[0])!r}")
    return _value(match, scale)


def parse_rating(text: str, scale: float, *, bare: bool = False) -> float:
    """The confidence rating that ends `text`, on the 0..`scale` scale; raises RatingError.

    With `bare` (a reply that is only the rating), a reply that is nothing but a number
    ("8", "8/10") counts too, and so does a rating line followed by other lines.
    """
    removed = split_rating(text)[1]
    if not removed and bare:
        match = _BARE_RATING.match(text)
        if match is not None:
            return _value(match, scale)
        last = next((line for line in reversed(text.splitlines()) if _RATING_START.match(line)), None)
        removed = [] if last is None else [last.strip()]
    return rating_from(removed, scale)


class SelfConfidenceVerifier:
    """Fails an answer the model itself rates below `threshold` (a 0-1 fraction of `scale`)."""

    name = "self_confidence"

    def __init__(
        self,
        mode: str = "inline",
        threshold: float = 0.7,
        scale: int = 10,
        instruction: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        threshold = check_threshold(threshold)
        scale = check_scale(scale)
        if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
            raise ValueError("instruction must be a non-empty string")
        self.mode = mode
        self.threshold = threshold
        self.scale = scale
        default = DEFAULT_INLINE_INSTRUCTION if mode == "inline" else DEFAULT_FOLLOWUP_INSTRUCTION
        self.instruction = (instruction or default).replace("{scale}", str(scale))

    def threshold_for(self, score: float) -> float:
        """The `threshold` under which an answer passes iff its verdict score reaches `score`:
        the score itself (both are fractions of `scale`)."""
        return check_threshold(score)

    # -- hooks (inline mode only) ---------------------------------------------------------

    def prepare_request(self, request: Request) -> Request:
        """Inline: ask for the rating line at the end of the answer."""
        return request.with_system_note(self.instruction) if self.mode == "inline" else request

    def clean_output(self, text: str) -> str:
        """Inline: the answer without its rating line."""
        return strip_rating(text) if self.mode == "inline" else text

    def worst_cost_usd(self, input_tokens: int, output_tokens: int, price: Any) -> Decimal:
        """Followup: the same model asked again, with its answer and the instruction added."""
        if self.mode == "inline":
            return Decimal(0)
        asked = input_tokens + output_tokens + most_tokens(self.instruction)
        return Decimal(price.cost(Usage(asked, output_tokens)))

    # -- the check ------------------------------------------------------------------------

    async def __call__(self, candidate: Candidate) -> Verdict:
        recorded = recorded_number(candidate, "confidence")  # 0-1, recorded with a replayed answer
        if recorded is not None and 0 <= recorded <= 1:
            return self._verdict(recorded * self.scale, Decimal(0), REPLAY_NOTE)
        if self.mode == "inline":
            return self._inline(candidate)
        return await self._followup(candidate)

    def _inline(self, candidate: Candidate) -> Verdict:
        answer, removed = split_rating(candidate.completion.text)
        try:
            value = rating_from(removed, self.scale)
        except RatingError as exc:
            return Verdict(self.name, False, str(exc), score=0.0)
        if not answer.strip():
            return Verdict(self.name, False, "the answer is nothing but a confidence rating", score=0.0)
        return self._verdict(value, Decimal(0))

    async def _followup(self, candidate: Candidate) -> Verdict:
        if candidate.ask is None:
            return Verdict(
                self.name, False, "cannot ask the model for a rating (no follow-up call available)"
            )
        request = candidate.request.followed_by(
            Message("assistant", candidate.completion.text), Message("user", self.instruction)
        ).replace(response_schema=None, logprobs=False)
        try:
            call: ModelCall = await candidate.ask(request)
        except Exception as exc:  # ask must not raise; if it does, fail the check, don't crash
            return Verdict(self.name, False, f"follow-up rating call raised {type(exc).__name__}: {exc}")
        cost = call.cost_usd
        if call.completion is None:
            return Verdict(self.name, False, f"follow-up rating call failed: {call.error}", cost_usd=cost)
        try:
            value = parse_rating(call.completion.text, self.scale, bare=True)
        except RatingError as exc:
            return Verdict(self.name, False, f"follow-up reply: {exc}", score=0.0, cost_usd=cost)
        return self._verdict(value, cost)

    def _verdict(self, value: float, cost: Decimal, note: str = "") -> Verdict:
        score = value / self.scale
        passed = score >= self.threshold
        bar = round(self.threshold * self.scale, 2)
        reason = f"self-rated {round(value, 2):g}/{self.scale}{note} (threshold {bar:g}/{self.scale})"
        return Verdict(self.name, passed, reason, score=score, cost_usd=cost)
