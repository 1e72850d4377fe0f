"""The learned verifier: training, the model file, the verdict, `cascade train-verifier`."""

from __future__ import annotations

import asyncio
import json
import random
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cascade.cli import main
from cascade.config import parse_config
from cascade.core.errors import ConfigError
from cascade.core.values import Candidate, Completion, Request, Usage
from cascade.engine import Cascade
from cascade.offline.evaluation import evaluate
from cascade.offline.records import with_records
from cascade.providers.replay import load_recorded, parse_recorded
from cascade_verifiers.learned import LearnedVerifier
from cascade_verifiers.learned_features import features, numeric_features
from cascade_verifiers.learned_model import ANY_MODEL, LearnedModel
from cascade_verifiers.learned_training import Example, auc, split_groups, train
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "routellm"
CHEAP, STRONG = "cheap-model", "strong-model"
PRICES = {
    CHEAP: {"input_per_mtok": 1, "output_per_mtok": 2},
    STRONG: {"input_per_mtok": 10, "output_per_mtok": 20},
}
WORDS = ["apple", "river", "stone", "cloud", "seven", "metal", "garden", "window", "orange", "paper", "lamp"]
MARKER = "correct-token"
SIMULATED_TIER = {"name": "small", "provider": "simulated", "model": "gpt-4o-mini", "examples": "builtin"}


