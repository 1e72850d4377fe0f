"""RouteLLM's recorded outcomes (../shared/data/routellm) in cascade's recorded-outcomes format.

    python benchmarks/routellm.py gsm8k gsm8k.jsonl
    python benchmarks/routellm.py mt_bench mt_bench.jsonl

GSM8K: each question with Mixtral's and GPT-4's answer texts and correctness; the prompts
RouteLLM lists as contaminated are left out. MT-Bench: each first-turn question with both
models' answers and GPT-4's grade of each (1-10) as `judge_score`; an answer counts as
`correct` when graded 8 or more. Tokens are counted with tiktoken's cl100k_base (exact
for GPT-4, an approximation for Mixtral, whose tokenizer is not public here) and recorded,
so that replays price them the same way every time.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cascade.core.tokens import count_tokens

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "routellm"
CHEAP, STRONG = "mixtral-8x7b", "gpt-4-1106-preview"  # names genai-prices knows
COLUMNS = {CHEAP: "mistralai/Mixtral-8x7B-Instruct-v0.1", STRONG: "gpt-4-1106-preview"}
JUDGE_PASS = 8  # an MT-Bench answer graded this or better counts as correct


def _tokens(text: str) -> int:
    return count_tokens(text, "gpt-4")  # cl100k_base for both models (see the docstring)


def _response(prompt: str, text: str, **fields: Any) -> dict[str, Any]:
    return {"text": text, "input_tokens": _tokens(prompt), "output_tokens": _tokens(text), **fields}


def gsm8k(data: Path = DATA) -> Iterator[dict[str, Any]]:
    """GSM8K records, contaminated prompts left out, ids `gsm8k-<row>`."""
    contaminated = set()
    with (data / "gsm8k" / "contaminated_prompts.jsonl").open() as lines:
        for line in lines:
            contaminated.add(_normal(json.loads(line)["eval_prompt"]))
    with (data / "gsm8k" / "gsm8k_responses.csv").open(newline="") as table:
        for row_number, row in enumerate(csv.DictReader(table), 1):
            prompt = row["prompt"]
            if _normal(prompt) in contaminated:
                continue
            yield {
                "id": f"gsm8k-{row_number}",
                "prompt": prompt,
                "responses": {
                    model: _response(prompt, row[f"{column}_response"], correct=row[column] == "True")
                    for model, column in COLUMNS.items()
                },
            }


def mt_bench(data: Path = DATA) -> Iterator[dict[str, Any]]:
    """MT-Bench first turns with GPT-4's grade of each model's answer, ids `mt-<question>`."""
    questions = {}
    with (data / "mt_bench" / "question.jsonl").open() as lines:
        for line in lines:
            q = json.loads(line)
            questions[q["question_id"]] = q["turns"][0]
    graded: dict[int, dict[str, Any]] = {}
    with (data / "mt_bench" / "judgements.jsonl").open() as lines:
        for line in lines:
            j = json.loads(line)
            if j["turn"] != 1:
                continue
            model = next(m for m, column in COLUMNS.items() if column == j["model"])
            answer = _first_answer(j["user_prompt"])
            prompt = questions[j["question_id"]]
            graded.setdefault(j["question_id"], {})[model] = _response(
                prompt, answer, judge_score=j["score"], correct=j["score"] >= JUDGE_PASS
            )
    for question_id, responses in sorted(graded.items()):
        if len(responses) == len(COLUMNS):
            yield {"id": f"mt-{question_id}", "prompt": questions[question_id], "responses": responses}


_ANSWER = re.compile(
    r"\[The Start of Assistant's Answer\]\n(.*?)\n\[The End of Assistant's Answer\]", re.DOTALL
)


def _first_answer(user_prompt: str) -> str:
    match = _ANSWER.search(user_prompt)
    return match.group(1).strip() if match else ""


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("gsm8k", "mt_bench"):
        sys.exit("usage: python benchmarks/routellm.py gsm8k|mt_bench OUT.jsonl")
    if not DATA.is_dir():
        sys.exit(f"no RouteLLM data at {DATA}: this script converts the copy kept beside the repository")
    records = gsm8k() if argv[0] == "gsm8k" else mt_bench()
    with Path(argv[1]).open("w") as out:
        count = 0
        for record in records:
            out.write(json.dumps(record) + "\n")
            count += 1
    print(f"{count} records written to {argv[1]}")


if __name__ == "__main__":
    main(sys.argv[1:])
