"""The learned router: its features, the model file, routing, training, `cascade train-router`."""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cascade import roc_auc
from cascade.cli import main
from cascade.cli import train_router as command
from cascade.core.requests import Message, Request
from cascade.core.routes import Route
from cascade.protocols import Router
from cascade.routing import training
from cascade.routing.learned import LearnedRouter
from cascade.routing.learned_features import features, numeric_features
from cascade.routing.learned_model import FORMAT, RouterModel, load
from cascade.routing.training import RoutingExample, train_router

TIERS = ("small", "medium", "large")
MODELS = ("small-model", "medium-model", "large-model")
COSTS = (0.0001, 0.001, 0.01)
FILLER = ["apple", "river", "stone", "cloud", "seven", "metal", "garden", "window", "orange", "paper"]
EASY = ["add", "count", "name"]  # every tier answers these right
MEDIUM = ["equation", "derivative", "ratio"]  # the medium tier and the top
HARD = ["theorem", "integral", "proof"]  # only the top tier
WORDS = {"easy": EASY, "medium": MEDIUM, "hard": HARD}
HEDGED = "perhaps"  # an easy prompt with it: the small tier is right but hedges, so is not accepted


def synthetic(n: int, seed: int) -> list[dict[str, Any]]:
    """Records of easy, medium and hard prompts (one word of their kind amid filler words): a tier
    answers right exactly the prompts its skill covers; the small tier hedges on HEDGED ones."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        kind = rng.choice(["easy", "medium", "hard"])
        words = rng.choices(FILLER, k=rng.randint(3, 8))
        words.insert(rng.randrange(len(words) + 1), rng.choice(WORDS[kind]))
        hedged = kind == "easy" and rng.random() < 0.15
        if hedged:
            words.insert(rng.randrange(len(words) + 1), HEDGED)
        right = (kind == "easy", kind != "hard", True)
        responses = {}
        for tier, (model, cost, ok) in enumerate(zip(MODELS, COSTS, right, strict=True)):
            text = f"The answer is {i}." if ok else f"The answer is {i + 1}."
            if hedged and tier == 0:
                text = f"I'm not sure, but the answer is {i}."
            responses[model] = {"text": text, "correct": ok, "cost_usd": cost}
        records.append(
            {"id": f"s{seed}-{i}", "prompt": "Question: " + " ".join(words), "responses": responses}
        )
    return records


def kind_of(record: dict[str, Any]) -> str:
    words = set(record["prompt"].split())
    if words & set(HARD):
        return "hard"
    if words & set(MEDIUM):
        return "medium"
    return "hedged" if HEDGED in words else "easy"


def write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def replay_config(
    path: Path, tiers: tuple[str, ...] = TIERS, verifiers: str = "[non_empty, hedging]"
) -> Path:
    lines = ["tiers:"]
    for k, (name, model) in enumerate(zip(tiers, MODELS, strict=False)):
        price = f"{{input_per_mtok: {10**k}, output_per_mtok: {2 * 10**k}}}"
        lines.append(f"  - {{name: {name}, provider: replay, model: {model}, price: {price}}}")
    kinds = verifiers.strip("[]").split(", ")
    lines.append("verifiers:")
    lines += [f"  - {{type: {kind}}}" for kind in kinds]
    path.write_text("\n".join(lines) + "\n")
    return path


def labelled(records: list[dict[str, Any]]) -> list[RoutingExample]:
    """The examples `train-router` would make: the tier's answer right and not hedged."""
    examples = []
    for r in records:
        kind = kind_of(r)
        labels = (kind == "easy", kind in ("easy", "hedged", "medium"))
        examples.append(RoutingExample(r["id"], Request.from_prompt(r["prompt"]), labels))
    return examples


