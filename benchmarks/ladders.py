"""Ladders for calibration benchmarks: recorded answers of real models (../shared/data), each
ladder a replay config (tiers cheapest first by mean cost) and the records to calibrate it on.

    python benchmarks/ladders.py            # builds every ladder and prints what it holds

    ladders.build(workdir)                  # -> [Ladder(name, source, config, records, pricing)]

Sources (see ../shared/data/README.md):

- `routerbench`: RouterBench's 0-shot ARC-Challenge, MBPP and Winogrande answers of 11 models,
  train and test files pooled; each call's `cost_usd` is RouterBench's recorded `total_cost`.
  14 ARC ids appear twice: once as asked, with gpt-3.5's answer unlabelled, and once with
  the prompt sent twice over (costs doubled, only gpt-3.5 labelled). The doubled copy is
  dropped (as any other repeat of an id would be, the first kept), so ladders with gpt-3.5
  go without those 14 questions.
- `mmlu_pro`: MMLU-Pro chain-of-thought answers of 8 models; correct = `pred == answer` (a
  null `pred`, no letter found, is wrong). A ladder keeps the questions every one of its
  models answered with the same question, options and answer key (the files differ on a
  few dozen). The prompt is MMLU-Pro's instruction with the question and lettered options;
  its five worked examples are not in the data, so they are neither shown nor priced.
- `routellm-gsm8k`: RouteLLM's GSM8K answers of Mixtral and GPT-4 (`routellm.gsm8k()`).

Where no cost was recorded (MMLU-Pro, GSM8K), prompt and answer tokens are counted with
tiktoken's cl100k_base (exact for GPT-4, an approximation for the others, as in
`routellm.py`) and priced from genai-prices' list prices; `cost_usd` is recorded either
way, so the replay tiers need no `price:`. Each ladder's `pricing` says which.

The signal: a `learned` verifier (hashed n-grams of request and answer, one logistic
regression per model: `cascade train-verifier`) on every tier below the top. A seeded 30 %
of each source's ids is its SIGNAL split: each ladder's verifier is trained on that split
alone, and the ladder's records (the calibration pool) are the other 70 %, so calibrating
and testing never see an answer the signal learned from. No second signal: `hedging`
scores about 0.50 AUC on every model of every source here (the answers are letters, code
or worked solutions that rarely hedge), and no confidences, log-probabilities or judge
grades were recorded for `self_confidence`, `logprob` or `judge`.

Files go under `workdir` only, one folder per ladder: `config.yaml` (absolute paths to its
`records` and verifier model, so a copy of it works anywhere), `records.jsonl`,
`signal.jsonl` (the verifier's training split) and `learned.json`. Records keep what the
source says of each question beside the format's fields: `task` (RouterBench's eval
name) or `category` (MMLU-Pro's subject), for splits that want to stratify.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import csv
import json
import random
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import routellm

from cascade.config import load_config
from cascade.core.tokens import count_tokens
from cascade.core.values import Usage
from cascade.offline.calibration import Observations, observe
from cascade.providers.pricing import CatalogPrice
from cascade.providers.replay import load_recorded

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SEED = 0
SIGNAL_SHARE = 0.3  # of each source's ids, kept for training the learned verifier
Record = dict[str, Any]


@dataclass(frozen=True)
class Ladder:
    """A replayable cascade on real recorded answers, and the records to calibrate it on."""

    name: str  # "<source>: <tier> > <tier> > ...", cheapest first
    source: str  # "routerbench" | "mmlu_pro" | "routellm-gsm8k"
    config: Path  # replay tiers cheapest first; `learned` on every tier below the top
    records: Path  # the calibration pool: no record the learned verifier was trained on
    pricing: str  # where the costs come from


@dataclass(frozen=True)
class _Spec:
    source: str
    models: tuple[str, ...]  # as the records name them, cheapest first

    @property
    def tiers(self) -> list[str]:
        return [model.rsplit("/", 1)[-1] for model in self.models]

    @property
    def name(self) -> str:
        return f"{self.source}: {' > '.join(self.tiers)}"


GPT4 = "gpt-4-1106-preview"
LLAMA_70B, GEMINI_PRO = "Meta-Llama-3_1-70B-Instruct", "gemini-1.5-pro-002"
SPECS = (
    _Spec(
        "routerbench",
        ("mistralai/mistral-7b-chat", "mistralai/mixtral-8x7b-chat", "gpt-3.5-turbo-1106", GPT4),
    ),
    _Spec("routerbench", ("WizardLM/WizardLM-13B-V1.2", "zero-one-ai/Yi-34B-Chat", "claude-v1", GPT4)),
    _Spec(
        "routerbench",
        ("mistralai/mixtral-8x7b-chat", "zero-one-ai/Yi-34B-Chat", "gpt-3.5-turbo-1106", "claude-v1", GPT4),
    ),
    _Spec("routerbench", ("mistralai/mistral-7b-chat", "claude-instant-v1", GPT4)),
    _Spec("mmlu_pro", ("Phi-3-mini-4k-instruct", "Meta-Llama-3_1-8B-Instruct", LLAMA_70B, GEMINI_PRO)),
    _Spec("mmlu_pro", ("gemini-1.5-flash-002", LLAMA_70B, GEMINI_PRO)),
    _Spec("mmlu_pro", ("Mixtral-8x7B-Instruct-v0.1", LLAMA_70B, GEMINI_PRO)),
    _Spec("routellm-gsm8k", (routellm.CHEAP, routellm.STRONG)),
)


def available() -> bool:
    """Is the recorded data there?"""
    return all((DATA / folder).is_dir() for folder in ("routerbench", "mmlu_pro", "routellm"))


def build(workdir: Path, *, only: Sequence[str] | None = None) -> list[Ladder]:
    """Every ladder (or those whose name or source is in `only`), written under `workdir`."""
    specs = _chosen(only)
    ladders = []
    for name in dict.fromkeys(spec.source for spec in specs):  # one source in memory at a time
        source = _SOURCES[name]()
        signal = _signal_ids(source.ids())
        for spec in (spec for spec in specs if spec.source == name):
            records, pricing = source.ladder(spec.models)
            folder = workdir / f"{SPECS.index(spec) + 1:02d}-{_slug(spec.name)}"
            folder.mkdir(parents=True, exist_ok=True)
            ladders.append(_write(spec, records, signal, pricing, folder))
    return ladders


def _chosen(only: Sequence[str] | None) -> list[_Spec]:
    if only is None:
        return list(SPECS)
    known = {spec.name for spec in SPECS} | {spec.source for spec in SPECS}
    unknown = [wanted for wanted in only if wanted not in known]
    if unknown:
        raise ValueError(
            f"unknown ladders or sources: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
    return [spec for spec in SPECS if spec.name in only or spec.source in only]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")


# --- the sources: every record of a source, then a ladder's models' answers -----------------


class _Source(Protocol):
    def ids(self) -> set[str]:
        """Every id of the source, whichever ladder's models answered it."""
        ...

    def ladder(self, models: Sequence[str]) -> tuple[list[Record], str]:
        """The records of a ladder of `models` (only their answers), and how they are priced."""
        ...


