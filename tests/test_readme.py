"""The README's code examples run as written."""

from __future__ import annotations

import asyncio
import os
import re
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

import cascade
from cascade import Candidate, Completion, Request, Usage
from cascade.cli import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def block_containing(text: str) -> str:
    return next(b for b in BLOCKS if text in b)


def test_the_scripted_cascade_example_runs():
    exec(block_containing("ScriptedProvider"), {})  # it asserts its own result


def test_the_custom_verifier_example_works():
    namespace: dict[str, Any] = {}
    exec(block_containing("class MaxWords"), namespace)
    verifier = namespace["MaxWords"](limit=3)
    long = Candidate(Request.from_prompt("q"), Completion("one two three four", "m", Usage()), "small")
    verdict = verifier(long)
    assert not verdict.passed and verdict.reason == "4 words (limit 3)"


def test_the_model_calling_verifier_example_bills_its_call():
    namespace: dict[str, Any] = {}
    exec(block_containing("class SecondOpinion"), namespace)
    price = {"input_per_mtok": 1, "output_per_mtok": 2}
    verifier = namespace["SecondOpinion"]({"provider": "simulated", "model": "gpt-4o-mini", "price": price})
    answer = Candidate(Request.from_prompt("q"), Completion("42", "m", Usage()), "small")
    verdict = asyncio.run(verifier(answer))
    # the simulated model answers an unknown prompt with a generic line, not "yes"
    assert not verdict.passed and verdict.reason.startswith("(simulated answer of gpt-4o-mini to: Is this")
    assert verdict.cost_usd > 0


def test_the_plugin_command_example_runs(tmp_path, monkeypatch, capsys):
    (tmp_path / "mycommands.py").write_text(block_containing("def register(subparsers)"))
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [EntryPoint("hello", "mycommands:register", "cascade.commands")]
    monkeypatch.setattr("cascade.cli.plugins.entry_points", lambda group: found)
    assert main(["hello", "you"]) == 0
    assert capsys.readouterr().out == "hello, you\n"


def test_every_public_name_is_documented() -> None:
    """`from cascade import ...` is the documented surface: each name it exports is in the README."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    undocumented = [n for n in cascade.__all__ if not re.search(rf"`{re.escape(n)}`", readme)]
    assert undocumented == []


def test_the_python_section_runs_on_its_config_pointed_at_the_loopback_provider(
    tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    """The first examples as written, with only the config's servers swapped for the loopback one."""
    import yaml

    from cascade.testing.server import FakeProviderServer, Reply

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-1234567")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-1234567")
    config = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "configs/openai-to-anthropic.yaml").read_text()
    )
    with FakeProviderServer() as server:
        for tier in config["tiers"]:
            for model in [tier, *tier.get("alternates", [])]:
                wire = model["provider"]
                model["base_url"] = server.openai_base_url if wire == "openai" else server.anthropic_base_url
        (tmp_path / "loopback.yaml").write_text(yaml.safe_dump(config))
        server.script(
            "gpt-4o-mini",
            [
                Reply.text('{"number": "A-17", "total": 42.5}'),
                Reply.tool_call({"city": "Oslo"}, name="get_weather"),
                Reply.text("It is 12 C in Oslo."),
            ],
        )
        session: dict[str, Any] = {}  # one reader's session: the second block follows the first
        for text in ("response_model=Invoice", "tools=[weather]"):
            code = block_containing(text).replace(
                "configs/openai-to-anthropic.yaml", str(tmp_path / "loopback.yaml")
            )
            exec(code, session)
        assert server.requests_for("gpt-4o-mini")[2].body["messages"][-1]["content"] == "12 C in Oslo"
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "A-17 42.5 True small" and printed[-1] == "It is 12 C in Oslo."


def test_the_verifier_table_lists_every_builtin() -> None:
    from cascade.verification.registry import BUILTIN_TYPES, available_verifiers

    assert set(available_verifiers()) >= BUILTIN_TYPES  # the table's list is the installed one
    missing = sorted(t for t in BUILTIN_TYPES if f"| `{t}` |" not in README)
    assert missing == []


