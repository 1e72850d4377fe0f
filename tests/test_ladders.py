"""benchmarks/ladders.py on the recorded data, where it is there: the smallest ladder is built,
replays through calibration's `observe`, and its pool holds no record the signal learned from."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import ladders  # found through the path just added

from cascade.config import load_config
from cascade.offline.calibration import observe
from cascade.providers.replay import load_recorded

pytestmark = pytest.mark.skipif(not ladders.available(), reason=f"no recorded data at {ladders.DATA}")


def _ids(path: Path) -> set[str]:
    return {json.loads(line)["id"] for line in path.read_text().splitlines()}


def test_the_gsm8k_ladder_replays_with_a_scored_signal_on_a_pool_apart_from_its_training(
    tmp_path: Path,
) -> None:
    (ladder,) = ladders.build(tmp_path, only=["routellm-gsm8k"])
    assert ladder.config.is_relative_to(tmp_path) and ladder.records.is_relative_to(tmp_path)
    pool, signal = _ids(ladder.records), _ids(ladder.records.parent / ladders.SIGNAL_FILE)
    assert pool and signal and not pool & signal
    observations = asyncio.run(
        observe(load_config(ladder.config), load_recorded(ladder.records), base_dir=ladder.config.parent)
    )
    assert observations.tiers == ["mixtral-8x7b", "gpt-4-1106-preview"]
    assert [slot.type for slot in observations.slots] == ["learned"]
    scores = {c.score for row in observations.rows for c in row[0].checks if c.slot == 0}
    assert len(scores) > 100  # a real score, not a constant
    assert all(o.cost > 0 for row in observations.rows for o in row)  # recorded costs stand


def test_an_unknown_ladder_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"known: .*routerbench"):
        ladders.build(tmp_path, only=["no-such-source"])
    assert not any(tmp_path.iterdir())
