"""`cascade calibrate`: thresholds fitted to a target, checked against the real engine."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.cli import main
from cascade.cli.plotting import plot_cost_accuracy
from cascade.config import load_config
from cascade.core.errors import ConfigError
from cascade.core.values import Candidate, Completion, Request, Usage
from cascade.offline import calibration
from cascade.offline.calibration import Target, binomial_lower_bound, calibrate, observe
from cascade.offline.calibration import search as cutoff_search
from cascade.offline.calibration.curves import error_curves
from cascade.offline.calibration.report import skipped
from cascade.offline.calibration.thresholds import calibrated_yaml
from cascade.offline.evaluation import evaluate
from cascade.offline.records import with_records
from cascade.providers.replay import load_recorded
from cascade_verifiers.confidence import SelfConfidenceVerifier
from cascade_verifiers.hedging import DEFAULT_LEXICON, HedgingVerifier
from cascade_verifiers.judge import JudgeVerifier
from cascade_verifiers.logprob import LogprobVerifier

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
PNG = b"\x89PNG\r\n\x1a\n"


# -- threshold_for: "passes iff verdict.score >= cut-off" per verifier ----------------------


def candidate(text: str = "answer", **recorded: Any) -> Candidate:
    completion = Completion(text=text, model="m", usage=Usage(1, 1), recorded=recorded or None)
    return Candidate(request=Request.from_prompt("q"), completion=completion, tier="small")


def check_rule(verdicts_of: Any, threshold_for: Any, inputs: list[Any], cut: float) -> None:
    """With the threshold `threshold_for(cut)`, an input passes iff its score reaches `cut`."""
    threshold = threshold_for(cut)
    for item in inputs:
        verdict = verdicts_of(threshold, item)
        assert verdict.score is not None
        assert verdict.passed == (verdict.score >= cut), (item, cut, threshold, verdict)


def cut_from(scores: list[float], pick: int, fresh: float, use_observed: bool) -> float:
    return scores[pick % len(scores)] if use_observed else fresh


PHRASES = sorted(DEFAULT_LEXICON)

JUDGE_MODEL = {
    "provider": "openai",
    "model": "judge-model",
    "base_url": "http://127.0.0.1:9/v1",
    "api_key_env": "CASCADE_TEST_UNSET_KEY",
    "price": {"input_per_mtok": "1", "output_per_mtok": "1"},
}
JUDGE = JudgeVerifier(model=JUDGE_MODEL)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(PHRASES), max_size=4), min_size=1, max_size=6),
    st.integers(0, 100),
    st.floats(1e-6, 1.0),
    st.booleans(),
)
def test_hedging_threshold_for_passes_iff_score_reaches_the_cut(texts, pick, fresh, use_observed):
    answers = [" and ".join(["The answer is 4", *phrases]) for phrases in texts]
    verdicts = [HedgingVerifier()(candidate(a)) for a in answers]
    scores = [v.score for v in verdicts if v.score is not None]
    assert len(scores) == len(verdicts)  # the hedging verifier scores every answer
    cut = cut_from(scores, pick, fresh, use_observed)
    check_rule(
        lambda t, a: HedgingVerifier(threshold=t)(candidate(a)), HedgingVerifier().threshold_for, answers, cut
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.floats(-30, 0), min_size=1, max_size=5), min_size=1, max_size=6),
    st.sampled_from(["mean", "min"]),
    st.integers(0, 100),
    st.floats(1e-9, 1.0),
    st.booleans(),
)
def test_logprob_threshold_for_passes_iff_score_reaches_the_cut(lists, statistic, pick, fresh, use_observed):
    def verdict(threshold: float, values: list[float]) -> Any:
        completion = Completion(text="a", model="m", usage=Usage(1, 1), logprobs=tuple(values))
        answer = Candidate(request=Request.from_prompt("q"), completion=completion, tier="small")
        return LogprobVerifier(threshold, statistic=statistic)(answer)

    scores = [verdict(-1.0, values).score for values in lists]
    cut = cut_from(scores, pick, fresh, use_observed)
    check_rule(verdict, LogprobVerifier(-1.0).threshold_for, lists, cut)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=6),
    st.integers(1, 100),
    st.integers(0, 100),
    st.floats(0, 1),
    st.booleans(),
)
def test_confidence_and_judge_threshold_for_pass_iff_score_reaches_the_cut(
    values, scale, pick, fresh, use_observed
):
    def confidence(threshold: float, value: float) -> Any:
        verifier = SelfConfidenceVerifier(threshold=threshold, scale=scale)
        return asyncio.run(verifier(candidate(confidence=value)))

    def judge(threshold: float, value: float) -> Any:
        verifier = copy.copy(JUDGE)  # building the judge's client each time is slow
        verifier.threshold, verifier.scale = threshold, scale
        return asyncio.run(verifier(candidate(judge_score=value * scale)))

    for verdict_of, threshold_for in (
        (confidence, SelfConfidenceVerifier().threshold_for),
        (judge, JUDGE.threshold_for),
    ):
        scores = [verdict_of(0.5, v).score for v in values]
        check_rule(verdict_of, threshold_for, values, cut_from(scores, pick, fresh, use_observed))


# -- the binomial bound ----------------------------------------------------------------------


def test_clopper_pearson_lower_bound_matches_known_values():
    assert binomial_lower_bound(10, 10, 0.9) == pytest.approx(0.7943, abs=1e-4)
    assert binomial_lower_bound(5, 10, 0.975) == pytest.approx(0.1871, abs=1e-4)  # the 95 % interval's
    assert binomial_lower_bound(0, 50, 0.9) == 0.0
    bounds = [binomial_lower_bound(k, 400, 0.9) for k in range(0, 401, 40)]
    assert bounds == sorted(bounds) and all(
        b < k / 400 for b, k in zip(bounds[1:], range(40, 401, 40), strict=True)
    )


# -- a small data set whose answer is known exactly ------------------------------------------


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def hand_made(strong_always_right: bool = True) -> list[dict[str, Any]]:
    """Ten requests: the small model rates request i at i/10 and is right from 0.5 up; the
    large one is right on all (or all but q3); small costs $0.001, large $0.01."""
    records = []
    for i in range(1, 11):
        records.append(
            {
                "id": f"q{i}",
                "prompt": f"question {i}",
                "responses": {
                    "small": {
                        "text": f"answer {i}",
                        "correct": i >= 5,
                        "confidence": i / 10,
                        "cost_usd": 0.001,
                    },
                    "large": {
                        "text": f"better answer {i}",
                        "correct": strong_always_right or i != 3,  # both wrong on q3
                        "cost_usd": 0.01,
                    },
                },
            }
        )
    return records


PRICE = {"input_per_mtok": 1, "output_per_mtok": 1}


def hand_made_config(tmp_path: Path, data: Path | None = None, verifiers: list[Any] | None = None) -> Path:
    tiers = [
        {"name": "small", "provider": "replay", "model": "small", "price": PRICE},
        {"name": "large", "provider": "replay", "model": "large", "price": PRICE},
    ]
    if data is not None:  # so that `cascade validate` can build the tiers
        for tier in tiers:
            tier["records"] = str(data)
    if verifiers is None:
        verifiers = [{"type": "non_empty"}, {"type": "self_confidence", "tiers": ["small"], "threshold": 0.9}]
    path = tmp_path / "cascade.yaml"
    path.write_text(yaml.safe_dump({"tiers": tiers, "verifiers": verifiers}, sort_keys=False))
    return path


def calibrate_cli(capsys: Any, *args: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["calibrate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("target", "threshold", "cost"), [("1.0", 0.5, 0.05), ("0.8", 0.3, 0.03)])
def test_calibrate_finds_the_known_cheapest_thresholds(tmp_path, capsys, target, threshold, cost):
    data = write_jsonl(tmp_path / "train.jsonl", hand_made())
    out = tmp_path / "calibrated.yaml"
    code, stdout, _ = calibrate_cli(
        capsys,
        hand_made_config(tmp_path),
        "--data",
        data,
        "--out",
        out,
        "--target-accuracy",
        target,
        "--json",
    )
    assert code == 0
    report = json.loads(stdout)
    assert report["chosen"]["thresholds"] == {"small/self_confidence": threshold}
    assert report["chosen"]["train"] == {
        "accuracy": float(target),
        "loss_against_top": pytest.approx(1 - float(target)),
        "cost_usd": pytest.approx(cost),
    }
    assert report["chosen"]["ladder"] == ["small", "large"] and report["chosen"]["skipped"] == []
    assert report["confirmed"]["agrees"] is True
    assert report["confirmed"]["cascade"]["cost_usd"] == pytest.approx(cost)
    written = yaml.safe_load(out.read_text())
    assert written["verifiers"][1]["overrides"] == {"small": {"threshold": threshold}}
    assert written["verifiers"][1]["threshold"] == 0.9  # the entry's own setting is kept
    assert out.read_text().startswith("# Calibrated by `cascade calibrate`")


def test_written_config_loads_and_validates(tmp_path, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", hand_made())
    out = tmp_path / "elsewhere" / "calibrated.yaml"
    out.parent.mkdir()
    code, _, _ = calibrate_cli(
        capsys, hand_made_config(tmp_path, data), "--data", data, "--out", out, "--match-top"
    )
    assert code == 0
    config = load_config(out)
    assert config.verifiers[1].overrides == {"small": {"threshold": 0.5}}
    assert main(["validate", str(out)]) == 0
    assert "valid" in capsys.readouterr().out


def test_relative_file_settings_still_resolve_from_the_new_folder(tmp_path):
    raw: dict[str, Any] = {
        "tiers": [{"name": "a"}, {"name": "b"}],
        "verifiers": [
            {"type": "json_schema", "schema_file": "schemas/answer.json"},
            {
                "type": "learned",
                "model_file": "/abs/model.json",
                "overrides": {"a": {"model_file": "m.json"}},
            },
            {"type": "all", "verifiers": [{"type": "json_schema", "schema_file": "s.json"}]},
            {"type": "self_confidence"},
        ],
    }
    text = calibrated_yaml(raw, tmp_path / "configs", tmp_path / "out", {(3, "a"): 0.6}, "header\n\nmore")
    assert text.startswith("# header\n#\n# more\n")
    written = yaml.safe_load(text)
    assert written["verifiers"][0]["schema_file"] == "../configs/schemas/answer.json"
    assert written["verifiers"][1]["model_file"] == "/abs/model.json"
    assert written["verifiers"][1]["overrides"]["a"]["model_file"] == "../configs/m.json"
    assert written["verifiers"][2]["verifiers"][0]["schema_file"] == "../configs/s.json"
    assert written["verifiers"][3]["overrides"] == {"a": {"threshold": 0.6}}
    assert raw["verifiers"][0]["schema_file"] == "schemas/answer.json"  # the original is untouched


def test_an_unreachable_target_exits_3_and_writes_nothing(tmp_path, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", hand_made(strong_always_right=False))
    out = tmp_path / "calibrated.yaml"
    code, _, err = calibrate_cli(
        capsys, hand_made_config(tmp_path), "--data", data, "--out", out, "--target-accuracy", "1.0"
    )
    assert code == 3
    assert not out.exists()
    assert "target not met: accuracy >= 100.0%" in err
    assert "the best accuracy found is 90.0%" in " ".join(err.split())


def test_a_missed_relative_target_names_the_asked_accuracy_and_the_top_tiers_apart(tmp_path, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", hand_made(strong_always_right=False))
    out = tmp_path / "calibrated.yaml"
    code, _, err = calibrate_cli(
        capsys, hand_made_config(tmp_path), "--data", data, "--out", out, "--of-top", "1.2"
    )
    said = " ".join(err.split())
    assert code == 3, err
    assert "accuracy >= 120.0% of the top tier alone's, an accuracy of" in said
    assert "(where the top tier alone scores 90.0%)" in said


def test_a_config_without_calibratable_verifier_is_a_clear_error(tmp_path, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", hand_made())
    config = hand_made_config(
        tmp_path, verifiers=[{"type": "non_empty"}, {"type": "length", "max_chars": 99}]
    )
    out = tmp_path / "calibrated.yaml"
    code, _, err = calibrate_cli(capsys, config, "--data", data, "--out", out, "--match-top")
    assert code == 2
    assert "no calibratable verifier on the tiers below the top (small)" in " ".join(err.split())
    assert "small/non_empty, small/length" in " ".join(err.split())
    assert not out.exists()


def test_plots_are_written_for_eval_and_calibrate(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    data = write_jsonl(tmp_path / "train.jsonl", hand_made())
    config = hand_made_config(tmp_path)
    code, _, _ = calibrate_cli(
        capsys,
        config,
        "--data",
        data,
        "--out",
        tmp_path / "c.yaml",
        "--match-top",
        "--plot",
        tmp_path / "c.png",
    )
    assert code == 0
    assert main(["eval", str(config), "--data", str(data), "--plot", str(tmp_path / "e.png")]) == 0
    for name in ("c.png", "e.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=re.escape("pip install 'verified-cascade[plot]'")):
        plot_cost_accuracy(None, tmp_path / "e.png")  # type: ignore[arg-type]  # fails before using it
    data = write_jsonl(tmp_path / "train.jsonl", hand_made())
    out = tmp_path / "c.yaml"
    code, _, err = calibrate_cli(
        capsys,
        hand_made_config(tmp_path),
        "--data",
        data,
        "--out",
        out,
        "--match-top",
        "--plot",
        tmp_path / "c.png",
    )
    assert code == 2
    assert "pip install 'verified-cascade[plot]'" in " ".join(err.split())
    assert not out.exists()


# -- GSM8K (RouteLLM's recorded answers) with a recorded self-confidence that has signal -----


@pytest.fixture(scope="module")
def gsm8k(tmp_path_factory: Any) -> dict[str, Path]:
    """Two halves of GSM8K (seeded shuffle); Mixtral's answers carry a `confidence` and a
    `mean_logprob` that are noisy functions of their correctness (seeded)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import routellm
    finally:
        sys.path.remove(str(BENCHMARKS))
    if not routellm.DATA.is_dir():
        pytest.skip(f"{routellm.DATA} is absent")
    records = list(routellm.gsm8k())
    noise = random.Random(7)
    for record in records:
        cheap = record["responses"][routellm.CHEAP]
        right = cheap["correct"]
        cheap["confidence"] = round(min(1.0, max(0.0, noise.gauss(0.8 if right else 0.45, 0.15))), 3)
        cheap["mean_logprob"] = round(min(0.0, noise.gauss(-0.3 if right else -0.8, 0.3)), 3)
    random.Random(1).shuffle(records)
    half = len(records) // 2
    folder = tmp_path_factory.mktemp("gsm8k")
    return {
        "train": write_jsonl(folder / "train.jsonl", records[:half]),
        "test": write_jsonl(folder / "test.jsonl", records[half:]),
        "folder": folder,
    }


