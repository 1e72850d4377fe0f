"""The built-in verifiers are a plug-in package like any other: they import `cascade` itself
(its documented surface, `cascade.__all__`), never a submodule of it; the core imports no
plug-in; and the two distributions depend on each other one way only."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest

import cascade
from cascade.verification.registry import BUILTIN_TYPES

REPO = Path(__file__).resolve().parent.parent
PLUGIN = REPO / "verifiers" / "cascade_verifiers"
MODULES = sorted(PLUGIN.glob("*.py"))


def cascade_imports(source: str) -> tuple[list[str], list[str]]:
    """The `cascade.*` submodules a source imports, and the names it imports from `cascade`."""
    submodules, names = [], []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            submodules += [a.name for a in node.names if a.name.startswith("cascade.")]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if node.module.startswith("cascade."):
                submodules.append(node.module)
            elif node.module == "cascade":
                names += [a.name for a in node.names]
    return submodules, names


def test_the_check_catches_internal_imports_and_private_names():
    source = (
        "import cascade\n"
        "import cascade.runtime.call\n"
        "from cascade import Verdict, runtime\n"
        "from cascade.core.values import Candidate\n"
        "from cascade_verifiers.basic import NonEmptyVerifier\n"
    )
    submodules, names = cascade_imports(source)
    assert submodules == ["cascade.runtime.call", "cascade.core.values"]
    assert [n for n in names if n not in cascade.__all__] == ["runtime"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_a_builtin_imports_only_the_public_surface(path: Path):
    submodules, names = cascade_imports(path.read_text(encoding="utf-8"))
    assert submodules == [], f"{path.name} reaches into cascade's internals"
    assert [n for n in names if n not in cascade.__all__] == [], f"{path.name} imports unexported names"


def test_every_public_name_exists():
    assert [name for name in cascade.__all__ if not hasattr(cascade, name)] == []


def test_the_core_imports_no_plugin():
    for path in sorted((REPO / "cascade").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for module in modules:
                top = module.split(".")[0]
                assert top not in {"cascade_verifiers", "verifiers"}, f"{path} imports {module}"


def project(path: Path) -> dict[str, Any]:
    table: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    return table


def test_the_registry_knows_the_builtin_types_the_plugin_registers():
    registered = project(PLUGIN.parent / "pyproject.toml")["entry-points"]["cascade.verifiers"]
    assert set(registered) == BUILTIN_TYPES


def test_the_distributions_depend_on_each_other_one_way():
    main, plugin = project(REPO / "pyproject.toml"), project(PLUGIN.parent / "pyproject.toml")
    extras = [r for group in main["optional-dependencies"].values() for r in group]
    assert [r for r in [*main["dependencies"], *extras] if r.startswith(plugin["name"])] == []
    assert [r for r in plugin["dependencies"] if r.startswith(f"{main['name']}>=")] != []
