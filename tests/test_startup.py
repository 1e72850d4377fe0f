"""A fast start: `import cascade` and `cascade --help` load no SDK and none of the heavy
libraries, and each command loads only what it uses. Checked by what lands in `sys.modules`
of a fresh interpreter, never by timing (`benchmarks/startup.py` measures the time)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cascade
from cascade.providers.signatures import SDK_METHODS, _from_source, sdk_parameters

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("openai", "anthropic", "genai_prices", "pydantic", "structlog", "rich", "httpx2", "httpx", "yaml")


def loaded_after(code: str, *, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages in `sys.modules` after a fresh interpreter runs `code`."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout.splitlines()[-1])
    return set(loaded)


def test_import_cascade_loads_no_sdk_and_no_heavy_library():
    assert set(HEAVY) & loaded_after("import cascade") == set()


def test_a_core_name_from_cascade_loads_only_the_core():
    loaded = loaded_after("from cascade import ConfigError, Request, Usage")
    assert set(HEAVY) & loaded == set()


def test_every_public_name_has_one_home_and_the_type_checker_sees_it():
    """`__all__`, the lazy table and the `if TYPE_CHECKING:` imports name the same things."""
    tree = ast.parse((REPO / "cascade" / "__init__.py").read_text(encoding="utf-8"))
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING")
    typed = {
        alias.name: node.module
        for node in guarded.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert typed == cascade._LAZY
    assert sorted(typed) == sorted(cascade.__all__)


def test_a_lazy_name_is_the_object_of_its_home_module():
    from cascade.engine import Cascade

    assert cascade.Cascade is Cascade
    assert "Cascade" in dir(cascade)


def test_the_parser_loads_no_command_implementation():
    """`cascade --help` builds every sub-parser; the commands' engines, rich and the SDKs load
    only in the handler of the command that runs."""
    loaded = loaded_after("from cascade.cli.main import parser\nparser().format_help()")
    assert set(HEAVY) & loaded == set()


def test_the_help_of_learn_share_says_the_calibration_default():
    from cascade.cli.calibrate import LEARN_SHARE_DEFAULT
    from cascade.offline.calibration.certify import LEARN_SHARE

    assert LEARN_SHARE_DEFAULT == LEARN_SHARE


OPENAI_ONLY = """
tiers:
  - {name: small, provider: openai, model: gpt-4o-mini, price: {input_per_mtok: 0.15, output_per_mtok: 0.6}}
  - {name: large, provider: openai, model: gpt-4o, price: {input_per_mtok: 2.5, output_per_mtok: 10}}
verifiers: [{type: non_empty}, {type: hedging}]
"""
KEYS = {"OPENAI_API_KEY": "sk-test-startup-1", "ANTHROPIC_API_KEY": "sk-ant-test-startup-2"}


def validated(config: Path) -> tuple[int, set[str]]:
    """The exit code of `cascade validate CONFIG` run in a fresh interpreter, and what it loaded."""
    code = f"from cascade.cli.main import main\nrc = main(['validate', {str(config)!r}])\nprint('exit', rc)"
    env = {name: value for name, value in os.environ.items() if not name.endswith(("_API_KEY", "_BASE_URL"))}
    proc = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, **KEYS},
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    *_, exit_line, modules = proc.stdout.splitlines()
    return int(exit_line.split()[1]), {m.split(".")[0] for m in json.loads(modules)}


def test_validate_loads_no_sdk_and_no_price_list_when_every_tier_is_priced(tmp_path):
    config = tmp_path / "openai-only.yaml"
    config.write_text(OPENAI_ONLY)
    code, loaded = validated(config)
    assert code == 0
    assert {"openai", "anthropic", "genai_prices", "httpx2"} & loaded == set()


def test_validate_checks_params_without_loading_the_sdks():
    code, loaded = validated(REPO / "configs" / "openai-to-anthropic.yaml")  # params on every tier
    assert code == 0
    assert {"openai", "anthropic"} & loaded == set()


def test_validate_still_refuses_an_unknown_param(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text(
        "tiers:\n  - {name: a, provider: anthropic, model: claude-opus-4-8, params: {max_token: 5}}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "cascade.cli", "validate", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **KEYS},
    )
    assert proc.returncode == 2
    assert "tiers.0.params.max_token: not a parameter of this API" in " ".join(proc.stderr.split())


@pytest.mark.parametrize("provider", sorted(SDK_METHODS))
def test_the_sdk_methods_parameters_read_from_source_are_the_loaded_methods(provider):
    method = SDK_METHODS[provider]
    from_source = _from_source(method)
    assert from_source is not None, f"{method.file} of {provider} no longer reads plainly"
    assert from_source == sdk_parameters(provider, load=True)


def test_a_plan_loads_only_the_sdks_its_tiers_use(tmp_path):
    config = tmp_path / "openai-only.yaml"
    config.write_text(OPENAI_ONLY)
    code = f"from cascade import Cascade\nCascade.from_config({str(config)!r}).close()"
    loaded = loaded_after(code, env={**os.environ, **KEYS})
    assert "openai" in loaded and {"anthropic", "genai_prices"} & loaded == set()
