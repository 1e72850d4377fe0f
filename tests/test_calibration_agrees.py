"""The calibration simulator and the real cascade agree, request by request, on recorded
outcomes: random ladders (2-3 tiers, alternates, failed calls, cut-off and truncated
answers), random scores and thresholds, reasks, verifier orders and per-request budgets."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cascade import Cascade, ExhaustedError, Result
from cascade.config import parse_config
from cascade.core.errors import ConfigError
from cascade.offline.calibration import Simulator, observe
from cascade.offline.calibration.thresholds import calibrated_yaml, written_threshold
from cascade.providers.replay import load_recorded

PRICE = {"input_per_mtok": 1, "output_per_mtok": 1}
# answers of three hedging weights (the last fails the default threshold), and an empty one
TEXTS = ["It is 42.", "I think it is 42.", "I am not sure, but it might possibly be 42.", ""]
VERIFIERS = [{"type": "non_empty"}, {"type": "hedging"}, {"type": "self_confidence", "threshold": 0.5}]

answers = st.fixed_dictionaries(
    {
        "text": st.sampled_from(TEXTS),
        "correct": st.booleans(),
        "confidence": st.sampled_from([0.1, 0.3, 0.5, 0.7, 0.9, 1.0]),
        "cost_usd": st.sampled_from([0.0001, 0.0002, 0.0005, 0.001]),
    },
    optional={"finish_reason": st.sampled_from(["stop", "length"])},
)
responses = st.none() | answers  # None: the model has no recorded answer, so its call fails

tiers = st.lists(
    st.fixed_dictionaries(
        {
            "alternate": st.booleans(),
            "reask": st.none() | st.integers(0, 2),
            "on_truncated": st.sampled_from(["reject", "accept"]),
        }
    ),
    min_size=2,
    max_size=3,
)
cascades = st.fixed_dictionaries(
    {
        "verifiers": st.permutations(VERIFIERS),
        "reask": st.integers(0, 2),
        "run_all_verifiers": st.booleans(),
        "on_exhausted": st.sampled_from(["return_best", "raise"]),
        "max_cost_usd": st.none() | st.sampled_from(["0.0001", "0.0004", "0.0012", "0.003"]),
    }
)


def ladder_config(ladder: list[dict[str, Any]], records: Path, cascade: dict[str, Any]) -> dict[str, Any]:
    """A replay config: tier k's primary is `t{k}m0`, its alternate (if any) `t{k}m1`."""

    def model(name: str) -> dict[str, Any]:
        return {"provider": "replay", "model": name, "records": str(records), "price": PRICE}

    config_tiers = []
    for k, tier in enumerate(ladder):
        entry = {"name": f"t{k}", **model(f"t{k}m0"), "on_truncated": tier["on_truncated"]}
        if tier["alternate"]:
            entry["alternates"] = [model(f"t{k}m1")]
        if tier["reask"] is not None:
            entry["reask"] = tier["reask"]
        config_tiers.append(entry)
    return {"tiers": config_tiers, **cascade}


async def engine_results(config: dict[str, Any], recorded: Any) -> list[Result]:
    results = []
    async with Cascade.from_config(parse_config(config)) as cascade:
        for record in recorded:
            try:
                results.append(await cascade.arun(record.request))
            except ExhaustedError as exc:
                results.append(exc.result)
    return results


files = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ladder=tiers, cascade=cascades, data=st.data())
def test_the_simulator_does_what_the_cascade_does(tmp_path_factory, ladder, cascade, data):
    models = [f"t{k}m{j}" for k, tier in enumerate(ladder) for j in range(1 + tier["alternate"])]
    rows = data.draw(
        st.lists(st.fixed_dictionaries({m: responses for m in models}), min_size=1, max_size=5), "records"
    )
    records: list[dict[str, Any]] = [
        {
            "id": f"q{i}",
            "prompt": f"question {i}",
            "responses": {m: a for m, a in row.items() if a is not None},
        }
        for i, row in enumerate(rows)
    ]
    for record in records:  # a record needs one answer, though no tier's model may have one
        record["responses"]["elsewhere"] = {"text": "unused"}
    # a file of its own per example: replay tiers read a file once per path
    path = tmp_path_factory.getbasetemp() / f"agree-{next(files)}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    recorded = load_recorded(path)
    raw = ladder_config(ladder, path, cascade)
    try:
        observations = asyncio.run(observe(parse_config(raw), recorded))
    except ConfigError:  # no answer on the tiers below the top gave a score: nothing to calibrate
        assume(False)

    slots = observations.slots
    observed = [sorted(set(observations.scores(i, range(len(records))))) for i in range(len(slots))]
    # an observed score, or 1.0 (which only a perfect score reaches) as each slot's cut-off
    setting = tuple(
        data.draw(st.sampled_from([*scores, 1.0]), f"cut-off {slot.label}")
        for slot, scores in zip(slots, observed, strict=True)
    )
    thresholds = {
        (slot.entry, slot.tier): written_threshold(slot, cut, scores)
        for slot, cut, scores in zip(slots, setting, observed, strict=True)
    }
    written = yaml.safe_load(calibrated_yaml(raw, path.parent, path.parent, thresholds, ""))

    simulator = Simulator(observations)
    for r, result in enumerate(asyncio.run(engine_results(written, recorded))):
        simulated = simulator.outcome(setting, r)
        tier = None if simulated.tier is None else observations.tiers[simulated.tier]
        assert (tier, simulated.verified, simulated.cost) == (
            result.tier,
            result.verified,
            result.cost.total_usd,
        ), (records[r], result.attempts)


def test_a_finished_answer_is_returned_before_a_cut_off_one(tmp_path):
    """Pick-best ranks a finished answer first, then verifiers passed, then the tier: the lower
    tier's empty answer (no check passed) beats the top's cut-off one, in both."""
    records = [
        {
            "id": "q",
            "prompt": "question",
            "responses": {
                "t0m0": {"text": "", "correct": True, "confidence": 0.1, "cost_usd": 0.0001},
                "t1m0": {"text": "It is", "correct": False, "finish_reason": "length", "cost_usd": 0.0002},
            },
        }
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    recorded = load_recorded(path)
    raw = ladder_config(
        [{"alternate": False, "reask": None, "on_truncated": "reject"}] * 2,
        path,
        {"verifiers": VERIFIERS},
    )
    observations = asyncio.run(observe(parse_config(raw), recorded))
    (result,) = asyncio.run(engine_results(raw, recorded))
    simulated = Simulator(observations).outcome((0.5, 0.5), 0)
    assert result.tier == "t0" and simulated.tier == 0 and simulated.correct