def gsm8k_config(
    folder: Path, name: str = "cascade.yaml", hedging: bool = True, logprob: bool = False, **extra: Any
) -> Path:
    verifiers: list[dict[str, Any]] = [{"type": "non_empty"}]
    if hedging:
        verifiers.append({"type": "hedging"})
    verifiers.append({"type": "self_confidence", "tiers": ["cheap"], "threshold": 0.7})
    if logprob:
        verifiers.append({"type": "logprob", "tiers": ["cheap"], "threshold": -1.0})
    config = {
        "tiers": [
            {"name": "cheap", "provider": "replay", "model": "mixtral-8x7b"},
            {"name": "strong", "provider": "replay", "model": "gpt-4-1106-preview"},
        ],
        "verifiers": verifiers,
        **extra,
    }
    path = folder / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_match_top_on_one_half_holds_on_the_other_for_much_less(gsm8k, capsys):
    out = gsm8k["folder"] / "match-top.yaml"
    code, stdout, _ = calibrate_cli(
        capsys,
        gsm8k_config(gsm8k["folder"]),
        "--data",
        gsm8k["train"],
        "--out",
        out,
        "--match-top",
        "--test",
        gsm8k["test"],
        "--json",
    )
    assert code == 0
    report = json.loads(stdout)
    assert report["search"]["method"] == "exhaustive"
    assert report["confirmed"]["agrees"] is True
    train, test = report["confirmed"], report["test"]
    assert train["cascade"]["accuracy"] >= train["top_alone"]["accuracy"]
    assert test["cascade"]["accuracy"] >= test["top_alone"]["accuracy"] - 0.012
    assert test["cascade"]["cost_usd"] < 0.6 * test["top_alone"]["cost_usd"]


