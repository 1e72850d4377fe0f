"""Self-reported confidence: the model rates its own answer, and a low rating fails it.

`inline` mode asks for the rating as the last line of the answer itself (no extra call)
and strips that line from what is returned; `followup` mode asks the same model again,
in a second call whose cost is the verdict's. The verdict's score is the rating divided
by `scale` (0..1, higher = more confident); the answer passes when it reaches `threshold`.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

from cascade.types import ZERO, Candidate, Message, ModelCall, Request, Verdict

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
# The rating: "CONFIDENCE: 8", "Confidence: 8/10", "**Confidence:** 7", "Confidence level = 80%".
_RATING = (
    r"confidence(?:[ \t]+(?:level|score|rating))?[ \t*_`]*[:=][ \t*_`]*"
    rf"(?P<value>{_NUMBER})[ \t]*(?:/[ \t]*(?P<out_of>{_NUMBER})|(?P<percent>%))?"
)
_DECORATION_BEFORE = r"[ \t>#*_`\-\[(]*"
_DECORATION_AFTER = r"[ \t*_`.)\]]*"
# a line that is nothing but the rating (anywhere in the text), with its line break ...
_RATING_LINE = re.compile(
    rf"^{_DECORATION_BEFORE}{_RATING}{_DECORATION_AFTER}\r?(?:\n|\Z)", re.IGNORECASE | re.MULTILINE
)
# ... or the rating tacked on to the end of the last line ("The answer is 4. CONFIDENCE: 9")
_KEYWORD = re.compile("confidence", re.IGNORECASE)
_RATING_TAIL = re.compile(rf"{_RATING}{_DECORATION_AFTER}\s*", re.IGNORECASE)
_DECORATION_CHARS = frozenset(" \t>#*_`-[(")
_BARE_RATING = re.compile(
    rf"\A\s*(?P<value>{_NUMBER})[ \t]*(?:/[ \t]*(?P<out_of>{_NUMBER})|(?P<percent>%))?\s*\Z"
)


class RatingError(ValueError):
    """The text holds no usable confidence rating."""


def _rating_at_end(text: str) -> tuple[int, re.Match[str]] | None:
    """The rating that ends `text` after other words on its line, and where to cut it off.

    (Scanned for by hand: a regex search for it backtracks quadratically on long blanks.)
    """
    keywords = list(_KEYWORD.finditer(text))
    if not keywords:
        return None
    last = keywords[-1]
    match = _RATING_TAIL.fullmatch(text, last.start())
    if match is None:
        return None
    cut = last.start()
    while cut > 0 and text[cut - 1] in _DECORATION_CHARS:
        cut -= 1
    separated = cut == 0 or text[cut - 1] == "\n" or any(c in " \t" for c in text[cut : last.start()])
    return (cut, match) if separated else None


def strip_rating(text: str) -> str:
    """`text` without its confidence rating line(s); unchanged when it has none.

    Removes every line that is nothing but a rating, and a rating that ends the text,
    until none is left: whatever comes back holds no rating `parse_rating` would find.
    """
    stripped = text
    while True:
        before = stripped
        stripped = _RATING_LINE.sub("", stripped)
        at_end = _rating_at_end(stripped)
        if at_end is not None:
            stripped = stripped[: at_end[0]]
        if stripped == before:
            break
    if stripped == text:
        return text
    # the removed line leaves blank lines behind: drop those at the end
    return stripped.rstrip()


def parse_rating(text: str, scale: float, *, bare: bool = False) -> float:
    """The last confidence rating in `text`, on the 0..`scale` scale; raises RatingError.

    With `bare`, a reply that is nothing but a number ("8", "8/10") counts too.
    """
    lines = list(_RATING_LINE.finditer(text))
    match = lines[-1] if lines else None
    at_end = _rating_at_end(text)
    if at_end is not None and (match is None or at_end[1].start() >= match.start()):
        match = at_end[1]
    if match is None and bare:
        match = _BARE_RATING.match(text)
    if match is None:
        raise RatingError(f"no confidence rating (expected a final line like `CONFIDENCE: <0-{scale:g}>`)")
    raw = " ".join(match.group(0).split())
    value = float(match.group("value"))
    out_of = 100.0 if match.group("percent") else float(match.group("out_of") or scale)
    if not (math.isfinite(value) and out_of > 0 and 0 <= value <= out_of):
        raise RatingError(f"rating {raw!r} is out of range 0-{out_of:g}")
    # "4/5" or "80%" is a clear enough statement on another scale: convert it
    return value if out_of == scale else value / out_of * scale


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
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be a number from 0 to 1, not {threshold!r}")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive integer, not {scale!r}")
        if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
            raise ValueError("instruction must be a non-empty string")
        self.mode = mode
        self.threshold = float(threshold)
        self.scale = scale
        default = DEFAULT_INLINE_INSTRUCTION if mode == "inline" else DEFAULT_FOLLOWUP_INSTRUCTION
        self.instruction = (instruction or default).replace("{scale}", str(scale))

    # -- hooks (inline mode only) ---------------------------------------------------------

    def prepare_request(self, request: Request) -> Request:
        """Inline: ask for the rating line at the end of the answer."""
        return request.with_system_note(self.instruction) if self.mode == "inline" else request

    def clean_output(self, text: str) -> str:
        """Inline: the answer without its rating line."""
        return strip_rating(text) if self.mode == "inline" else text

    # -- the check ------------------------------------------------------------------------

    async def __call__(self, candidate: Candidate) -> Verdict:
        if self.mode == "inline":
            return self._inline(candidate)
        return await self._followup(candidate)

    def _inline(self, candidate: Candidate) -> Verdict:
        raw = candidate.completion.text
        try:
            value = parse_rating(raw, self.scale)
        except RatingError as exc:
            return Verdict(self.name, False, str(exc), score=0.0)
        if not strip_rating(raw).strip():
            return Verdict(self.name, False, "the answer is nothing but a confidence rating", score=0.0)
        return self._verdict(value, ZERO)

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

    def _verdict(self, value: float, cost: Decimal) -> Verdict:
        score = value / self.scale
        passed = score >= self.threshold
        bar = round(self.threshold * self.scale, 2)
        reason = f"self-rated {round(value, 2):g}/{self.scale} (threshold {bar:g}/{self.scale})"
        return Verdict(self.name, passed, reason, score=score, cost_usd=cost)