def _signal_ids(ids: Iterable[str]) -> set[str]:
    """A seeded SIGNAL_SHARE of a source's ids, the same for each of its ladders."""
    ordered = sorted(ids)
    random.Random(SEED).shuffle(ordered)
    return set(ordered[: round(SIGNAL_SHARE * len(ordered))])


class _Listed:
    """A source whose records hold every model's answers (priced one way for all)."""

    def __init__(self, records: Iterable[Record], pricing: str) -> None:
        self.records = list(records)
        self.pricing = pricing

    def ids(self) -> set[str]:
        return {record["id"] for record in self.records}

    def ladder(self, models: Sequence[str]) -> tuple[list[Record], str]:
        """The records every one of `models` answered with a label, with only their answers."""
        kept = []
        for record in self.records:
            responses = record["responses"]
            if all(m in responses and isinstance(responses[m].get("correct"), bool) for m in models):
                kept.append({**record, "responses": {m: responses[m] for m in models}})
        return kept, self.pricing


def _routerbench(data: Path = DATA / "routerbench") -> _Listed:
    rows = []
    for path in sorted(data.glob("*.csv")):
        with path.open(newline="") as table:
            rows += list(csv.DictReader(table))
    models = [column.removesuffix("|total_cost") for column in rows[0] if column.endswith("|total_cost")]
    records: dict[str, Record] = {}
    for row in rows:
        prompt = ast.literal_eval(row["prompt"])
        # 14 ids come twice: once as asked, once with the prompt sent twice over (a list of
        # two copies, every cost doubled, only gpt-3.5's answer labelled): that copy goes
        if row["sample_id"] in records or len(prompt) != 1:
            continue
        records[row["sample_id"]] = {
            "id": row["sample_id"],
            "prompt": prompt[0],
            "task": row["eval_name"],
            "responses": {
                model: {
                    "text": _only_string(row[f"{model}|model_response"]),
                    "correct": float(row[model]) == 1.0,
                    "cost_usd": float(row[f"{model}|total_cost"]),
                }
                for model in models
                if row[model] != ""  # unlabelled (gpt-3.5 on the 14 kept copies): left out
            },
        }
    return _Listed(records.values(), "recorded USD per call (RouterBench's `<model>|total_cost`)")