def request_of(record: dict[str, Any]) -> Request:
    return Request.from_prompt(record["prompt"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[dict[str, Any]]]:
    """`cascade train-router` run on 300 synthetic records: the folder, the model file, the records."""
    folder = tmp_path_factory.mktemp("router")
    records = synthetic(300, seed=1)
    rows: list[Any] = list(records)
    rows.insert(7, "{broken")
    write(folder / "train.jsonl", rows)
    replay_config(folder / "ladder.yaml")
    return folder, folder / "router.json", records


@pytest.fixture(scope="module")
def cli_run(trained: tuple[Path, Path, list[dict[str, Any]]]) -> tuple[int, str, str]:
    folder, out, _ = trained
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        config, data = str(folder / "ladder.yaml"), str(folder / "train.jsonl")
        code = main(
            ["train-router", config, "--data", data, "--out", str(out), "--epochs", "10", "--seed", "3"]
        )
    return code, stdout.getvalue(), stderr.getvalue()


# -- the command -------------------------------------------------------------------------------


def test_train_router_cli_writes_a_model_with_its_figures(cli_run, trained):
    code, out, err = cli_run
    _, path, records = trained
    assert code == 0, err
    assert re.search(r"line 8\b.*not valid JSON", " ".join(err.split()))
    assert "AUC" in out and "majority baseline" in out and f"wrote {path}" in " ".join(out.split())
    kinds = Counter(kind_of(r) for r in records)
    # the labels came from the replay: the small tier's hedged answers failed the hedging check
    assert re.search(rf"small\s+│\s+300\s+│\s+{kinds['easy']}\s+│", out)
    assert re.search(rf"medium\s+│\s+300\s+│\s+{kinds['easy'] + kinds['hedged'] + kinds['medium']}\s+│", out)
    saved = json.loads(path.read_text())
    assert saved["format"] == "cascade.learned-router" and saved["version"] == 1
    assert [t["name"] for t in saved["tiers"]] == list(TIERS)
    assert [t["model"] for t in saved["tiers"]] == list(MODELS)
    assert [t.get("cut") for t in saved["tiers"]] == [0.5, 0.5, None]
    assert "weights" not in saved["tiers"][-1]
    meta = saved["metadata"]
    assert meta["seed"] == 3 and meta["epochs"] == 10 and meta["heldout"]["records"] == 60
    assert meta["examples"]["small"] == {"requests": 300, "positives": kinds["easy"]}
    for tier in ("small", "medium"):
        held = meta["heldout"][tier]
        # seen: AUC 0.998 and 1.000, accuracy 95.0 % and 93.3 % against baselines of 76.7 % and 63.3 %
        assert held["n"] == 60 and held["auc"] > 0.95, held
        assert held["accuracy"] >= held["baseline"] + 0.15, held
    assert sum(meta["heldout"][t]["started"] for t in TIERS) == 60


def test_the_trained_router_starts_unseen_hard_prompts_high_and_easy_ones_low(trained, cli_run):
    _, path, _ = trained
    assert cli_run[0] == 0
    router = LearnedRouter(load(path, TIERS))
    fresh = synthetic(300, seed=2)  # prompts never seen in training
    starts: dict[str, Counter[str]] = {}
    for record in fresh:
        route = asyncio.run(router.route(request_of(record), {}))
        starts.setdefault(kind_of(record), Counter())[route.tier] += 1

    def share(kind: str, tier: str) -> float:
        return starts[kind][tier] / sum(starts[kind].values())

    scores = [router.scores(request_of(r)) for r in fresh]
    small_auc = roc_auc([s[0] for s in scores], [kind_of(r) == "easy" for r in fresh])
    medium_auc = roc_auc([s[1] for s in scores], [kind_of(r) != "hard" for r in fresh])
    assert small_auc is not None and medium_auc is not None
    assert small_auc > 0.95 and medium_auc > 0.95  # seen: 0.997 and 1.000
    # seen: hard 98 % to large, easy 90 % to small, medium 100 % to medium, hedged 4 % to small
    assert share("hard", "large") >= 0.9 and starts["hard"]["small"] == 0
    assert share("easy", "small") >= 0.8
    assert share("medium", "medium") >= 0.9
    assert share("hedged", "small") <= 0.2  # the cheap tier's hedges were not accepted


def test_train_router_takes_a_ladder_of_fixed_gates_only(tmp_path, trained, capsys):
    records = trained[2]
    config = replay_config(tmp_path / "gates.yaml", verifiers="[non_empty]")
    unlabelled = {**records[0], "id": "u"}
    unlabelled["responses"] = {**unlabelled["responses"], MODELS[0]: {"text": "no label"}}
    data = write(tmp_path / "d.jsonl", [*records[:80], unlabelled])
    out = tmp_path / "r.json"
    assert main(["train-router", str(config), "--data", str(data), "--out", str(out), "--holdout", "0"]) == 0
    captured = capsys.readouterr()
    assert "1 records lack a `correct` label" in " ".join(captured.err.split())
    meta = json.loads(out.read_text())["metadata"]
    # with no hedging check, the small tier's hedged answers count: right is accepted
    hedged = sum(kind_of(r) == "hedged" for r in records[:80])
    easy = sum(kind_of(r) == "easy" for r in records[:80])
    assert meta["examples"]["small"] == {"requests": 80, "positives": easy + hedged}
    assert meta["heldout"]["share"] == 0 and "AUC" in captured.out


def test_the_commands_defaults_are_the_trainings():
    assert command.EPOCHS_DEFAULT == training.DEFAULT_EPOCHS
    assert command.SEED_DEFAULT == training.DEFAULT_SEED
    assert command.HOLDOUT_DEFAULT == training.DEFAULT_HOLDOUT


def cli_error(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["train-router", *args])
    return code, " ".join(capsys.readouterr().err.split())


def test_train_router_refuses_bad_input_cleanly(tmp_path, trained, capsys):
    folder, _, records = trained
    config, data, out = str(folder / "ladder.yaml"), str(folder / "train.jsonl"), str(tmp_path / "r.json")
    code, err = cli_error(capsys, config, "--data", str(tmp_path / "missing.jsonl"), "--out", out)
    assert code == 2 and "missing.jsonl: cannot read recorded outcomes" in err
    code, err = cli_error(capsys, str(tmp_path / "missing.yaml"), "--data", data, "--out", out)
    assert code == 2 and "missing.yaml" in err and "Traceback" not in err
    code, err = cli_error(capsys, config, "--data", data, "--out", str(tmp_path / "no" / "r.json"))
    assert code == 2 and "there is no folder" in err
    one = replay_config(tmp_path / "one.yaml", tiers=TIERS[:1])
    code, err = cli_error(capsys, str(one), "--data", data, "--out", out)
    assert code == 2 and "one tier only" in err and "nothing to route" in err
    broken = write(tmp_path / "broken.jsonl", ["{broken", "[1, 2]"])
    code, err = cli_error(capsys, config, "--data", str(broken), "--out", out)
    assert code == 2 and "line 1" in err and "no usable record" in err
    bare = [
        {**r, "responses": {m: {"text": e["text"]} for m, e in r["responses"].items()}} for r in records[:5]
    ]
    code, err = cli_error(capsys, config, "--data", str(write(tmp_path / "bare.jsonl", bare)), "--out", out)
    assert code == 2 and "no answer carries a `correct` label" in err
    # labels on the top tier's answers only: nothing says which cheaper tier would have done
    top_only = [
        {**r, "responses": {**{m: {"text": "t"} for m in MODELS[:2]}, MODELS[2]: r["responses"][MODELS[2]]}}
        for r in records[:5]
    ]
    code, err = cli_error(
        capsys, config, "--data", str(write(tmp_path / "top.jsonl", top_only)), "--out", out
    )
    assert code == 2 and "no labelled records" in err
    assert not Path(out).exists()
    for flag, value in (("--holdout", "1.5"), ("--epochs", "0"), ("--holdout", "x")):
        with pytest.raises(SystemExit) as exited:
            main(["train-router", config, "--data", data, "--out", out, flag, value])
        assert exited.value.code == 2
    assert "--holdout" in capsys.readouterr().err


# -- training in Python --------------------------------------------------------------------------


def test_training_reports_counts_held_out_figures_and_starts():
    records = synthetic(300, seed=4)
    report = train_router(labelled(records), TIERS, MODELS, epochs=10, seed=1)
    kinds = Counter(kind_of(r) for r in records)
    small, medium, large = report.figures
    assert (small.examples, small.positives) == (300, kinds["easy"])
    assert medium.positives == kinds["easy"] + kinds["hedged"] + kinds["medium"]
    assert large.held_out is None and large.examples == 0
    assert report.held_records == 60 and small.started + medium.started + large.started == 60
    for figures in (small, medium):
        held = figures.held_out
        assert held is not None and held.n == 60
        assert held.auc is not None and held.auc > 0.95 and held.accuracy > held.baseline + 0.15
    assert small.started_right is not None and small.started_right >= 0.9 * small.started
    assert report.model.tiers == TIERS and report.model.cuts == (0.5, 0.5)


def test_training_is_reproducible_and_refuses_bad_input():
    examples = labelled(synthetic(60, seed=5))
    first, second = (
        train_router(examples, TIERS, MODELS, epochs=2, seed=9).model.to_dict() for _ in range(2)
    )
    assert first["tiers"] == second["tiers"]
    with pytest.raises(ValueError, match="two tiers or more"):
        train_router(examples, TIERS[:1], MODELS[:1])
    with pytest.raises(ValueError, match="one label per tier below the top"):
        train_router(examples, TIERS[:2], MODELS[:2])
    with pytest.raises(ValueError, match="no labelled requests"):
        train_router([], TIERS, MODELS)
    with pytest.raises(ValueError, match="holdout"):
        train_router(examples, TIERS, MODELS, holdout=1.0)


@pytest.fixture(scope="module")
def model() -> RouterModel:
    return train_router(labelled(synthetic(300, seed=6)), TIERS, MODELS, epochs=10, holdout=0).model


# -- the model file ------------------------------------------------------------------------------


def test_save_and_load_give_identical_scores(tmp_path, model):
    path = tmp_path / "r.json"
    model.save(path)
    loaded = load(path, TIERS, MODELS)
    assert loaded == model
    for record in synthetic(50, seed=7):
        assert loaded.scores(request_of(record)) == model.scores(request_of(record))
    saved = json.loads(path.read_text())
    assert saved["features"]["bits"] == 18 and saved["features"]["hash"] == "crc32"
    assert all(w != 0 for t in saved["tiers"][:-1] for w in t["weights"].values())  # sparse


def test_a_file_for_other_tiers_or_models_is_refused(tmp_path, model):
    path = tmp_path / "r.json"
    model.save(path)
    with pytest.raises(ValueError) as caught:
        load(path, ["cheap", "strong"])
    message = str(caught.value)
    assert (
        "r.json" in message and "['small', 'medium', 'large']" in message and "['cheap', 'strong']" in message
    )
    with pytest.raises(ValueError, match=r"trained for the models \['small-model'"):
        load(path, TIERS, ["a", "b", "c"])


def saved_with(model: RouterModel, change: Any) -> str:
    data = model.to_dict()
    change(data)
    return json.dumps(data)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read model_file"),
        ("{not json", "is not valid JSON"),
        ('{"format": "cascade.learned-verifier"}', "not a learned-router model"),
        (lambda d: d.update(version=2), "model format version 2 is not supported"),
        (lambda d: d["features"].update(bits=40), "features.bits must be an integer from 1 to 30"),
        (lambda d: d["features"].update(hash="md5"), "made with other feature settings (hash)"),
        (lambda d: d["tiers"][0]["weights"].update({"999999999": 0.5}), r"tiers['small'].weights: bad entry"),
        (lambda d: d["tiers"][1]["weights"].update({"12": "x"}), r"tiers['medium'].weights: bad entry '12'"),
        (lambda d: d["tiers"][0].update(bias=None), r"tiers['small'] needs a finite `bias`"),
        (
            lambda d: d["tiers"][0].update(cut=1.5),
            r"tiers['small'].cut: a cut-off must be a number from 0 to 1",
        ),
        (lambda d: d.update(tiers=d["tiers"][:1]), "`tiers` must list two tiers or more"),
        (lambda d: d["tiers"][2].pop("model"), "tiers[2] needs a `name` and a `model`"),
        (lambda d: d["tiers"][2].update(name="small"), "tier names repeat"),
    ],
)
def test_a_bad_file_is_refused_with_a_message_naming_it(tmp_path, model, content, message):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else saved_with(model, content))
    with pytest.raises(ValueError) as caught:
        load(path, TIERS)
    assert message in str(caught.value) and str(path) in str(caught.value)


