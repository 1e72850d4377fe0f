"""Replay RouteLLM's recorded outcomes: thresholds fitted on one half, scored on the other.

    python benchmarks/replay_routellm.py            # needs ../shared/data/routellm

For each data set the records (`benchmarks/routellm.py`) are shuffled with a fixed seed and
split in halves. On the FIT half only: the learned verifier is trained (GSM8K: on one
quarter of the data) and `cascade calibrate --of-top 0.95` picks the thresholds (on the
other quarter) of the cheapest cascade reaching 95 % of GPT-4's accuracy. On the SCORE
half, never seen by either, `cascade eval` replays the tuned cascade beside GPT-4 alone
and the oracle. Everything goes through the `cascade`
command line, as a user would run it.

- GSM8K: Mixtral first, GPT-4 on top; verifiers `non_empty` and `learned` (logistic
  regression on hashed n-grams of question and answer, trained on the fit half).
- MT-Bench: the same two models; verifier `judge` with GPT-4's recorded grades (1-10) as
  its score; an answer counts as correct when graded 8 or more. The judge's own calls were
  not recorded with prices, so their cost is not in the figures.

Tokens are counted with tiktoken (cl100k_base, exact for GPT-4); prices are genai-prices'
for `mixtral-8x7b` and `gpt-4-1106-preview` (printed below).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import routellm

from cascade.providers.pricing import CatalogPrice

SEED = 0
TARGET = "0.95"  # of GPT-4's accuracy


def cascade_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cascade.cli", *args], capture_output=True, text=True)


def split(records: list[dict[str, Any]], folder: Path, name: str, parts: dict[str, float]) -> list[Path]:
    """The records shuffled with SEED and cut into parts of the given shares, as files."""
    shuffled = records[:]
    random.Random(SEED).shuffle(shuffled)
    paths, start = [], 0
    for part, share in parts.items():
        end = start + round(share * len(shuffled)) if part != list(parts)[-1] else len(shuffled)
        path = folder / f"{name}-{part}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in shuffled[start:end]))
        paths.append(path)
        start = end
    return paths


def tiers() -> list[dict[str, str]]:
    return [
        {"name": "mixtral", "provider": "replay", "model": routellm.CHEAP},
        {"name": "gpt4", "provider": "replay", "model": routellm.STRONG},
    ]


def run_one(
    name: str, config: dict[str, Any], fit: Path, score: Path, folder: Path, *target: str
) -> dict[str, Any] | str:
    """The eval figures of the calibrated cascade on `score`, or why calibration found none."""
    config_path = folder / f"{name}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    tuned = folder / f"{name}-tuned.yaml"
    calibrated = cascade_cli(
        "calibrate",
        str(config_path),
        "--data",
        str(fit),
        "--out",
        str(tuned),
        *(target or ("--of-top", TARGET)),
    )
    if calibrated.returncode == 3:  # the target cannot be met on the fit data: say so
        return " ".join((calibrated.stdout + calibrated.stderr).split())
    if calibrated.returncode != 0:
        sys.exit(
            f"{name}: calibrate failed ({calibrated.returncode}):\n{calibrated.stdout}\n{calibrated.stderr}"
        )
    evaluated = cascade_cli("eval", str(tuned), "--data", str(score), "--json")
    if evaluated.returncode != 0:
        sys.exit(f"{name}: eval failed:\n{evaluated.stderr}")
    figures: dict[str, Any] = json.loads(evaluated.stdout)
    return figures


def row(name: str, figures: dict[str, Any] | str) -> list[str]:
    if isinstance(figures, str):
        return [name, "-", "-", "not met", "-", "-", "-", "-", "-", "-"]
    top, cascade, oracle = figures["top_alone"], figures["cascade"], figures["oracle"]
    n = figures["requests"]
    return [
        name,
        str(n),
        f"{top['accuracy']:.1%}",
        f"{cascade['accuracy']:.1%}",
        f"{cascade['accuracy'] / top['accuracy']:.1%}",
        f"{1 - cascade['top_tier_calls'] / n:.0%}",
        f"${cascade['cost_usd']:.4f}",
        f"${top['cost_usd']:.4f}",
        f"{1 - cascade['cost_usd'] / top['cost_usd']:.0%}",
        f"{oracle['accuracy']:.1%} at ${oracle['cost_usd']:.4f}",
    ]


def main() -> None:
    if not routellm.DATA.is_dir():
        sys.exit(f"no data: {routellm.DATA} is not there")
    header = [
        "data (score half)",
        "requests",
        "GPT-4 alone",
        "cascade",
        "of GPT-4",
        "GPT-4 calls avoided",
        "cascade cost",
        "GPT-4 cost",
        "cost saved",
        "oracle",
    ]
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # the fit half is itself split: the verifier learns on one quarter, and the thresholds
        # are fitted on the other (a verifier scored on its own training data looks perfect)
        train, tune, score = split(
            list(routellm.gsm8k()), folder, "gsm8k", {"train": 0.25, "tune": 0.25, "score": 0.5}
        )
        model = folder / "learned.json"
        trained = cascade_cli("train-verifier", "--data", str(train), "--out", str(model))
        if trained.returncode != 0:
            sys.exit(f"train-verifier failed:\n{trained.stderr}")
        gsm8k = {
            "tiers": tiers(),
            "verifiers": [{"type": "non_empty"}, {"type": "learned", "model_file": str(model)}],
        }
        rows.append(row("GSM8K", run_one("gsm8k", gsm8k, tune, score, folder)))
        # with a guarantee: at most 4 points lost against GPT-4 (about 95 % of its accuracy),
        # certified with 90 % confidence (a paired target: --of-top takes no --confidence)
        guaranteed = ("--max-loss", "0.04", "--confidence", "0.9")
        confident = run_one("gsm8k-confident", gsm8k, tune, score, folder, *guaranteed)
        rows.append(row("GSM8K, --max-loss 0.04 --confidence 0.9", confident))
        fit, score = split(list(routellm.mt_bench()), folder, "mt_bench", {"fit": 0.5, "score": 0.5})
        judge_model = {
            "provider": "openai",
            "model": "gpt-4",
            "price": {"input_per_mtok": 30, "output_per_mtok": 60},
        }
        mt = {"tiers": tiers(), "verifiers": [{"type": "judge", "model": judge_model, "scale": 10}]}
        rows.append(row("MT-Bench", run_one("mt_bench", mt, fit, score, folder)))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    print()
    for model_name in (routellm.CHEAP, routellm.STRONG):
        print(f"price of {model_name}: {CatalogPrice(model_name).describe()}")
    for note in notes:
        print(note)
    print(
        f"split seed {SEED}; target {TARGET} of GPT-4's accuracy on the fit half; figures on the score half"
    )


if __name__ == "__main__":
    main()
