"""How fast `cascade` starts: each command as a process of its own, against the baselines.

    python benchmarks/startup.py             # 9 runs of each (two minutes or so)
    python benchmarks/startup.py --runs 3    # fewer: noisier figures

Every row is a fresh interpreter. After one warm-up run of each (which fills the bytecode
cache, kept in a folder of its own for the run, and the disk cache), the rows run in turn,
one run of each per round, `--runs` rounds, so that a busy machine's drift hits them alike.
A row shows the median CPU seconds of the child (user + sys, from
`resource.getrusage(RUSAGE_CHILDREN)` around each run), the median wall seconds, and the ratio
of CPU to the row's baseline, measured in the same run:

- `python -c pass` and `python -c "import openai"`: the floor, and what the SDK alone costs;
- `cascade --help`;
- `cascade validate` on an OpenAI-only config and on an OpenAI + Anthropic one (the two with
  `params`, as real configs have, prices from genai-prices; dummy keys in the environment);
- `cascade run` of one request on the OpenAI-only config, its tiers pointed at a loopback
  fake server (`cascade.testing.server`, in this process; two verifiers, non_empty and
  hedging), against a script that makes the same call with the raw SDK
  (`openai.AsyncOpenAI(base_url=...)`) to the same server.

The `cascade` command freezes what is alive into the garbage collector's permanent
generation as it ends, which spares the interpreter's shutdown full collections over it.
Two more rows show what that is worth: the raw script with the same `gc.freeze()` at its
end, and `cascade run` through `main([...])` (as a program embedding it calls it: no freeze).

Then it runs `cascade validate` on the OpenAI-only config once more in a child that lists
what it imported, and prints the goals with PASS or MISS: `cascade --help` under 0.3 s of
CPU; validate imports no SDK it does not need (not `anthropic` for an OpenAI-only config);
`cascade run` within 1.3x the raw SDK script's CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from cascade.testing.server import FakeProviderServer, Reply

REPO = Path(__file__).resolve().parent.parent
KEYS = {"OPENAI_API_KEY": "sk-startup-benchmark-openai", "ANTHROPIC_API_KEY": "sk-ant-startup-benchmark"}
ANSWER = "Water boils at about 93 °C at 2000 m."
PROMPT = "What is the boiling point of water at 2000 m?"
HELP_GOAL_S, RUN_GOAL = 0.3, 1.3
RAW, RUN = "raw SDK script, one call", "cascade run (OpenAI only), one call"
VALIDATE_OPENAI = "cascade validate (OpenAI only)"
FREEZE = "\nimport gc\ngc.freeze()\n"
WIDTHS = (42, 8, 8, 7, 26)

OPENAI_TIERS = [
    {
        "name": "small",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "params": {"max_tokens": 256, "temperature": 0},
    },
    {
        "name": "large",
        "provider": "openai",
        "model": "gpt-4o",
        "params": {"max_tokens": 256, "temperature": 0},
    },
]
VERIFIERS = [{"type": "non_empty"}, {"type": "hedging"}]

RAW_SDK = """
import asyncio, sys
import openai

async def main(base_url):
    async with openai.AsyncOpenAI(base_url=base_url, max_retries=0, timeout=30) as client:
        reply = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": sys.argv[2]}],
            max_tokens=256,
            temperature=0,
        )
    print(reply.choices[0].message.content)

