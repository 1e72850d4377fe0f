"""Token log-probability check: an answer the model wrote with little certainty fails.

Asks the provider for token log-probabilities (OpenAI-format APIs give them; Anthropic does
not) and compares their mean, or their minimum, with `threshold` (a log-probability, <= 0).
The verdict's score is exp(statistic): the mean token's (or the least likely token's)
probability, 0..1, higher = more certain.
"""

from __future__ import annotations

import math

from cascade import Candidate, Request, Verdict
from cascade_verifiers._boundary import check_score, first_float_where
from cascade_verifiers._recorded import REPLAY_NOTE, recorded_number

STATISTICS = ("mean", "min")
ON_MISSING = ("fail", "pass")
MISSING_REASON = "no token logprobs (the provider returned none)"


class LogprobVerifier:
    """Fails an answer whose mean (or min) token log-probability is below `threshold`."""

    name = "logprob"

    def __init__(self, threshold: float, statistic: str = "mean", on_missing: str = "fail") -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValueError(
                f"threshold must be a number (a log-probability such as -0.5), not {threshold!r}"
            )
        if not (math.isfinite(threshold) and threshold <= 0):
            raise ValueError(f"threshold is a log-probability: a finite number <= 0, not {threshold!r}")
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {', '.join(STATISTICS)}, not {statistic!r}")
        if on_missing not in ON_MISSING:
            raise ValueError(f"on_missing must be one of {', '.join(ON_MISSING)}, not {on_missing!r}")
        self.threshold = float(threshold)
        self.statistic = statistic
        self.on_missing = on_missing

    def prepare_request(self, request: Request) -> Request:
        """Ask the provider for token log-probabilities."""
        return request.replace(logprobs=True)

    def threshold_for(self, score: float) -> float:
        """The `threshold` under which an answer passes iff its verdict score reaches `score`
        (score = exp(statistic), so about log(score), exact in floats); -inf for 0."""
        cut = check_score(score)
        if cut == 0:
            return -math.inf
        return first_float_where(lambda value: math.exp(value) >= cut, -math.inf, 0.0)

    def __call__(self, candidate: Candidate) -> Verdict:
        # a log-probability is <= 0 (-inf: a token the model thought impossible); NaN is no value
        values = [
            min(float(v), 0.0)
            for v in candidate.completion.logprobs or ()
            if isinstance(v, int | float) and not math.isnan(v)
        ]
        note = ""
        if values:
            value = min(values) if self.statistic == "min" else sum(values) / len(values)
        elif (recorded := recorded_number(candidate, "mean_logprob")) is not None:
            value, note = min(recorded, 0.0), REPLAY_NOTE  # a replayed answer keeps only the mean
        else:
            return Verdict(self.name, self.on_missing == "pass", MISSING_REASON)
        passed = value >= self.threshold
        relation = ">=" if passed else "<"
        label = "mean token logprob" if self.statistic == "mean" else "min token logprob"
        return Verdict(
            self.name,
            passed,
            f"{label} {value:.2f}{note} {relation} threshold {self.threshold:.2f}",
            score=math.exp(value),
        )