@pytest.fixture(scope="module")
def gsm8k_budgeted(gsm8k: dict[str, Path]) -> tuple[Path, Any, Any]:
    """A config with two signals, reasks and a per-request budget, observed on the train half."""
    config_path = gsm8k_config(gsm8k["folder"], "budgeted.yaml", logprob=True, reask=1, max_cost_usd="0.0003")
    recorded = load_recorded(gsm8k["train"])
    config = with_records(load_config(config_path), gsm8k["train"])
    observations = asyncio.run(observe(config, recorded, base_dir=config_path.parent))
    return config_path, recorded, observations


@pytest.fixture(scope="module")
def budgeted_found(gsm8k_budgeted: tuple[Path, Any, Any]) -> Any:
    return calibrate(gsm8k_budgeted[2], Target("of_top", 0.95))


def test_simulation_and_engine_agree_exactly_on_gsm8k(gsm8k, gsm8k_budgeted, budgeted_found, tmp_path):
    config_path, recorded, observations = gsm8k_budgeted
    found = budgeted_found
    assert found.chosen is not None
    raw = yaml.safe_load(config_path.read_text())
    middle = found.frontier[len(found.frontier) // 2]
    for point in {found.chosen, middle, found.frontier[0]}:
        thresholds = found.thresholds(point.setting)
        slots = observations.slots
        text = calibrated_yaml(
            raw,
            config_path.parent,
            tmp_path,
            {(s.entry, s.tier): t for s, t in zip(slots, thresholds, strict=True)},
            "",
            skipped(found, point),
        )
        written = tmp_path / "setting.yaml"
        written.write_text(text)
        report = asyncio.run(evaluate(with_records(load_config(written), gsm8k["train"]), recorded))
        correct, cost = found.on_train(point)
        assert report.cascade.accuracy == correct / len(recorded)
        assert report.cascade.cost_usd == cost
    assert {p.ladder for p in found.frontier} == {(0, 1), (1,)}  # the top tier alone is on it too
    chosen = found.chosen
    unlimited = calibration.Simulator(dataclasses.replace(observations, budget=None))
    assert unlimited.run_exact(chosen.setting, found.train, chosen.ladder) != found.on_train(chosen)


def test_coordinate_descent_reaches_the_exhaustive_optimum(gsm8k_budgeted, budgeted_found, monkeypatch):
    _, _, observations = gsm8k_budgeted
    exhaustive = budgeted_found
    monkeypatch.setattr(cutoff_search, "MAX_GRID", 1)
    descent = calibrate(observations, Target("of_top", 0.95))
    # the top tier alone has one setting: that ladder is still searched exhaustively
    assert (exhaustive.method, descent.method) == ("exhaustive", "coordinate descent and exhaustive")
    assert len(descent.explored) < len(exhaustive.explored) / 4
    assert descent.chosen is not None and exhaustive.chosen is not None
    top_correct, _ = descent.simulator.alone(descent.top, descent.fit)
    assert descent.chosen.correct >= 0.95 * top_correct
    assert descent.chosen.cost <= 1.05 * exhaustive.chosen.cost


def test_confidence_certifies_the_paired_loss_on_the_certify_share(gsm8k, capsys):
    config = gsm8k_config(gsm8k["folder"], "confidence.yaml", hedging=False)
    runs = {}
    for name, extra in (("plain", []), ("bounded", ["--confidence", "0.9"])):
        out = gsm8k["folder"] / f"{name}.yaml"
        code, stdout, _ = calibrate_cli(
            capsys, config, "--data", gsm8k["train"], "--out", out, "--max-loss", "0.01", "--json", *extra
        )
        assert code == 0
        runs[name] = json.loads(stdout)
    bounded, plain = runs["bounded"], runs["plain"]
    assert plain["confidence"] is None
    confidence = bounded["confidence"]
    n = bounded["requests"]
    assert confidence["learn_requests"] == round(0.3 * n)
    assert confidence["learn_requests"] + confidence["certify_requests"] == n
    steps = confidence["tested"]
    assert steps, "the learn frontier holds settings cheaper than the top tier"
    certified = [s for s in steps if s["certify"]["certified"]]
    assert all(s["certify"]["p_value"] <= 0.1 for s in certified)
    assert steps[: len(certified)] == certified  # fixed sequence: it stops at the first failure
    if certified:
        assert bounded["chosen"]["ladder"] == certified[-1]["ladder"] or bounded["chosen"] in certified
    else:
        assert bounded["chosen"]["ladder"] == ["strong"] and confidence["fell_back_to_top"]
    # the point estimate is at least as cheap on the data: the guarantee is paid for in cost
    assert plain["chosen"]["train"]["cost_usd"] <= bounded["chosen"]["train"]["cost_usd"] + 1e-12
    header = (gsm8k["folder"] / "bounded.yaml").read_text().splitlines()[1]
    assert "with 90% confidence on unseen requests" in header
    code, _, stderr = calibrate_cli(
        capsys,
        config,
        "--data",
        gsm8k["train"],
        "--out",
        gsm8k["folder"] / "b.yaml",
        "--of-top",
        "0.95",
        "--confidence",
        "0.9",
    )
    assert code == 2 and "--max-loss" in stderr


def test_a_replay_config_with_recorded_costs_and_no_prices_calibrates(tmp_path, capsys):
    """Recorded costs stand for prices: a replay ladder of models no price list knows needs
    no `price:` when every answer carries its `cost_usd`."""
    data = write_jsonl(tmp_path / "train.jsonl", hand_made())
    config = hand_made_config(tmp_path)
    raw = yaml.safe_load(config.read_text())
    for tier in raw["tiers"]:
        del tier["price"]
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "calibrated.yaml"
    code, stdout, _ = calibrate_cli(
        capsys, config, "--data", data, "--out", out, "--target-accuracy", "1.0", "--json"
    )
    assert code == 0
    report = json.loads(stdout)
    assert report["chosen"]["thresholds"] == {"small/self_confidence": 0.5}
    assert report["chosen"]["train"]["cost_usd"] == pytest.approx(0.05)
    assert report["confirmed"]["agrees"] is True

    records = hand_made()
    del records[3]["responses"]["small"]["cost_usd"]  # one answer without its cost
    missing = write_jsonl(tmp_path / "missing.jsonl", records)
    code, _, stderr = calibrate_cli(
        capsys, config, "--data", missing, "--out", tmp_path / "x.yaml", "--target-accuracy", "1.0"
    )
    assert code == 2
    assert (
        "no known price for model 'small'" in stderr
        and "record `cost_usd` with every answer of small" in stderr
    )


def small_answer(i: int, right: bool, confidence: float) -> dict[str, Any]:
    return {"text": f"a{i}", "correct": right, "confidence": confidence, "cost_usd": 0.001}


def three_tiers(tmp_path: Path) -> tuple[Path, Path]:
    """Forty requests: `small` rates its answers well (right iff it says 0.5 or more), `mid`
    costs five times more and is right only where `small` is, `large` is always right."""
    records = []
    for i in range(40):
        small_right = i % 2 == 0
        records.append(
            {
                "id": f"q{i}",
                "prompt": f"question {i}",
                "responses": {
                    "small": small_answer(i, small_right, 0.8 if small_right else 0.2),
                    "mid": {"text": f"b{i}", "correct": small_right, "confidence": 0.9, "cost_usd": 0.005},
                    "large": {"text": f"c{i}", "correct": True, "cost_usd": 0.01},
                },
            }
        )
    data = write_jsonl(tmp_path / "three.jsonl", records)
    config = {
        "tiers": [{"name": n, "provider": "replay", "model": n} for n in ("small", "mid", "large")],
        "verifiers": [
            {"type": "non_empty", "overrides": {"mid": {}}},
            {"type": "self_confidence", "tiers": ["small", "mid"], "threshold": 0.7},
            {"type": "hedging", "tiers": ["mid"]},
        ],
    }
    path = tmp_path / "three.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path, data


def test_a_skipped_tier_is_dropped_from_the_written_config(tmp_path, capsys):
    config, data = three_tiers(tmp_path)
    out = tmp_path / "tuned.yaml"
    code, stdout, _ = calibrate_cli(capsys, config, "--data", data, "--out", out, "--match-top", "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["chosen"]["ladder"] == ["small", "large"] and report["chosen"]["skipped"] == ["mid"]
    assert report["chosen"]["train"]["accuracy"] == 1.0
    assert report["chosen"]["train"]["cost_usd"] == pytest.approx(40 * 0.001 + 20 * 0.01)
    assert report["confirmed"]["agrees"] is True  # the engine, on the written config
    written = yaml.safe_load(out.read_text())
    assert [t["name"] for t in written["tiers"]] == ["small", "large"]
    assert [v["type"] for v in written["verifiers"]] == ["non_empty", "self_confidence"]
    assert written["verifiers"][0]["overrides"] == {}
    assert written["verifiers"][1]["tiers"] == ["small"]
    assert "tiers dropped from three.yaml: mid" in out.read_text()
    load_config(out)  # a valid config


def test_match_top_writes_the_top_tier_alone_when_nothing_cheaper_matches_it(tmp_path, capsys):
    config, data = three_tiers(tmp_path)
    records = [json.loads(line) for line in data.read_text().splitlines()]
    for r in records:  # the signal now says nothing
        r["responses"]["small"]["confidence"] = 0.8
    write_jsonl(data, records)
    out = tmp_path / "tuned.yaml"
    code, stdout, _ = calibrate_cli(capsys, config, "--data", data, "--out", out, "--match-top", "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["chosen"]["ladder"] == ["large"] and report["chosen"]["thresholds"] == {}
    assert [t["name"] for t in yaml.safe_load(out.read_text())["tiers"]] == ["large"]
    assert report["confirmed"]["agrees"] is True


def held_out(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Other requests like `records`, on which small is confidently wrong on a quarter."""
    fresh = copy.deepcopy(records)
    for i, r in enumerate(fresh):
        r["id"], r["prompt"] = f"h{i}", f"held-out {r['prompt']}"
        if i < 10:
            r["responses"]["small"].update(correct=False, confidence=0.8)
    return fresh


def test_a_held_out_file_that_shares_requests_with_the_training_data_is_refused(tmp_path, capsys):
    config, data = three_tiers(tmp_path)
    args = ("--data", data, "--out", tmp_path / "o.yaml", "--match-top", "--test", data)
    code, _, stderr = calibrate_cli(capsys, config, *args)
    assert code == 2 and "40 of its 40 requests are also in" in " ".join(stderr.split())
    assert not (tmp_path / "o.yaml").exists()


def test_unseen_figures_come_with_intervals_and_say_when_the_loss_is_exceeded(tmp_path, capsys):
    config, data = three_tiers(tmp_path)
    records = [json.loads(line) for line in data.read_text().splitlines()]
    test = write_jsonl(tmp_path / "test.jsonl", held_out(records))
    out = tmp_path / "tuned.yaml"
    code, stdout, _ = calibrate_cli(
        capsys, config, "--data", data, "--out", out, "--max-loss", "0.01", "--test", test
    )
    assert code == 0
    text = " ".join(stdout.split())
    assert "unseen" in text and "(95% intervals)" in text
    assert "the loss on unseen data, 25.0%, exceeds the 1.0% allowed" in text
    code, stdout, _ = calibrate_cli(
        capsys, config, "--data", data, "--out", out, "--max-loss", "0.01", "--test", test, "--json"
    )
    unseen = json.loads(stdout)["test"]["unseen"]
    assert unseen["loss_against_top"] == pytest.approx(0.25) and unseen["within_max_loss"] is False
    low, high = unseen["loss_interval"]
    assert low < 0.25 < high


def test_the_error_cost_plot_has_a_train_and_an_unseen_curve_from_their_own_data(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    config, data = three_tiers(tmp_path)
    records = [json.loads(line) for line in data.read_text().splitlines()]
    test = write_jsonl(tmp_path / "test.jsonl", held_out(records))
    plot = tmp_path / "curve.png"
    out = tmp_path / "tuned.yaml"
    args = ("--data", data, "--out", out, "--max-loss", "0.01", "--test", test, "--plot", plot)
    code, _, _ = calibrate_cli(capsys, config, *args)
    assert code == 0 and plot.read_bytes().startswith(PNG)

    def observed(path: Path) -> Any:
        return asyncio.run(observe(with_records(load_config(config), path), load_recorded(path)))

    found = calibrate(observed(data), Target("max_loss", 0.01))
    curves, chosen, label, line = error_curves(found, observed(test))
    assert set(curves) == set(chosen) == {"train", "unseen"} and line == 0.01
    assert label == "accuracy lost against the top tier alone"
    assert chosen["train"] == pytest.approx((0.24 / 0.4, 0.0))  # small for all, large for half
    assert chosen["unseen"] == pytest.approx((0.19 / 0.4, 0.25))  # the same setting, on the other file


def complementary(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`small` rates itself well and is right on half; `large` is wrong on a fifth of those."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        small_right = i % 2 == 0
        confidence = round(rng.uniform(0.6, 0.95) if small_right else rng.uniform(0.05, 0.4), 4)
        records.append(
            {
                "id": f"q{i}",
                "prompt": f"question {i}",
                "responses": {
                    "small": small_answer(i, small_right, confidence),
                    "large": {
                        "text": f"b{i}",
                        "correct": not (small_right and i % 10 == 0),
                        "cost_usd": 0.01,
                    },
                },
            }
        )
    return records


def test_a_certified_setting_is_written_with_its_exact_cut_offs(tmp_path, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", complementary(80))
    out = tmp_path / "o.yaml"
    args = ("--data", data, "--out", out, "--max-loss", "0.01", "--confidence", "0.9", "--json")
    code, stdout, _ = calibrate_cli(capsys, hand_made_config(tmp_path), *args)
    assert code == 0
    report = json.loads(stdout)
    assert report["confidence"]["certified"] >= 1 and not report["confidence"]["fell_back_to_top"]
    assert report["chosen"]["ladder"] == ["small", "large"]
    cut = report["chosen"]["cutoffs"]["small/self_confidence"]
    assert report["chosen"]["thresholds"]["small/self_confidence"] == cut  # not a decimal in the gap below
    assert yaml.safe_load(out.read_text())["verifiers"][1]["overrides"] == {"small": {"threshold": cut}}
    assert report["confirmed"]["agrees"] is True


def test_an_accuracy_target_is_certified_below_the_top_tier_when_the_top_tier_alone_is_not(tmp_path, capsys):
    data = write_jsonl(tmp_path / "train.jsonl", complementary(80))  # large alone: 90 % right
    args = ("--data", data, "--out", tmp_path / "o.yaml", "--target-accuracy", "0.9", "--confidence", "0.9")
    code, stdout, _ = calibrate_cli(capsys, hand_made_config(tmp_path), *args, "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["chosen"]["ladder"] == ["small", "large"]
    tested = {tuple(s["ladder"]): s["certify"] for s in report["confidence"]["tested"]}
    assert tested[("small", "large")]["certified"] and tested[("small", "large")]["p_value"] <= 0.1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--learn-share", "0.99"), "leave 25 to learn the order and 0 to certify it"),
        (("--learn-share", "0.1"), "leave 2 to learn the order and 23 to certify it"),
        (("--confidence", "0.3"), "--confidence is a level from 0.5"),
    ],
)
def test_a_split_or_level_that_cannot_certify_is_refused_before_the_replay(tmp_path, capsys, extra, message):
    data = write_jsonl(tmp_path / "train.jsonl", complementary(25))
    args = ("--data", data, "--out", tmp_path / "o.yaml", "--max-loss", "0.01", "--confidence", "0.9", *extra)
    code, _, stderr = calibrate_cli(capsys, hand_made_config(tmp_path), *args)
    assert code == 2 and message in " ".join(stderr.split())
    assert not (tmp_path / "o.yaml").exists()


def test_keep_all_tiers_with_nothing_certified_writes_nothing(tmp_path, capsys):
    config, data = three_tiers(tmp_path)
    args = ("--data", data, "--out", tmp_path / "o.yaml", "--max-loss", "0.01", "--confidence", "0.9")
    code, _, stderr = calibrate_cli(capsys, config, *args, "--keep-all-tiers")
    assert code == 3 and not (tmp_path / "o.yaml").exists()
    assert "could not be certified" in " ".join(stderr.split())


def test_a_plot_of_held_out_data_that_the_verifier_never_scores_still_draws(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    config, data = three_tiers(tmp_path)
    records = held_out([json.loads(line) for line in data.read_text().splitlines()])
    for r in records:
        del r["responses"]["small"]["confidence"]  # no recorded confidence: self_confidence would ask
        r["responses"]["small"]["text"] = "a"
    test = write_jsonl(tmp_path / "test.jsonl", records)
    missing = tmp_path / "nowhere" / "p.png"
    base = ("--data", data, "--out", tmp_path / "o.yaml", "--match-top", "--test", test)
    code, _, stderr = calibrate_cli(capsys, config, *base, "--plot", missing)
    assert code == 2 and "there is no folder" in stderr and not (tmp_path / "o.yaml").exists()
    code, _, _ = calibrate_cli(capsys, config, *base, "--plot", tmp_path / "p.png")
    assert code == 0 and (tmp_path / "p.png").read_bytes().startswith(PNG)