def synthetic(n: int, seed: int, always_right: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Records whose answers are correct exactly when they contain MARKER, amid random words
    (the models in `always_right` always answer correctly)."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        responses = {}
        for model in (CHEAP, STRONG):
            right = model in always_right or rng.random() < 0.5
            words = rng.choices(WORDS, k=rng.randint(4, 20))
            if right:
                words.insert(rng.randrange(len(words) + 1), MARKER)
            responses[model] = {"text": " ".join(words), "correct": right}
        prompt = "question: " + " ".join(rng.choices(WORDS, k=6))
        records.append({"id": f"s{seed}-{i}", "prompt": prompt, "responses": responses})
    return records


def examples(records: Iterable[dict[str, Any]]) -> list[Example]:
    found = []
    for number, data in enumerate(records, 1):
        record = parse_recorded(json.dumps(data), number)
        for model, response in record.responses.items():
            correct = record.correct(model)
            if correct is not None:
                found.append(Example(record.id, model, record.request.text(), response["text"], correct))
    return found


def write(path: Path, rows: Iterable[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def candidate(answer: str, model: str = CHEAP, prompt: str = "question: apple river") -> Candidate:
    return Candidate(
        request=Request.from_prompt(prompt),
        completion=Completion(text=answer, model=model, usage=Usage(1, 1)),
        tier="small",
    )


@pytest.fixture(scope="module")
def synthetic_model() -> LearnedModel:
    return train(examples(synthetic(300, seed=1)), epochs=3).model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory, synthetic_model: LearnedModel) -> Path:
    path = tmp_path_factory.mktemp("learned") / "m.json"
    synthetic_model.save(path)
    return path


def test_learns_a_synthetic_signal(synthetic_model):
    fresh = examples(synthetic(200, seed=2))  # requests and answers never seen in training
    scores = [synthetic_model.predict(e.request, e.answer, e.model) for e in fresh]
    result = auc(scores, [e.correct for e in fresh])
    assert result is not None and result > 0.9


def test_training_reports_counts_and_held_out_figures():
    report = train(examples(synthetic(200, seed=3)), epochs=3, seed=5)
    assert set(report.counts) == {CHEAP, STRONG, ANY_MODEL}
    assert report.counts[ANY_MODEL][0] == 400 == report.counts[CHEAP][0] + report.counts[STRONG][0]
    held = report.heldout[CHEAP]
    assert held.n == 40  # 20 % of the 200 requests, each with one answer of this model
    assert held.auc is not None and held.auc > 0.9 and held.accuracy > held.baseline
    meta = report.model.metadata
    assert meta["heldout"][CHEAP]["n"] == 40 and meta["examples"][STRONG]["answers"] == 200
    assert meta["seed"] == 5 and meta["epochs"] == 3


def test_training_is_reproducible_with_a_seed():
    data = examples(synthetic(100, seed=4))
    first, second = (train(data, epochs=2, seed=9).model.to_dict() for _ in range(2))
    assert first["models"] == second["models"]


def test_the_split_keeps_both_answers_to_a_request_on_one_side():
    held = split_groups([f"r{i}" for i in range(50)] * 2, 0.2, seed=0)
    assert len(held) == 10 and held == split_groups([f"r{i}" for i in range(50)], 0.2, seed=0)


def test_save_and_load_give_identical_predictions(tmp_path, synthetic_model):
    path = tmp_path / "m.json"
    synthetic_model.save(path)
    loaded = LearnedModel.load(path)
    saved = json.loads(path.read_text())
    assert saved["format"] == "cascade.learned-verifier" and saved["version"] == 1
    assert saved["features"]["bits"] == 18 and saved["features"]["hash"] == "crc32"
    assert all(w != 0 for entry in saved["models"].values() for w in entry["weights"].values())  # sparse
    for e in examples(synthetic(50, seed=6)):
        for model in (CHEAP, STRONG, "unknown"):
            assert loaded.predict(e.request, e.answer, model) == synthetic_model.predict(
                e.request, e.answer, model
            )


def test_verdict_passes_likely_correct_answers_with_probability_score(model_file):
    verifier = LearnedVerifier(model_file=str(model_file))
    good = verifier(candidate(f"stone {MARKER} cloud lamp"))
    bad = verifier(candidate("stone cloud lamp field"))
    assert good.passed and not bad.passed
    assert good.score is not None and bad.score is not None and good.score > 0.5 > bad.score
    assert re.fullmatch(rf"learned P\(correct\) 0\.\d\d \(threshold 0\.50\) for {CHEAP}", good.reason)


def test_threshold_decides_and_threshold_for_is_the_identity(model_file):
    answer = candidate(f"stone {MARKER} cloud lamp")
    score = LearnedVerifier(model_file=str(model_file))(answer).score
    assert score is not None
    verifier = LearnedVerifier(model_file=str(model_file), threshold=0.99)
    assert verifier.threshold_for(0.37) == 0.37
    assert verifier(answer).passed is (score >= 0.99)
    assert LearnedVerifier(model_file=str(model_file), threshold=score)(answer).passed


def test_an_unknown_model_uses_the_model_agnostic_weights(model_file, synthetic_model):
    verdict = LearnedVerifier(model_file=str(model_file))(candidate(f"{MARKER} lamp", model="other-model"))
    assert "other-model (model-agnostic weights)" in verdict.reason
    request = Request.from_prompt("question: apple river").text()
    assert verdict.score == synthetic_model.predict(request, f"{MARKER} lamp", ANY_MODEL)


def test_numeric_features():
    found = numeric_features("So 3 x 60 = 180.\n#### 180")
    assert found["final_numeric_answer"] == 1.0 and found["hedging_weight"] == 0.0
    assert 0 < found["answer_digits_share"] < 1
    assert numeric_features("The answer is $42.")["final_numeric_answer"] == 1.0
    assert numeric_features("The answer is unclear, I'm not sure.")["final_numeric_answer"] == 0.0
    assert numeric_features("I'm not sure, probably 4")["hedging_weight"] == pytest.approx(1.3)
    assert "answer_length_bucket_0" in numeric_features("")


def test_very_long_texts_are_read_as_head_and_tail():
    long = "word " * 100_000 + "#### 7"
    found = numeric_features(long)
    assert found["final_numeric_answer"] == 1.0
    assert len(features("q", long)[1][1]) < 10  # "word", "0" and their bigrams


def test_escalates_low_probability_answers_in_a_replayed_cascade(tmp_path):
    train(examples(synthetic(300, seed=1)), epochs=3).model.save(tmp_path / "m.json")
    records = synthetic(60, seed=8, always_right=[STRONG])
    data = write(tmp_path / "r.jsonl", records)
    tiers = [
        {"name": n, "provider": "replay", "model": m, "price": PRICES[m]}
        for n, m in (("small", CHEAP), ("large", STRONG))
    ]
    config = parse_config({"tiers": tiers, "verifiers": [{"type": "learned", "model_file": "m.json"}]})
    report = asyncio.run(evaluate(with_records(config, data), load_recorded(data), base_dir=tmp_path))
    cheap_wrong = sum(not r["responses"][CHEAP]["correct"] for r in records)
    assert 0 < cheap_wrong < 60
    assert report.accepted_by_tier == {"small": 60 - cheap_wrong, "large": cheap_wrong}
    assert report.escalated == cheap_wrong
    assert report.cascade.accuracy == 1.0 and report.cascade.cost_usd < report.top.cost_usd


def test_verdict_reason_shows_in_the_cascade(tmp_path, model_file):
    data = write(tmp_path / "r.jsonl", synthetic(1, seed=10))
    record = json.loads(data.read_text())
    record["responses"][CHEAP] = {"text": "stone cloud lamp", "correct": False}
    write(data, [record])
    tiers = [
        {"name": n, "provider": "replay", "model": m, "price": PRICES[m]}
        for n, m in (("small", CHEAP), ("large", STRONG))
    ]
    config = parse_config({"tiers": tiers, "verifiers": [{"type": "learned", "model_file": str(model_file)}]})

    async def run() -> Any:
        async with Cascade.from_config(with_records(config, data)) as cascade:
            return await cascade.arun(load_recorded(data).records[record["id"]].request)

    result = asyncio.run(run())
    first = result.attempts[0].verdicts[0]
    assert not first.passed and first.reason.startswith("learned P(correct) 0.")
    assert first.reason.endswith(f"for {CHEAP}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read model_file"),
        ("{not json", "is not valid JSON"),
        ('{"format": "something-else"}', "not a learned-verifier model"),
        (
            '{"format": "cascade.learned-verifier", "version": 99, "features": {}, "models": {}}',
            "version 99 is not supported",
        ),
    ],
)
def test_a_bad_model_file_is_a_config_error_naming_the_entry(tmp_path, content, message):
    path = tmp_path / "m.json"
    if content is not None:
        path.write_text(content)
    config = parse_config(
        {
            "tiers": [
                {"name": "small", "provider": "simulated", "model": "gpt-4o-mini", "examples": "builtin"}
            ],
            "verifiers": [{"type": "non_empty"}, {"type": "learned", "model_file": "m.json"}],
        }
    )
    with pytest.raises(ConfigError, match=r"verifiers\.1 \(learned\)") as caught:
        Cascade.from_config(config, base_dir=tmp_path)
    assert message in str(caught.value) and "m.json" in str(caught.value)