# -- routing -------------------------------------------------------------------------------------


def test_the_router_follows_the_protocol_and_says_its_score(model):
    router = LearnedRouter(model)
    assert isinstance(router, Router)
    easy = Request.from_prompt("Question: apple add river stone")
    hard = Request.from_prompt("Question: apple theorem river stone")
    small = asyncio.run(router.route(easy, {}))
    assert small.tier == "small" and small.by == "learned" and small.score == router.scores(easy)[0] >= 0.5
    top = asyncio.run(router.route(hard, {"team": "a"}))
    assert top == Route("large", "learned", None)
    assert all(s < 0.5 for s in router.scores(hard))


def test_cut_offs_override_the_files_and_bad_ones_are_refused(model):
    hard = Request.from_prompt("Question: apple theorem river stone")
    assert LearnedRouter(model).cuts == (0.5, 0.5)
    plain = LearnedRouter(model, {"small": 0.0})  # a cut-off of 0 on the cheapest tier: the plain cascade
    assert plain.cuts == (0.0, 0.5) and asyncio.run(plain.route(hard, {})).tier == "small"
    medium = LearnedRouter(model, {"medium": 0.0, "small": 1.0})
    route = asyncio.run(medium.route(hard, {}))
    assert route.tier == "medium" and route.score == medium.scores(hard)[1]
    never = LearnedRouter(model, {"small": 1.0, "medium": 1.0})  # no probability reaches 1
    assert asyncio.run(never.route(Request.from_prompt("Question: apple"), {})).tier == "large"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"huge": 0.5}, r"'huge' is not a tier below the top \(those are \['small', 'medium'\]\)"),
        ({"large": 0.5}, "'large' is the top tier, which has no cut-off"),
        ({"small": 1.5}, r"cuts\['small'\]: a cut-off must be a number from 0 to 1, not 1.5"),
        ({"small": -0.1}, "not -0.1"),
        ({"small": math.nan}, "not nan"),
        ({"small": True}, "not True"),
        ({"small": "0.5"}, "not '0.5'"),
    ]
    for cuts, message in bad:
        with pytest.raises(ValueError, match=message):
            LearnedRouter(model, cuts)


