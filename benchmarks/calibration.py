"""Calibration on real ladders, scored on requests it never saw, over repeated random splits.

    python benchmarks/calibration.py                      # needs ../shared/data
    python benchmarks/calibration.py --calibrate 1000 --splits 10

For each ladder of `benchmarks/ladders.py` (RouterBench, MMLU-Pro, RouteLLM GSM8K; the
learned verifier of each is trained on a split of its own that is in neither part), every
pool record is replayed once on every tier through the real engine (`observe`). Then, per
split, the pool is shuffled: `--calibrate` requests to fit on, the rest unseen. Each method
is fitted on the calibration part only (but the test-fitted limit) and scored on the unseen
part, by the simulator that `cascade calibrate` checks against the engine:

- top alone: the top tier for everything.
- oracle: the cheapest tier that is right, paying only for it (the limit of routing).
- test-fitted: the cheapest setting (sub-ladders and thresholds) within --max-loss on the
  unseen part itself: cheating on purpose, the limit for thresholds on this signal.
- naive grid: the full ladder's per-tier thresholds fitted to --match-top on the
  calibration part (what `calibrate` did before sub-ladders and the guarantee).
- point estimate: sub-ladders, --max-loss, no confidence.
- guaranteed: sub-ladders, --max-loss with --confidence (Learn-then-Test).

Printed per ladder and method: unseen accuracy, loss against the top tier alone (paired),
cost as a share of the top tier alone's, and the share of splits whose unseen loss stayed
within --max-loss; then the goal over all (ladder, split) pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ladders

from cascade.config import load_config
from cascade.offline.calibration import Observations, Simulator, Target, calibrate, observe
from cascade.offline.calibration.search import Explored
from cascade.offline.records import with_records
from cascade.providers.replay import load_recorded

MIN_UNSEEN = 300  # a ladder whose pool leaves fewer unseen requests is left out
METHODS = ("top alone", "oracle", "test-fitted", "naive grid", "point estimate", "guaranteed")


@dataclass(frozen=True)
class Scored:
    accuracy: float
    loss: float  # against the top tier alone, paired
    cost_share: float  # of the top tier alone's

    def within(self, max_loss: float) -> bool:
        return self.loss <= max_loss + 1e-12


def score(simulator: Simulator, point: Explored, records: Sequence[int]) -> Scored:
    n = len(records)
    top = len(simulator.obs.tiers) - 1
    _, cost = simulator.run(point.setting, records, point.ladder)
    correct, worse, better = simulator.against_top(point.setting, records, point.ladder)
    _, top_cost = simulator.alone(top, records)
    return Scored(correct / n, (worse - better) / n, cost / float(top_cost))


def oracle(observations: Observations, records: Sequence[int]) -> Scored:
    """Each request sent to the cheapest tier that is right (the top tier when none is)."""
    top = len(observations.tiers) - 1
    correct = cost = top_cost = 0.0
    worse = better = 0
    for r in records:
        row = observations.rows[r]
        k = next((k for k, o in enumerate(row) if o.alone_correct), top)
        right = row[k].alone_correct
        correct += right
        cost += float(row[k].alone_cost)
        top_cost += float(row[top].alone_cost)
        worse += row[top].alone_correct and not right
        better += right and not row[top].alone_correct
    n = len(records)
    return Scored(correct / n, (worse - better) / n, cost / top_cost)


def top_alone(simulator: Simulator, records: Sequence[int]) -> Scored:
    correct, _ = simulator.alone(len(simulator.obs.tiers) - 1, records)
    return Scored(correct / len(records), 0.0, 1.0)


def one_split(
    observations: Observations, seed: int, size: int, max_loss: float, confidence: float
) -> dict[str, Scored]:
    records = list(range(len(observations.ids)))
    random.Random(seed).shuffle(records)
    fit, unseen = sorted(records[:size]), sorted(records[size:])
    simulator = Simulator(observations)
    loss = Target("max_loss", max_loss)
    fitted = {
        "test-fitted": calibrate(observations, loss, records=unseen),
        "naive grid": calibrate(observations, Target("match_top"), records=fit, skip_tiers=False),
        "point estimate": calibrate(observations, loss, records=fit),
        "guaranteed": calibrate(observations, loss, records=fit, confidence=confidence, seed=seed),
    }
    out = {"top alone": top_alone(simulator, unseen), "oracle": oracle(observations, unseen)}
    for name, found in fitted.items():
        if found.chosen is None:  # the naive grid's --match-top can be out of reach on the full ladder:
            out[name] = top_alone(simulator, unseen)  # it wrote nothing, and the top tier stays
            continue
        out[name] = score(simulator, found.chosen, unseen)
    return out


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--calibrate", type=int, default=300, help="labelled requests to fit on")
    parser.add_argument("--max-loss", type=float, default=0.01)
    parser.add_argument("--confidence", type=float, default=0.9)
    parser.add_argument(
        "--only", nargs="*", help="ladder sources to run (routerbench, mmlu_pro, routellm-gsm8k)"
    )
    args = parser.parse_args(argv)
    if not ladders.available():
        sys.exit("no data: ../shared/data is not there (see its README)")
    started = time.perf_counter()
    results: dict[str, dict[str, list[Scored]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        built = ladders.build(Path(folder), only=args.only)
        for ladder in built:
            recorded = load_recorded(ladder.records)
            config = with_records(load_config(ladder.config), ladder.records)
            if len(recorded) < args.calibrate + MIN_UNSEEN:
                print(
                    f"{ladder.name}: left out, its pool of {len(recorded)} leaves fewer than "
                    f"{MIN_UNSEEN} unseen requests",
                    file=sys.stderr,
                )
                continue
            observations = asyncio.run(observe(config, recorded, base_dir=ladder.config.parent))
            per_method: dict[str, list[Scored]] = defaultdict(list)
            for seed in range(args.splits):
                for name, scored in one_split(
                    observations, seed, args.calibrate, args.max_loss, args.confidence
                ).items():
                    per_method[name].append(scored)
            results[ladder.name] = per_method
            print(f"{ladder.name}: {len(observations.ids)} pool requests; {ladder.pricing}", file=sys.stderr)
    report(results, args)
    print(f"\n({time.perf_counter() - started:.0f} s)")


def report(results: dict[str, dict[str, list[Scored]]], args: argparse.Namespace) -> None:
    eps = args.max_loss
    print(
        f"Calibration fitted on {args.calibrate} labelled requests, scored on the rest of each pool; "
        f"{args.splits} random splits per ladder; --max-loss {eps} --confidence {args.confidence}.\n"
        "Means over the splits; 'within' = share of splits whose unseen loss against the top tier "
        f"was at most {eps:.0%}; 'cheaper than top' = share of splits whose unseen cost was below the "
        "top tier alone's.\n"
    )
    rows = []
    for name, per_method in results.items():
        for method in METHODS:
            scored = per_method[method]
            rows.append(
                [
                    name if method == METHODS[0] else "",
                    method,
                    f"{statistics.mean(s.accuracy for s in scored):.1%}",
                    f"{statistics.mean(s.loss for s in scored):+.1%}",
                    f"{statistics.mean(s.cost_share for s in scored):.0%}",
                    f"{sum(s.within(eps) for s in scored) / len(scored):.0%}",
                    f"{sum(s.cost_share < 1 for s in scored) / len(scored):.0%}",
                ]
            )
    header = ["ladder", "method", "accuracy", "loss vs top", "cost vs top", "within", "cheaper than top"]
    print(table(rows, header))
    print("\nIn short (unseen cost as a share of the top tier alone's, and how often the loss held):\n")
    print(summary_table(results, eps))
    limit = statistics.mean(s.cost_share for m in results.values() for s in m["test-fitted"])
    print()
    for method in ("guaranteed", "point estimate", "naive grid"):
        print(overall(method, [s for m in results.values() for s in m[method]], limit, eps))


def summary_table(results: dict[str, dict[str, list[Scored]]], eps: float) -> str:
    """One row per ladder: the top tier's accuracy, then each fitted method's cost (within)."""
    methods = ("test-fitted", "naive grid", "point estimate", "guaranteed")
    rows = []
    for name, per_method in results.items():
        row = [name, f"{statistics.mean(s.accuracy for s in per_method['top alone']):.1%}"]
        for method in methods:
            scored = per_method[method]
            cost = statistics.mean(s.cost_share for s in scored)
            row.append(f"{cost:.0%} ({sum(s.within(eps) for s in scored) / len(scored):.0%})")
        rows.append(row)
    return table(rows, ["ladder", "top tier alone", *methods])


def overall(method: str, scored: list[Scored], limit: float, eps: float) -> str:
    """The goal's two figures over every (ladder, split) pair."""
    held = sum(s.within(eps) for s in scored) / len(scored)
    ratio = statistics.mean(s.cost_share for s in scored) / limit
    return (
        f"{method}: unseen loss within {eps:.0%} on {held:.0%} of {len(scored)} (ladder, split) pairs "
        f"(goal: at least 90 %); mean cost {ratio:.2f}x the test-fitted limit's (goal: at most 1.2x)"
    )


if __name__ == "__main__":
    main()