def _only_string(literal: str) -> str:
    """RouterBench keeps answers as Python-list literals of one string."""
    value = ast.literal_eval(literal)
    if not (isinstance(value, list) and len(value) == 1 and isinstance(value[0], str)):
        raise ValueError(f"not a one-string list: {literal[:80]!r}")
    return value[0]


# MMLU-Pro's models priced by genai-prices: the maker's own API where it is listed there,
# else Together AI (one host for the open-weight models), as (provider id, model id)
MMLU_PRO_PRICES = {
    "Phi-3-mini-4k-instruct": ("azure", "phi-3-mini-128k-instruct"),  # no 4k entry; same family
    "Meta-Llama-3_1-8B-Instruct": ("together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo"),
    "Meta-Llama-3_1-70B-Instruct": ("together", "meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo"),
    "Mixtral-8x7B-Instruct-v0.1": ("mistral", "mixtral-8x7b"),
    "gemini-1.5-flash-002": ("google", "gemini-1.5-flash-002"),
    "gemini-1.5-pro-002": ("google", "gemini-1.5-pro-002"),
}
_MMLU_PRO_INSTRUCTION = (
    "The following are multiple choice questions (with answers) about {category}. Think step by "
    'step and then finish your answer with "the answer is (X)" where X is the correct letter choice.'
)


@dataclass(frozen=True)
class _PerMtok:
    input: Decimal
    output: Decimal

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return float((input_tokens * self.input + output_tokens * self.output) / 1_000_000)


def _list_price(provider: str, model: str) -> _PerMtok:
    """genai-prices' rates of `model` at `provider`, read off a short call (a million tokens
    would reach the long-context tier some models bill at a higher rate)."""
    from genai_prices import Usage as PricesUsage
    from genai_prices import calc_price

    def per_mtok(input_tokens: int, output_tokens: int) -> Decimal:
        usage = PricesUsage(input_tokens=input_tokens, output_tokens=output_tokens)
        return Decimal(calc_price(usage, model, provider_id=provider).total_price) * 1_000

    return _PerMtok(per_mtok(1_000, 0), per_mtok(0, 1_000))


