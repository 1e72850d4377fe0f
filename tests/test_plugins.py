"""Third-party verifiers: found through the `cascade.verifiers` entry points, or as module:attr."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from subprocess import CompletedProcess

from cascade import Cascade
from cascade.config import parse_config
from tests.conftest import run_cli

PLUGIN = '''
"""A third-party verifier package: rejects answers that shout."""
from cascade import Candidate, Verdict


class NoShouting:
    name = "no_shouting"

    def __init__(self, max_caps_ratio: float = 0.5) -> None:
        self.max_caps_ratio = max_caps_ratio

    def __call__(self, candidate: Candidate) -> Verdict:
        letters = [c for c in candidate.text if c.isalpha()]
        ratio = sum(c.isupper() for c in letters) / max(len(letters), 1)
        return Verdict(self.name, ratio <= self.max_caps_ratio, f"{ratio:.0%} capitals", score=1 - ratio)


async def is_polite(candidate: Candidate) -> bool:
    return "please" in candidate.text.lower()
'''


def install_plugin(site: Path) -> None:
    """Lay the package out as pip would: the module plus its .dist-info with entry points."""
    (site / "shout_check.py").write_text(PLUGIN)
    info = site / "shout_check-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-check\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[cascade.verifiers]\nno_shouting = shout_check:NoShouting\n")


def test_an_installed_plugin_is_picked_up_from_its_entry_point(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)
    config = tmp_path / "c.yaml"
    config.write_text(
        textwrap.dedent("""
        tiers:
          - {name: small, provider: simulated, model: gpt-4o-mini, examples: EXAMPLES}
          - {name: large, provider: simulated, model: claude-sonnet-4-5, examples: EXAMPLES}
        verifiers:
          - {type: no_shouting, max_caps_ratio: 0.3}
    """).replace("EXAMPLES", str(tmp_path / "ex.jsonl"))
    )
    (tmp_path / "ex.jsonl").write_text(
        json.dumps(
            {
                "id": "1",
                "prompt": "hi",
                "responses": {
                    "gpt-4o-mini": {"text": "HELLO THERE"},
                    "claude-sonnet-4-5": {"text": "Hello there."},
                },
            }
        )
        + "\n"
    )
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    proc = run_cli("run", str(config), "hi", "--json", env={"PYTHONPATH": path}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["output"] == "Hello there."
    first = result["attempts"][0]["verdicts"][0]
    assert first == {**first, "verifier": "no_shouting", "passed": False, "reason": "100% capitals"}


def test_module_attr_names_sync_classes_and_async_functions(tmp_path, monkeypatch):
    (tmp_path / "shout_check.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    examples = tmp_path / "ex.jsonl"
    examples.write_text(
        json.dumps(
            {
                "id": "1",
                "prompt": "hi",
                "responses": {
                    "gpt-4o-mini": {"text": "Give me that."},
                    "claude-sonnet-4-5": {"text": "Please could you pass it?"},
                },
            }
        )
        + "\n"
    )
    tier = {"provider": "simulated", "examples": str(examples)}
    config = parse_config(
        {
            "tiers": [
                {"name": "small", "model": "gpt-4o-mini", **tier},
                {"name": "large", "model": "claude-sonnet-4-5", **tier},
            ],
            "verifiers": [{"type": "shout_check:NoShouting"}, {"type": "shout_check:is_polite"}],
        }
    )
    with Cascade.from_config(config) as cascade:
        result = cascade.run("hi")
    assert result.output == "Please could you pass it?"
    assert [v.verifier for v in result.attempts[0].verdicts] == ["no_shouting", "is_polite"]


PROVIDER_PLUGIN = '''
"""A third-party provider package: answers every request with its own text, reversed."""
from cascade import Completion, Request, Usage


class Mirror:
    def __init__(self, model: str) -> None:
        self.model = model

    async def complete(self, request: Request) -> Completion:
        text = request.messages[-1].content[::-1]
        return Completion(text, self.model, Usage(3, 3), finish_reason="stop")

    async def aclose(self) -> None:
        return None


def make(config):
    return Mirror(config.model)


def make_junk(config):
    return "not a provider"


def make_leaky(config):
    import os

    raise ValueError(f"the server refused key {os.environ[config.key_env]}")
'''


def test_a_provider_plugin_is_built_from_its_entry_point(tmp_path):
    site = tmp_path / "site"
    (site / "mirror-1.0.dist-info").mkdir(parents=True)
    (site / "mirror_provider.py").write_text(PROVIDER_PLUGIN)
    (site / "mirror-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: mirror\nVersion: 1.0\n"
    )
    (site / "mirror-1.0.dist-info" / "entry_points.txt").write_text(
        "[cascade.providers]\nmirror = mirror_provider:make\njunk = mirror_provider:make_junk\n"
        "leaky = mirror_provider:make_leaky\n"
    )
    price = "price: {input_per_mtok: 1, output_per_mtok: 1}"
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])

    def run(provider: str, key: str = "") -> CompletedProcess[str]:
        config = tmp_path / f"{provider}.yaml"
        config.write_text(f"tiers:\n  - {{name: only, provider: {provider}, model: m1, {price}{key}}}\n")
        env = {"PYTHONPATH": path, "MIRROR_API_KEY": "mirror-Zq8Vn3Kd7Lp2"}
        return run_cli("run", str(config), "olleh", "--json", env=env, timeout=60)

    proc = run("mirror")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"] == "hello"
    junk = run("junk")
    assert junk.returncode != 0 and "built a str, which is not a cascade.Provider" in junk.stderr
    unknown = run("nope")
    assert unknown.returncode != 0 and "unknown provider 'nope' (known: openai, anthropic" in unknown.stderr
    assert "mirror" in unknown.stderr and "Traceback" not in unknown.stderr + junk.stderr
    # the key of a plug-in's tier is hidden too, though the plug-in reads it itself
    leaky = run("leaky", key=", api_key_env: MIRROR_API_KEY")
    assert leaky.returncode == 2 and "the server refused key" in leaky.stderr
    assert "Zq8Vn3Kd7Lp2" not in leaky.stderr + leaky.stdout


def test_a_module_attr_verifier_is_found_beside_the_config(tmp_path, monkeypatch):
    """As the README's own example puts it: mychecks.py next to the YAML, no PYTHONPATH."""
    from cascade.engine import Cascade

    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "mychecks_beside.py").write_text(
        "from cascade import Verdict\n\n"
        "class MaxWords:\n"
        "    name = 'max_words'\n"
        "    def __init__(self, limit=200):\n"
        "        self.limit = limit\n"
        "    def __call__(self, candidate):\n"
        "        words = len(candidate.text.split())\n"
        "        return Verdict(self.name, words <= self.limit, f'{words} words')\n"
    )
    (folder / "c.yaml").write_text(
        "tiers: [{name: only, provider: simulated, model: gpt-4o-mini}]\n"
        "verifiers: [{type: 'mychecks_beside:MaxWords', limit: 1}]\n"
    )
    monkeypatch.chdir(tmp_path)  # not the config's folder
    monkeypatch.delitem(__import__("sys").modules, "mychecks_beside", raising=False)
    cascade = Cascade.from_config(folder / "c.yaml")
    (verifier,) = cascade.plan.chain("only")
    assert type(verifier).__name__ == "MaxWords" and verifier.limit == 1  # type: ignore[attr-defined]
