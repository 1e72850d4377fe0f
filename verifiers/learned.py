"""A learned verifier, in the spirit of FrugalGPT's scorer: a logistic regression trained on
recorded outcomes predicts the probability that an answer is correct, from the request text
and the answer text, for the model that wrote it.

Features: word unigrams and bigrams of the request and of the answer (separate namespaces;
numbers read as one token), and a few numeric ones (answer length in log chars and its
power-of-two bucket, share of digits, a final numeric answer such as `#### 42` or "the
answer is 42", hedging weight from the hedging lexicon), hashed into 2^bits buckets with
zlib.crc32. The model file holds one weight vector per model seen in training and a
model-agnostic one (`*`, trained on every model's answers) for a model it does not know.
Train it with `cascade train-verifier --data TRAIN --out model.json` (see `train`).

The verdict's score is P(correct), 0..1; the answer passes when it reaches `threshold`.
"""

from __future__ import annotations

import json
import math
import random
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise, repeat
from pathlib import Path
from typing import Any

from cascade.core.values import Candidate, Verdict
from verifiers._settings import check_threshold
from verifiers.hedging import HedgingVerifier

FORMAT = "cascade.learned-verifier"
VERSION = 1
ANY_MODEL = "*"  # the model-agnostic weights, trained on every model's answers
DEFAULT_BITS = 18
HEAD_CHARS, TAIL_CHARS = 16_000, 4_000  # a longer text is read as its head and its tail
FINAL_ANSWER_WINDOW = 1_000  # a final answer is looked for in the last chars only
MAX_LENGTH_BUCKET = 20
WEIGHT_DIGITS = 6  # weights are saved (and used) rounded to this many decimals
DEFAULT_EPOCHS, DEFAULT_SEED, DEFAULT_HOLDOUT = 5, 0, 0.2
LEARNING_RATE, L2 = 0.1, 1e-4

_WORD = re.compile(r"[^\W\d_]+|\d+")
_NUMBER = re.compile(r"\d+")
_FINAL_ANSWER = re.compile(
    r"(?:####|\bthe\s+(?:final\s+)?answer\s+is\b:?|\banswer\s*:|\\boxed\{)[ \t*]*(?:\$[ \t]*)?-?\d",
    re.IGNORECASE,
)
NUMERIC = (
    "answer_log_chars",
    "answer_digits_share",
    "final_numeric_answer",
    "hedging_weight",
    "answer_length_bucket",
)
# what the features are; a file made with other settings is refused rather than misread
FEATURE_SETTINGS: dict[str, Any] = {
    "hash": "crc32",
    "ngrams": [1, 2],
    "namespaces": ["request", "answer"],
    "tokens": "lowercased words, every number as one token",
    "values": "binary n-grams scaled by 1/sqrt(distinct n-grams) per namespace",
    "numeric": list(NUMERIC),
    "max_chars": HEAD_CHARS + TAIL_CHARS,
}
# a unigram's bucket: crc32(token, namespace seed) mod 2^bits; a bigram's:
# (crc(first) * M + crc(second)) mod 2^bits
_BIGRAM_MULTIPLIER = 0x9E3779B1


def _seed(name: str) -> int:
    return zlib.crc32(name.encode("utf-8"))


_REQUEST_SEED, _ANSWER_SEED = _seed("request:"), _seed("answer:")


# -- features -----------------------------------------------------------------------------

# The features of one (request, answer) pair, as groups of buckets sharing a value: the
# request's n-grams, the answer's n-grams, then each numeric feature alone. A bucket in two
# groups counts twice (hash collisions add up).
Features = tuple[tuple[float, tuple[int, ...]], ...]


class _TokenHashes:
    """crc32 of each token in one namespace, remembered (bounded) so repeated words cost a lookup."""

    LIMIT = 200_000

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.known: dict[str, int] = {}

    def __call__(self, tokens: Iterable[str]) -> list[int]:
        known, hashes = self.known, []
        for token in tokens:
            value = known.get(token)
            if value is None:
                if len(known) >= self.LIMIT:
                    known.clear()
                value = known[token] = zlib.crc32(token.encode("utf-8", "surrogatepass"), self.seed)
            hashes.append(value)
        return hashes


_REQUEST_HASHES, _ANSWER_HASHES = _TokenHashes(_REQUEST_SEED), _TokenHashes(_ANSWER_SEED)


