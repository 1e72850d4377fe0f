"""A fast start: `import cascade` and `cascade --help` load no SDK and none of the heavy
libraries, and each command loads only what it uses. Checked by what lands in `sys.modules`
of a fresh interpreter, never by timing (`benchmarks/startup.py` measures the time)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import cascade

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