class _MmluPro:
    """MMLU-Pro answers by model, joined per ladder (the models answered different questions)."""

    def __init__(self, data: Path = DATA / "mmlu_pro") -> None:
        self.answers: dict[str, dict[int, Mapping[str, Any]]] = {}
        for model in MMLU_PRO_PRICES:
            with zipfile.ZipFile(data / f"{model}.zip") as archive:
                (name,) = archive.namelist()
                self.answers[model] = {q["question_id"]: q for q in json.loads(archive.read(name))}
        self.prices = {model: _list_price(*where) for model, where in MMLU_PRO_PRICES.items()}

    def ids(self) -> set[str]:
        """Every question any model answered: the split must not depend on a ladder's join."""
        return {_mmlu_pro_id(q) for answers in self.answers.values() for q in answers}

    def ladder(self, models: Sequence[str]) -> tuple[list[Record], str]:
        common = set.intersection(*(set(self.answers[m]) for m in models))
        records = []
        for question_id in sorted(common):
            entries = [self.answers[m][question_id] for m in models]
            if len({(e["question"], tuple(e["options"]), e["answer"]) for e in entries}) > 1:
                continue  # the files disagree on this question's text or key
            prompt = _mmlu_pro_prompt(entries[0])
            responses = {m: self._response(m, prompt, e) for m, e in zip(models, entries, strict=True)}
            records.append(
                {
                    "id": _mmlu_pro_id(question_id),
                    "prompt": prompt,
                    "category": entries[0]["category"],
                    "responses": responses,
                }
            )
        return records, self._pricing(models)

    def _response(self, model: str, prompt: str, entry: Mapping[str, Any]) -> Record:
        text = entry.get("generated_text") or entry.get("model_outputs") or ""  # named either way
        input_tokens, output_tokens = _tokens(prompt), _tokens(text)
        return {
            "text": text,
            "correct": entry["pred"] is not None and entry["pred"] == entry["answer"],
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": self.prices[model].cost(input_tokens, output_tokens),
        }

    def _pricing(self, models: Sequence[str]) -> str:
        prices = "; ".join(
            f"{m}: {MMLU_PRO_PRICES[m][0]} {MMLU_PRO_PRICES[m][1]} "
            f"${self.prices[m].input.normalize():f}/${self.prices[m].output.normalize():f}"
            for m in models
        )
        return (
            "prompt (without the 5 worked examples) and answer tokens by tiktoken cl100k_base x "
            f"genai-prices {version('genai-prices')} list prices per Mtok in/out: {prices}"
        )


def _mmlu_pro_id(question_id: int) -> str:
    return f"mmlu-pro-{question_id}"


def _mmlu_pro_prompt(entry: Mapping[str, Any]) -> str:
    options = "\n".join(f"{chr(ord('A') + i)}. {option}" for i, option in enumerate(entry["options"]))
    instruction = _MMLU_PRO_INSTRUCTION.format(category=entry["category"])
    question = f"Question: {entry['question']}\nOptions:\n{options}"
    return f"{instruction}\n\n{question}\nAnswer: Let's think step by step."


@cache
def _tokens(text: str) -> int:
    return count_tokens(text, "gpt-4")  # cl100k_base for every model, as routellm.py counts


def _gsm8k() -> _Listed:
    prices = {model: CatalogPrice(model) for model in routellm.COLUMNS}

    def priced(records: Iterator[Record]) -> Iterator[Record]:
        for record in records:
            for model, response in record["responses"].items():
                usage = Usage(response["input_tokens"], response["output_tokens"])
                response["cost_usd"] = float(prices[model].cost(usage))
            yield record

    listed = "; ".join(f"{model} {price.describe()}" for model, price in prices.items())
    pricing = (
        "recorded tokens (tiktoken cl100k_base, benchmarks/routellm.py) x genai-prices "
        f"{version('genai-prices')} list prices: {listed}"
    )
    return _Listed(priced(routellm.gsm8k()), pricing)


_SOURCES: dict[str, Callable[[], _Source]] = {
    "routerbench": _routerbench,
    "mmlu_pro": _MmluPro,
    "routellm-gsm8k": _gsm8k,
}


# --- one ladder's files ----------------------------------------------------------------------


def _write(spec: _Spec, records: list[Record], signal_ids: set[str], pricing: str, folder: Path) -> Ladder:
    """The signal split, the verifier trained on it, the pool and the config, under `folder`."""
    signal = [r for r in records if r["id"] in signal_ids]
    pool = [r for r in records if r["id"] not in signal_ids]
    _check_cheapest_first(spec, pool)
    config, records_file, model_file = folder / "config.yaml", folder / "records.jsonl", folder / MODEL_FILE
    _write_jsonl(folder / SIGNAL_FILE, signal)
    _write_jsonl(records_file, pool)
    _train(folder / SIGNAL_FILE, model_file, spec.models[:-1])
    header = f"# {spec.name}: replay of recorded answers, written by benchmarks/ladders.py\n"
    settings = _config(spec, records_file.resolve(), model_file.resolve())
    config.write_text(header + yaml.safe_dump(settings, sort_keys=False))
    return Ladder(spec.name, spec.source, config, records_file, pricing)


SIGNAL_FILE = "signal.jsonl"  # beside each ladder's records: what its verifier was trained on
MODEL_FILE = "learned.json"