def _window(text: str) -> str:
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def _ngram_group(tokens: list[str], hashes: _TokenHashes, mask: int) -> tuple[float, tuple[int, ...]]:
    """A namespace's distinct unigram and bigram buckets, valued 1/sqrt(how many there are)."""
    unigrams = hashes(tokens)
    buckets = {h & mask for h in unigrams}
    buckets.update({(first * _BIGRAM_MULTIPLIER + second) & mask for first, second in pairwise(unigrams)})
    return (1.0 / math.sqrt(len(buckets)) if buckets else 0.0), tuple(buckets)


def _tokens(text: str) -> tuple[list[str], int]:
    """The lowercased words of `text` (its window), every number as the token "0", and how
    many digits the window holds."""
    window = _window(text)
    numbered, runs = _NUMBER.subn("0", window)
    return _WORD.findall(numbered.lower()), len(window) - len(numbered) + runs


@lru_cache(maxsize=64)
def _request_group(text: str, bits: int) -> tuple[float, tuple[int, ...]]:
    """Cached: every tier's answer to one request shares its request features."""
    return _ngram_group(_tokens(text)[0], _REQUEST_HASHES, (1 << bits) - 1)


@lru_cache(maxsize=1)
def _hedging_words() -> tuple[HedgingVerifier, tuple[frozenset[str], ...]]:
    """The hedging lexicon, and the words of each phrase: an answer that lacks some word of
    every phrase has no hedging, and the (slower) phrase search is skipped."""
    hedging = HedgingVerifier()
    return hedging, tuple(frozenset(_WORD.findall(phrase)) for phrase in hedging.lexicon)


def _numeric(answer: str, words: Iterable[str], digits: int) -> dict[str, float]:
    window = _window(answer)
    tail = window[-FINAL_ANSWER_WINDOW:]
    final = ("#" in tail or "answer" in tail.lower() or "boxed" in tail) and _FINAL_ANSWER.search(tail)
    hedging, phrases = _hedging_words()
    present = set(words)
    hedged = any(phrase <= present for phrase in phrases)
    bucket = min(len(answer).bit_length(), MAX_LENGTH_BUCKET)
    return {
        "answer_log_chars": math.log1p(len(answer)) / 10,
        "answer_digits_share": digits / len(window) if window else 0.0,
        "final_numeric_answer": 1.0 if final else 0.0,
        "hedging_weight": min(sum(hedging.find(window).values()), 5.0) if hedged else 0.0,
        f"answer_length_bucket_{bucket}": 1.0,
    }


def numeric_features(answer: str) -> dict[str, float]:
    """The numeric features of an answer, by name (the length bucket is named by its number)."""
    words, digits = _tokens(answer)
    return _numeric(answer, words, digits)


@lru_cache(maxsize=512)
def _numeric_bucket(name: str, bits: int) -> tuple[int, ...]:
    return (_seed("numeric:" + name) & ((1 << bits) - 1),)


def features(request: str, answer: str, bits: int = DEFAULT_BITS) -> Features:
    """The hashed features of one (request, answer) pair."""
    words, digits = _tokens(answer)
    numeric = [
        (value, _numeric_bucket(name, bits)) for name, value in _numeric(answer, words, digits).items()
    ]
    answer_group = _ngram_group(words, _ANSWER_HASHES, (1 << bits) - 1)
    return (_request_group(request, bits), answer_group, *numeric)


def flatten(found: Features) -> dict[int, float]:
    """Bucket -> value, values of a bucket in several groups added up."""
    flat: dict[int, float] = {}
    for value, buckets in found:
        if value:
            for bucket in buckets:
                flat[bucket] = flat.get(bucket, 0.0) + value
    return flat


def _sigmoid(z: float) -> float:
    if math.isnan(z):  # only from weights of opposite infinite sums; no evidence either way
        return 0.5
    z = max(-35.0, min(35.0, z))
    return 1.0 / (1.0 + math.exp(-z))


# -- the model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Weights:
    """One logistic regression: a bias and sparse weights by bucket."""

    bias: float
    weights: Mapping[int, float]

    def probability(self, found: Features) -> float:
        get = self.weights.get
        z = self.bias
        for value, buckets in found:
            if value:
                z += value * sum(map(get, buckets, repeat(0.0)))
        return _sigmoid(z)