asyncio.run(main(sys.argv[1]))
"""

RUN_WITHOUT_FREEZE = """
import sys
from cascade.cli.main import main
sys.exit(main(["run", *sys.argv[1:]]))
"""

IMPORTS_OF_VALIDATE = """
import json, sys
from cascade.cli.main import main
code = main(["validate", sys.argv[1]])
print(json.dumps({"exit": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


@dataclass(frozen=True)
class Row:
    name: str
    command: list[str]
    baseline: str | None  # the row whose CPU this one's ratio is taken to


@dataclass(frozen=True)
class Measured:
    cpu_s: float
    wall_s: float


def cascade_command(*args: str) -> list[str]:
    """The `cascade` script next to this interpreter, as a user runs it (else `-m cascade.cli`)."""
    script = Path(sys.executable).parent / "cascade"
    found = str(script) if script.exists() else shutil.which("cascade")
    return [found, *args] if found else [sys.executable, "-m", "cascade.cli", *args]


def child_env(bytecode: Path) -> dict[str, str]:
    """The environment with dummy keys and none of the SDKs' endpoint variables, and compiled
    modules kept in `bytecode`, as an installed package keeps them (PYTHONDONTWRITEBYTECODE
    would have every run compile cascade's sources again)."""
    skip = ("_API_KEY", "_BASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.endswith(skip) and k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **KEYS, "PYTHONPYCACHEPREFIX": str(bytecode), "PYTHONWARNINGS": "ignore"}


def once(command: Sequence[str], env: dict[str, str]) -> Measured:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(cpu, wall)


def measure(rows: Sequence[Row], env: dict[str, str], runs: int) -> dict[str, Measured]:
    """Each row's median, its runs taken in rounds of one run of every row."""
    for row in rows:  # warm-up: bytecode and disk caches
        once(row.command, env)
    samples: dict[str, list[Measured]] = {row.name: [] for row in rows}
    for _ in range(runs):
        for row in rows:
            samples[row.name].append(once(row.command, env))
    return {
        name: Measured(statistics.median(m.cpu_s for m in got), statistics.median(m.wall_s for m in got))
        for name, got in samples.items()
    }


def write_configs(folder: Path, server: FakeProviderServer) -> tuple[Path, Path]:
    """The OpenAI-only config (for validate), and the same tiers on the fake server (for run)."""
    openai_only = folder / "openai-only.yaml"
    openai_only.write_text(yaml.safe_dump({"tiers": OPENAI_TIERS, "verifiers": VERIFIERS}, sort_keys=False))
    local = [{**tier, "base_url": server.openai_base_url, "timeout_s": 30} for tier in OPENAI_TIERS]
    on_server = folder / "openai-on-fake-server.yaml"
    on_server.write_text(yaml.safe_dump({"tiers": local, "verifiers": VERIFIERS}, sort_keys=False))
    return openai_only, on_server


def imports_of_validate(config: Path, env: dict[str, str]) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTS_OF_VALIDATE, str(config)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    if proc.returncode != 0:
        raise SystemExit(f"validate in a child failed:\n{proc.stderr}")
    found = json.loads(proc.stdout.splitlines()[-1])
    return int(found["exit"]), set(found["modules"])


def line(cells: tuple[str, ...]) -> str:
    return "  ".join(
        f"{c:<{w}}" if i in (0, 4) else f"{c:>{w}}"
        for i, (c, w) in enumerate(zip(cells, WIDTHS, strict=True))
    ).rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=9, help="measured runs of each command (default 9)")
    args = parser.parse_args()
    with FakeProviderServer() as server, tempfile.TemporaryDirectory() as tmp:
        env = child_env(Path(tmp) / "bytecode")
        server.default = Reply.text(ANSWER)
        openai_only, on_server = write_configs(Path(tmp), server)
        raw = [sys.executable, "-c", RAW_SDK, server.openai_base_url, PROMPT]
        rows = [
            Row("python -c pass", [sys.executable, "-c", "pass"], None),
            Row("python -c 'import openai'", [sys.executable, "-c", "import openai"], "python -c pass"),
            Row("cascade --help", cascade_command("--help"), "python -c pass"),
            Row(VALIDATE_OPENAI, cascade_command("validate", str(openai_only)), "python -c pass"),
            Row(
                "cascade validate (OpenAI + Anthropic)",
                cascade_command("validate", str(REPO / "configs" / "openai-to-anthropic.yaml")),
                "python -c pass",
            ),
            Row(RAW, raw, None),
            Row(RUN, cascade_command("run", str(on_server), PROMPT), RAW),
            Row("  raw SDK script, gc.freeze() at its end", [*raw[:2], RAW_SDK + FREEZE, *raw[3:]], RAW),
            Row(
                "  cascade run through main(), no freeze",
                [sys.executable, "-c", RUN_WITHOUT_FREEZE, str(on_server), PROMPT],
                RAW,
            ),
        ]
        print(f"median of {args.runs} rounds (after one warm-up run); CPU = user + sys of the child\n")
        measured = measure(rows, env, args.runs)
        print(line(("command", "CPU s", "wall s", "ratio", "(CPU against)")))
        for row in rows:
            m = measured[row.name]
            ratio = f"{m.cpu_s / measured[row.baseline].cpu_s:.2f}" if row.baseline else "-"
            print(line((row.name, f"{m.cpu_s:.3f}", f"{m.wall_s:.3f}", ratio, row.baseline or "")))
        code, modules = imports_of_validate(openai_only, env)
        if server.errors:
            raise SystemExit(f"the fake server failed:\n{server.errors[0]}")

    sdks = ", ".join(m for m in ("openai", "anthropic", "genai_prices") if m in modules) or "none"
    print(f"\nvalidate (OpenAI only) exited {code}; of openai, anthropic, genai_prices it imported: {sdks}")
    help_cpu = measured["cascade --help"].cpu_s
    run_ratio = (
        measured["cascade run (OpenAI only), one call"].cpu_s / measured["raw SDK script, one call"].cpu_s
    )
    goals = [
        (help_cpu < HELP_GOAL_S, f"cascade --help under {HELP_GOAL_S} s CPU: {help_cpu:.3f} s"),
        (
            "anthropic" not in modules,
            "validate imports no SDK it does not need: anthropic "
            + ("imported" if "anthropic" in modules else "not imported")
            + " for an OpenAI-only config",
        ),
        (run_ratio <= RUN_GOAL, f"cascade run within {RUN_GOAL}x the raw SDK script: {run_ratio:.2f}x"),
    ]
    print()
    for met, text in goals:
        print(f"{'PASS' if met else 'MISS'}  {text}")


if __name__ == "__main__":
    main()