def test_a_router_that_cannot_score_starts_at_the_top(model, monkeypatch):
    router = LearnedRouter(model)

    def broken(*args: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(LearnedRouter, "scores", broken)
    route = asyncio.run(router.route(Request.from_prompt("q"), {}))
    assert route == Route("large", "learned", None, fallback="learned router could not score: boom")


def test_numeric_features_see_length_code_and_messages():
    code = Request.from_prompt("Fix this:\n```python\nprint(1)\n```")
    definition = Request.from_prompt("why does\ndef f(x):\n    return x\nfail?")
    chat = Request((Message("user", "hi"), Message("assistant", "hello"), Message("user", "2 + 2?")))
    assert numeric_features(code)["code"] == numeric_features(definition)["code"] == 1.0
    assert (
        numeric_features(chat)["code"] == 0.0
        and numeric_features(Request.from_prompt("define x"))["code"] == 0.0
    )
    assert numeric_features(chat)["messages"] > numeric_features(code)["messages"] > 0
    assert (
        numeric_features(Request.from_prompt("x" * 1000))["log_chars"] > numeric_features(chat)["log_chars"]
    )
    assert 0 < numeric_features(chat)["digits_share"] < 1
    assert len(features(chat)) == 5


texts = st.text(st.characters(exclude_categories=()))  # surrogates and control characters too


@settings(max_examples=200, deadline=None)
@given(
    turns=st.lists(st.tuples(st.sampled_from(["user", "assistant"]), texts), min_size=1, max_size=4),
    system=st.none() | texts,
)
@example(turns=[("user", "\ud800 ``` def f(")], system="\udfff")
@example(turns=[("user", "word " * 10_000 + "theorem")], system=None)
def test_scores_never_raise_and_are_probabilities(model, turns, system):
    request = Request(tuple(Message(role, text) for role, text in turns), system=system)
    scores = LearnedRouter(model).scores(request)
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    route = asyncio.run(LearnedRouter(model).route(request, {}))
    assert route.tier in TIERS and route.fallback is None


def test_the_format_is_the_routers_own():
    assert FORMAT.name == "cascade.learned-router" and FORMAT.version == 1


# -- from YAML ---------------------------------------------------------------------------------


def test_a_config_with_the_trained_router_starts_each_request_where_it_learned(trained, cli_run):
    """train-router's file in `router: {learned: ...}` of the same ladder: unseen hard prompts
    start on the top tier (no cheap call paid), easy ones on the cheapest, and the file is
    refused by a ladder of other tiers or models."""
    from cascade import ConfigError
    from cascade.config import load_config
    from cascade.engine import Cascade
    from cascade.offline.records import with_records

    folder, out, _ = trained
    assert cli_run[0] == 0, cli_run
    unseen = synthetic(60, seed=9)
    data = write(folder / "unseen.jsonl", unseen)
    config = folder / "routed.yaml"
    config.write_text(
        (folder / "ladder.yaml").read_text() + f"router: {{learned: {{model_file: {out.name}}}}}\n"
    )
    with Cascade.from_config(with_records(load_config(config), data), base_dir=folder) as cascade:
        results = {r["id"]: cascade.run(request_of(r).replace(id=r["id"])) for r in unseen}
    by_kind: dict[str, Counter[str]] = {}
    for record in unseen:
        result = results[record["id"]]
        assert result.route is not None and result.route.by == "learned"
        by_kind.setdefault(kind_of(record), Counter())[result.route.tier] += 1
        assert result.attempts[0].tier == result.route.tier  # the ladder started there
    assert set(by_kind["hard"]) == {"large"}
    assert by_kind["easy"]["small"] >= 0.8 * sum(by_kind["easy"].values())

    other = folder / "other.yaml"
    replay_config(other, tiers=("a", "b", "c"))
    other.write_text(other.read_text() + f"router: {{learned: {{model_file: {out}}}}}\n")
    with pytest.raises(
        ConfigError, match=r"router.learned: .*trained for the tiers \['small', 'medium', 'large'\]"
    ):
        Cascade.from_config(with_records(load_config(other), data), base_dir=folder)