@dataclass(frozen=True)
class LearnedModel:
    """Weight sets by model name (and `*` for any other model), with the training metadata."""

    models: Mapping[str, Weights]
    bits: int = DEFAULT_BITS
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def weights_for(self, model: str | None) -> tuple[Weights, str]:
        """The weights for `model`, or the model-agnostic ones, with the name of the set used."""
        if model is not None and model in self.models:
            return self.models[model], model
        return self.models[ANY_MODEL], ANY_MODEL

    def predict(self, request: str, answer: str, model: str | None = None) -> float:
        """P(correct) of `answer` to `request`, by `model`'s weights (or the model-agnostic ones)."""
        return self.weights_for(model)[0].probability(features(request, answer, self.bits))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "features": {**FEATURE_SETTINGS, "bits": self.bits},
            "models": {
                name: {
                    "bias": w.bias,
                    "weights": {str(bucket): value for bucket, value in sorted(w.weights.items())},
                }
                for name, w in self.models.items()
            },
            "metadata": dict(self.metadata),
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> LearnedModel:
        """A model from its saved form; ValueError says what is wrong with it."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f'not a learned-verifier model (no "format": {FORMAT!r})')
        version = data.get("version")
        if version != VERSION:
            raise ValueError(
                f"model format version {version!r} is not supported (this cascade reads {VERSION})"
            )
        settings = data.get("features")
        if not isinstance(settings, dict):
            raise ValueError("`features` settings are missing")
        bits = settings.get("bits")
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 30:
            raise ValueError(f"features.bits must be an integer from 1 to 30, not {bits!r}")
        differing = sorted(k for k, v in FEATURE_SETTINGS.items() if settings.get(k) != v)
        if differing:
            raise ValueError(
                f"made with other feature settings ({', '.join(differing)}): retrain it with this cascade"
            )
        models = data.get("models")
        if not isinstance(models, dict) or ANY_MODEL not in models:
            raise ValueError(f"`models` must map model names to weights, including {ANY_MODEL!r}")
        metadata = data.get("metadata", {})
        return cls(
            {str(name): _weights(name, entry, bits) for name, entry in models.items()},
            bits,
            metadata if isinstance(metadata, dict) else {},
        )

    @classmethod
    def load(cls, path: str | Path) -> LearnedModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read model_file {str(path)!r}: {exc.strerror or exc}") from None
        except ValueError as exc:  # bad JSON or bad UTF-8
            raise ValueError(f"model_file {str(path)!r} is not valid JSON: {exc}") from None
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"model_file {str(path)!r}: {exc}") from None


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _weights(name: str, entry: Any, bits: int) -> Weights:
    if (
        not isinstance(entry, dict)
        or not _finite(entry.get("bias"))
        or not isinstance(entry.get("weights"), dict)
    ):
        raise ValueError(f"models[{name!r}] needs a finite `bias` and a `weights` mapping")
    weights: dict[int, float] = {}
    for key, value in entry["weights"].items():
        bucket = int(key) if isinstance(key, str) and key.isascii() and key.isdigit() else -1
        if not 0 <= bucket < 1 << bits or not _finite(value):
            raise ValueError(f"models[{name!r}].weights: bad entry {key!r}: {value!r}")
        weights[bucket] = float(value)
    return Weights(float(entry["bias"]), weights)


# -- the verifier ---------------------------------------------------------------------------


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


# -- training -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One labelled answer: the request it answers, its text, the model, and whether it was correct."""

    group: str  # the request's id: answers to one request fall on the same side of a split
    model: str
    request: str
    answer: str
    correct: bool