def test_damaged_weights_are_refused(tmp_path, synthetic_model):
    data = synthetic_model.to_dict()
    data["models"][CHEAP]["weights"]["999999999"] = 0.5  # outside the 2^18 buckets
    path = write(tmp_path / "m.json", [data])
    with pytest.raises(ValueError, match=r"models\['cheap-model'\]\.weights: bad entry '999999999'"):
        LearnedVerifier(model_file=str(path))
    data = synthetic_model.to_dict()
    del data["models"][ANY_MODEL]
    write(path, [data])
    with pytest.raises(ValueError, match="including '\\*'"):
        LearnedVerifier(model_file=str(path))


def test_bad_threshold_is_refused(model_file):
    with pytest.raises(ValueError, match="threshold must be a number from 0 to 1"):
        LearnedVerifier(model_file=str(model_file), threshold=1.5)


def test_a_failure_to_score_fails_the_check_instead_of_raising(model_file, monkeypatch):
    verifier = LearnedVerifier(model_file=str(model_file))

    def broken(*args: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr("cascade_verifiers.learned.features", broken)
    verdict = verifier(candidate("anything"))
    assert not verdict.passed and verdict.reason == "learned verifier could not score the answer: boom"


@settings(max_examples=200, deadline=None)
@given(
    request=st.text(st.characters(exclude_categories=())),  # surrogates and control characters too
    answer=st.text(st.characters(exclude_categories=())),
    model=st.sampled_from([CHEAP, STRONG, "other", ""]),
)
@example(request="\ud800", answer="I'm not sure \udfff #### 4", model=CHEAP)
def test_never_raises_and_scores_a_probability(model_file, request, answer, model):
    verifier = LearnedVerifier(model_file=str(model_file))
    verdict = verifier(
        Candidate(
            request=Request.from_prompt(request),
            completion=Completion(text=answer, model=model, usage=Usage(1, 1)),
            tier="small",
        )
    )
    assert verdict.score is not None and 0.0 <= verdict.score <= 1.0
    assert verdict.passed is (verdict.score >= 0.5)


# -- the command ------------------------------------------------------------------------------


TRAIN_OPTIONS = ("--epochs", "2", "--seed", "3")


def test_train_verifier_cli_writes_a_model_that_validate_accepts(tmp_path):
    rows: list[object] = list(synthetic(120, seed=11))
    rows.insert(3, "{broken")
    unlabelled = {"id": "u", "prompt": "p", "responses": {CHEAP: {"text": "no label"}}}
    data = write(tmp_path / "train.jsonl", [*rows, unlabelled])
    out = tmp_path / "model.json"
    proc = run_cli("train-verifier", "--data", str(data), "--out", str(out), *TRAIN_OPTIONS, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"line 4\b.*not valid JSON", " ".join(proc.stderr.split()))
    assert "1 answers of cheap-model have no `correct` label" in " ".join(proc.stderr.split())
    assert re.search(r"cheap-model\s+│\s+120\s+│", proc.stdout)  # answers per model
    assert "majority baseline" in proc.stdout and "AUC" in proc.stdout and f"wrote {out}" in proc.stdout
    saved = json.loads(out.read_text())
    assert saved["metadata"]["seed"] == 3 and set(saved["models"]) == {CHEAP, STRONG, ANY_MODEL}

    config = tmp_path / "c.yaml"
    config.write_text(
        "tiers:\n"
        "  - {name: small, provider: simulated, model: gpt-4o-mini, examples: builtin}\n"
        "verifiers:\n"
        "  - {type: learned, model_file: model.json, threshold: 0.6}\n"
    )
    # the model file is found next to the config, not in the working directory
    proc = run_cli("validate", str(config), timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "verifiers: learned" in proc.stdout


def test_train_verifier_only_for_the_models_asked(tmp_path, capsys):
    data = write(tmp_path / "train.jsonl", synthetic(40, seed=12))
    out = tmp_path / "model.json"
    args = ["train-verifier", "--data", str(data), "--out", str(out), "--epochs", "1"]
    assert main([*args, "--models", CHEAP]) == 0
    assert set(json.loads(out.read_text())["models"]) == {CHEAP, ANY_MODEL}
    assert main([*args, "--models", f"{CHEAP},missing-model"]) == 2
    assert "no answers labelled `correct` for missing-model" in " ".join(capsys.readouterr().err.split())


def test_train_verifier_without_usable_records_is_a_usage_error(tmp_path, capsys):
    data = write(
        tmp_path / "train.jsonl",
        ["{broken", {"id": 1, "prompt": "p", "responses": {CHEAP: {"text": "t"}}}],
    )
    out = tmp_path / "model.json"
    assert main(["train-verifier", "--data", str(data), "--out", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no usable records" in err and "line 1" in err and not out.exists()


# -- real answers ---------------------------------------------------------------------------------


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/routellm is not here")
def test_on_gsm8k_the_held_out_half_is_ranked_better_than_chance():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import routellm

    records = [parse_recorded(json.dumps(r), n) for n, r in enumerate(routellm.gsm8k(), 1)]
    held = split_groups([r.id for r in records], 0.5, seed=0)
    training = [
        Example(r.id, model, r.request.text(), response["text"], r.correct(model) is True)
        for r in records
        if r.id not in held
        for model, response in r.responses.items()
    ]
    model = train(training, holdout=0).model
    testing = [r for r in records if r.id in held]
    cheap = routellm.CHEAP
    scores = [model.predict(r.request.text(), r.responses[cheap]["text"], cheap) for r in testing]
    result = auc(scores, [r.correct(cheap) is True for r in testing])
    # seen: 0.624 on this split (0.62-0.67 over other seeds); too close to 0.6 to assert that
    assert result is not None and result > 0.5
