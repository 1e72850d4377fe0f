"""Split a file of recorded outcomes into disjoint parts, by request, for fitting and scoring.

    python benchmarks/split.py gsm8k.jsonl verifier.jsonl:0.25 train.jsonl:0.25 test.jsonl:0.5

Each OUT:SHARE gets that share of the lines (the last part takes what is left), after a
shuffle with `--seed` (0): the same input gives the same parts. A request is in one part
only, so a verifier trained on one, thresholds fitted on another and figures measured on a
third never see the same request twice.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("input", type=Path, help="recorded outcomes (JSONL)")
    parser.add_argument(
        "parts", nargs="+", metavar="OUT:SHARE", help="a part's file and its share of the lines"
    )
    parser.add_argument("--seed", type=int, default=0, help="the shuffle's seed (0)")
    args = parser.parse_args(argv)
    parts = []
    for part in args.parts:
        name, _, share = part.rpartition(":")
        try:
            parts.append((Path(name), float(share)))
        except ValueError:
            parser.error(f"{part!r}: give each part as OUT.jsonl:SHARE (a fraction such as 0.5)")
    if not name or abs(sum(s for _, s in parts) - 1) > 1e-9:
        parser.error("the shares must add up to 1")
    lines = [line for line in args.input.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(args.seed).shuffle(lines)
    start = 0
    for i, (path, share) in enumerate(parts):
        end = len(lines) if i == len(parts) - 1 else start + round(share * len(lines))
        path.write_text("".join(line + "\n" for line in lines[start:end]), encoding="utf-8")
        print(f"{path}: {end - start} requests")
        start = end


if __name__ == "__main__":
    main()
