"""A learned verifier, in the spirit of FrugalGPT's scorer: a logistic regression trained on
recorded outcomes predicts the probability that an answer is correct, from the request text
and the answer text, for the model that wrote it.

Its features are in `learned_features`, the model file in `learned_model`, the training in
`learned_training`. Train it with `cascade train-verifier --data TRAIN --out model.json`.

The verdict's score is P(correct), 0..1; the answer passes when it reaches `threshold`.
"""

from __future__ import annotations

from pathlib import Path

from cascade import Candidate, Verdict
from cascade_verifiers._settings import check_threshold
from cascade_verifiers.learned_features import features
from cascade_verifiers.learned_model import LearnedModel


class LearnedVerifier:
    """Fails an answer whose learned P(correct) is below `threshold`."""

    name = "learned"

    def __init__(self, model_file: str, threshold: float = 0.5) -> None:
        if not isinstance(model_file, str | Path) or not str(model_file).strip():
            raise ValueError("model_file must be the path of a model made by `cascade train-verifier`")
        self.threshold = check_threshold(threshold)
        self.model_file = str(model_file)
        self.model = LearnedModel.load(model_file)

    def threshold_for(self, score: float) -> float:
        """The `threshold` setting that passes exactly the answers scoring `score` or more."""
        return score

    def __call__(self, candidate: Candidate) -> Verdict:
        model = candidate.completion.model
        try:
            weights, used = self.model.weights_for(model)
            p = weights.probability(features(candidate.request.text(), candidate.text, self.model.bits))
        except Exception as exc:  # never raise on model text: fail the check and say why
            return Verdict(self.name, False, f"learned verifier could not score the answer: {exc}")
        whose = model if used == model else f"{model or 'an unnamed model'} (model-agnostic weights)"
        passed = p >= self.threshold
        reason = f"learned P(correct) {p:.2f} (threshold {self.threshold:.2f}) for {whose}"
        return Verdict(self.name, passed, reason, score=p)