def _write_jsonl(path: Path, records: Iterable[Record]) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def _check_cheapest_first(spec: _Spec, pool: Sequence[Record]) -> None:
    means = [sum(r["responses"][m]["cost_usd"] for r in pool) / len(pool) for m in spec.models]
    if means != sorted(means):
        listed = ", ".join(f"{tier} ${mean:.6f}" for tier, mean in zip(spec.tiers, means, strict=True))
        raise ValueError(f"{spec.name}: the tiers are not cheapest first on the pool: {listed}")


def _train(signal: Path, out: Path, models: Sequence[str]) -> None:
    """`cascade train-verifier`, as a user runs it: one weight set per model named."""
    command = ["train-verifier", "--data", str(signal), "--out", str(out), "--models", ",".join(models)]
    trained = subprocess.run(
        [sys.executable, "-m", "cascade.cli", *command, "--seed", str(SEED)], capture_output=True, text=True
    )
    if trained.returncode != 0:
        raise RuntimeError(f"train-verifier failed on {signal}:\n{trained.stdout}\n{trained.stderr}")


def _config(spec: _Spec, records: Path, model_file: Path) -> dict[str, Any]:
    tiers = [
        {"name": tier, "provider": "replay", "model": model, "records": str(records)}
        for tier, model in zip(spec.tiers, spec.models, strict=True)
    ]
    learned = {"type": "learned", "model_file": str(model_file), "tiers": spec.tiers[:-1]}
    return {"tiers": tiers, "verifiers": [learned]}


# --- what a ladder holds, replayed ------------------------------------------------------------


def describe(ladder: Ladder) -> list[str]:
    """Pool size, each tier's accuracy and mean cost, the top's and the oracle's accuracy, and
    the learned verifier's AUC on each tier below the top, from `observe` on the pool."""
    from cascade_verifiers.learned_training import auc

    observations = _observe(ladder)
    rows, n = observations.rows, len(observations.rows)
    signal = len((ladder.records.parent / SIGNAL_FILE).read_text().splitlines())
    lines = [ladder.name, f"  pool {n} records (signal split, not in it: {signal}); costs: {ladder.pricing}"]
    lines.append(f"  {'tier':<28} {'accuracy':>8} {'mean cost':>11}  signal AUC")
    for k, tier in enumerate(observations.tiers):
        accuracy = sum(row[k].alone_correct for row in rows) / n
        cost = sum(row[k].alone_cost for row in rows) / n
        aucs = []
        for s, slot in enumerate(observations.slots):
            if slot.tier_index == k:
                scored = [(c.score, row[k].correct) for row in rows for c in row[k].checks if c.slot == s]
                value = auc([score for score, _ in scored], [label for _, label in scored])
                aucs.append(f"{slot.type} {'n/a' if value is None else f'{value:.3f}'}")
        signals = ", ".join(aucs) if k < len(observations.tiers) - 1 else "(top)"
        lines.append(f"  {tier:<28} {accuracy:>8.1%} {f'${cost:.6f}':>11}  {signals}")
    top = sum(row[-1].alone_correct for row in rows) / n
    oracle = sum(any(o.alone_correct for o in row) for row in rows) / n
    lines.append(f"  top alone {top:.1%}; oracle (any tier right) {oracle:.1%}")
    return lines


def _observe(ladder: Ladder) -> Observations:
    config = load_config(ladder.config)
    return asyncio.run(observe(config, load_recorded(ladder.records), base_dir=ladder.config.parent))


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description="Build the ladders and print what each holds.")
    parser.add_argument("--only", action="append", help="a ladder's name or a source (repeatable)")
    parser.add_argument("--workdir", type=Path, help="write the ladders here (default: a temporary folder)")
    args = parser.parse_args(argv)
    if not available():
        sys.exit(f"no data: {DATA} is not there")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        started = time.perf_counter()
        ladders = build(workdir, only=args.only)
        built = time.perf_counter() - started
        for ladder in ladders:
            print("\n".join(describe(ladder)), end="\n\n")
        replayed = time.perf_counter() - started - built
    print(f"{len(ladders)} ladders built in {built:.0f} s (replayed for these figures in {replayed:.0f} s)")
    print(f"signal split: a seeded {SIGNAL_SHARE:.0%} of each source's ids (seed {SEED})")


if __name__ == "__main__":
    main(sys.argv[1:])