SHELL_BLOCKS = re.findall(r"```bash\n(.*?)```", README, re.DOTALL)
# run by other tests or needing the recorded data of ../shared/data (the set-up lines: .ci/run)
NOT_HERE: tuple[str, ...] = ("python3 -m venv", "pip install", "export ")
ON_DATA = ("python benchmarks/", "cascade eval", "cascade train-verifier", "cascade calibrate")
NOT_HERE += ON_DATA


def readme_commands() -> list[str]:
    """Every command of the README's shell blocks, continuation lines joined."""
    lines = "\n".join(SHELL_BLOCKS).replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_the_readmes_provider_commands_run_as_written_against_the_loopback_provider(tmp_path: Path) -> None:
    """The commands as a reader types them, in order, in a folder of their own: only the
    SDKs' endpoint variables point at the loopback fake provider, and keys are set."""
    import os
    import subprocess
    import sys

    from cascade.testing.server import FakeProviderServer, Reply

    commands = [c for c in readme_commands() if not c.startswith(NOT_HERE)]
    assert len(commands) >= 9, commands
    (tmp_path / "configs").symlink_to(Path(__file__).resolve().parent.parent / "configs")
    bin_dir = str(Path(sys.executable).parent)  # where `cascade` is installed
    with FakeProviderServer() as server:
        server.default = Reply.text("Fine.")
        env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "OPENAI_BASE_URL": server.openai_base_url,
            "ANTHROPIC_BASE_URL": server.anthropic_base_url,
            "OPENAI_API_KEY": "sk-test-readme-1234567",
            "ANTHROPIC_API_KEY": "sk-ant-test-readme-1234567",
        }
        for command in commands:
            done = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr, command
        assert len(server.requests) >= 4  # the runs and the batch's items went out
    assert (tmp_path / "results.jsonl").read_text().count("\n") == 2


ROUTELLM = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "routellm"


@pytest.mark.skipif(not ROUTELLM.is_dir(), reason=f"{ROUTELLM} is absent")
def test_the_readmes_eval_and_calibrate_steps_run_as_written_on_the_recorded_data(tmp_path: Path) -> None:
    """From the data beside the repository to a calibrated config, each command as written."""
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "configs", tmp_path / "configs")  # learned.json is beside it, in tmp_path
    (tmp_path / "benchmarks").symlink_to(root / "benchmarks")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    commands = [c for c in readme_commands() if c.startswith(ON_DATA)]
    assert len(commands) == 5, commands
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "gsm8k.png").is_file() and (tmp_path / "tuned.yaml").is_file()


def test_the_streaming_example_runs_in_an_async_function_on_a_loopback_cascade(
    monkeypatch: Any, capsys: Any
) -> None:
    """The block is a loop over a cascade's stream, as it would sit in the reader's own
    coroutine: run it in one, on a two-tier cascade whose cheap tier hedges."""
    import textwrap

    from cascade import Cascade, StreamDelta, StreamRestart
    from cascade.config import parse_config
    from cascade.testing.server import FakeProviderServer, Reply
    from tests.conftest import loopback_tier

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-readme-1234567")
    code = "async def reader(cascade):\n" + textwrap.indent(block_containing("cascade.astream("), "    ")
    code += "    return result\n"
    namespace: dict[str, Any] = {"StreamDelta": StreamDelta, "StreamRestart": StreamRestart}
    exec(code, namespace)
    with FakeProviderServer() as server:
        server.script("small", [Reply.text("I'm not sure, maybe it grows.")])
        server.script("large", [Reply.text("It doubles the window each round trip.")])
        tiers = [loopback_tier(server, "small", "small"), loopback_tier(server, "large", "large")]
        cascade = Cascade.from_config(parse_config({"tiers": tiers, "verifiers": [{"type": "hedging"}]}))

        async def go() -> Any:
            async with cascade:
                return await namespace["reader"](cascade)

        result = asyncio.run(go())
    printed = capsys.readouterr().out
    assert result.output == "It doubles the window each round trip." and result.tier == "large"
    assert "[small failed: hedging" in printed and "restarting on large]" in printed