@dataclass(frozen=True)
class Evaluation:
    """Held-out figures of one weight set."""

    n: int
    accuracy: float
    baseline: float  # always predicting the majority class of the training answers
    auc: float | None  # None when the held-out answers are all of one class

    def to_dict(self) -> dict[str, Any]:
        auc = None if self.auc is None else round(self.auc, 4)
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "baseline": round(self.baseline, 4),
            "auc": auc,
        }


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (ties count half); None without both classes."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return None
    ranked = sorted(zip(scores, labels, strict=True))
    rank_sum, i = 0.0, 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid_rank = (i + j + 1) / 2  # ranks i+1..j share their mean
        rank_sum += mid_rank * sum(1 for _, label in ranked[i:j] if label)
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def fit(
    data: Sequence[tuple[Features, bool]],
    *,
    bits: int = DEFAULT_BITS,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    learning_rate: float = LEARNING_RATE,
    l2: float = L2,
) -> Weights:
    """Logistic regression by AdaGrad on log loss with L2 (applied to the features present),
    `epochs` passes in a seeded random order. Weights come back rounded, as they are saved."""
    size = 1 << bits
    w, g2 = [0.0] * size, [0.0] * size
    bias, bias_g2 = 0.0, 0.0
    rows = [(list(flatten(found).items()), 1.0 if label else 0.0) for found, label in data]
    order = list(range(len(rows)))
    rng = random.Random(seed)
    sqrt = math.sqrt
    for _ in range(epochs):
        rng.shuffle(order)
        for k in order:
            items, y = rows[k]
            z = bias
            for bucket, value in items:
                z += w[bucket] * value
            g = _sigmoid(z) - y
            bias_g2 += g * g
            if bias_g2:
                bias -= learning_rate * g / sqrt(bias_g2)
            for bucket, value in items:
                grad = g * value + l2 * w[bucket]
                if grad:
                    s = g2[bucket] + grad * grad
                    g2[bucket] = s
                    w[bucket] -= learning_rate * grad / sqrt(s)
    rounded = {i: r for i, v in enumerate(w) if v and (r := round(v, WEIGHT_DIGITS))}
    return Weights(round(bias, WEIGHT_DIGITS), rounded)


def evaluate_weights(weights: Weights, data: Sequence[tuple[Features, bool]], baseline: bool) -> Evaluation:
    """Accuracy (at p >= 0.5) and AUC of `weights` on `data`, beside always saying `baseline`."""
    scores = [weights.probability(found) for found, _ in data]
    labels = [label for _, label in data]
    n = len(labels)
    right = sum((p >= 0.5) == label for p, label in zip(scores, labels, strict=True))
    majority = sum(label == baseline for label in labels)
    return Evaluation(n, right / n if n else 0.0, majority / n if n else 0.0, auc(scores, labels))


@dataclass
class TrainingReport:
    model: LearnedModel
    counts: dict[str, tuple[int, int]]  # weight set -> (answers, correct ones)
    heldout: dict[str, Evaluation]
    heldout_share: float


def split_groups(groups: Iterable[str], share: float, seed: int) -> set[str]:
    """A seeded `share` of the distinct groups, held out."""
    distinct = sorted(set(groups))
    random.Random(seed).shuffle(distinct)
    return set(distinct[: round(len(distinct) * share)])


def train(
    examples: Sequence[Example],
    *,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    holdout: float = DEFAULT_HOLDOUT,
    bits: int = DEFAULT_BITS,
    metadata: Mapping[str, Any] | None = None,
) -> TrainingReport:
    """Weights per model and model-agnostic ones. A seeded `holdout` share of the requests is
    held out to measure accuracy and AUC; the saved weights are then fitted on every example."""
    if not examples:
        raise ValueError("no labelled answers to train on")
    if not 0 <= holdout < 1:
        raise ValueError("holdout must be from 0 to less than 1")
    featurised = [(e, features(e.request, e.answer, bits)) for e in examples]
    sets: dict[str, list[tuple[Example, Features]]] = {}
    for example, found in featurised:
        sets.setdefault(example.model, []).append((example, found))
    sets[ANY_MODEL] = featurised
    held = split_groups((e.group for e in examples), holdout, seed) if holdout else set()
    options = {"bits": bits, "epochs": epochs, "seed": seed}
    heldout: dict[str, Evaluation] = {}
    models: dict[str, Weights] = {}
    counts: dict[str, tuple[int, int]] = {}
    for name, rows in sets.items():
        labelled = [(found, e.correct) for e, found in rows]
        counts[name] = (len(rows), sum(e.correct for e, _ in rows))
        if held:
            fitting = [(found, e.correct) for e, found in rows if e.group not in held]
            testing = [(found, e.correct) for e, found in rows if e.group in held]
            if fitting and testing:
                majority = 2 * sum(label for _, label in fitting) >= len(fitting)
                heldout[name] = evaluate_weights(fit(fitting, **options), testing, majority)
        models[name] = fit(labelled, **options)
    info = {
        **(metadata or {}),
        "epochs": epochs,
        "seed": seed,
        "learning_rate": LEARNING_RATE,
        "l2": L2,
        "examples": {name: {"answers": n, "correct": k} for name, (n, k) in counts.items()},
        "heldout": {
            "share": holdout,
            "split": "by request, seeded",
            **{name: e.to_dict() for name, e in heldout.items()},
        },
    }
    return TrainingReport(LearnedModel(models, bits, info), counts, heldout, holdout)
