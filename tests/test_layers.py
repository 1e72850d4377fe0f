"""The package's imports run one way, from the command line down to the pure core.

Each module belongs to the first layer whose prefix it starts with; it may import modules
of its own layer or of layers below it, never above, and the module graph has no cycle.
Imports under `if TYPE_CHECKING:` count too: a type that must come from above is a sign
the code is in the wrong layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "cascade"

# lowest first; a module is in the first layer one of whose prefixes it starts with
LAYERS: list[tuple[str, ...]] = [
    ("cascade.core",),
    ("cascade.logs", "cascade.protocols", "cascade.config.schema", "cascade.config.load", "cascade.config"),
    ("cascade.providers", "cascade.testing"),
    ("cascade.runtime.ladder", "cascade.runtime.retry"),  # the tiers and their retry strategies
    ("cascade.verification",),
    ("cascade.runtime",),
    ("cascade.routing",),  # where a request's ladder starts: rules, a classifier, the learned router
    ("cascade.live",),  # the ledger, cache, audit and shadow around the runtime's drive
    ("cascade.config.build", "cascade.config.build_router", "cascade.config.build_live"),
    ("cascade.integrations.openai_client",),  # the facade's OpenAI shape, duck-typed on it
    ("cascade.engine",),
    ("cascade.batch", "cascade.offline"),
    ("cascade.cli",),
    ("cascade",),  # the package's __init__: the public surface, above everything it re-exports
]
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    def matches(prefix: str) -> bool:
        return module == prefix or module.startswith(prefix + ".")

    # the longest matching prefix decides, so `cascade.runtime.ladder` beats `cascade.runtime`
    best = max(
        ((len(p), rank) for rank, group in enumerate(LAYERS) for p in group if matches(p)),
        default=None,
    )
    assert best is not None, f"{module} is in no layer"
    return best[1]


def imports_of(path: Path, module: str) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "cascade")
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import (the house imports absolutely)"
            base = node.module or ""
            if base.split(".")[0] != "cascade":
                continue
            for alias in node.names:  # `from cascade.x import y` may name the submodule y
                sub = f"{base}.{alias.name}"
                found.add(sub if (ROOT.parent / sub.replace(".", "/")).with_suffix(".py").exists() else base)
    return found - {module}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p, module_name(p)) for p in sorted(ROOT.rglob("*.py"))}


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} (layer {layer_of(module)}) imports {dep} (layer {layer_of(dep)})"
        for module, deps in edges.items()
        for dep in sorted(deps)
        if dep in edges and layer_of(dep) > layer_of(module)
    ]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every back edge found by a depth-first walk, as the path that closes it."""
    state: dict[str, str] = {}
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == "open":
                found.append([*path[path.index(dep) :], dep])
            elif dep in edges and dep not in state:
                visit(dep, [*path, dep])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def test_every_module_is_in_a_layer() -> None:
    for module in graph():
        layer_of(module)


def test_imports_never_reach_up_a_layer() -> None:
    assert upward_imports(graph()) == []


def test_the_module_graph_has_no_cycle() -> None:
    assert cycles(graph()) == []


def test_the_checks_catch_an_upward_import_and_a_cycle() -> None:
    edges = {"cascade.core.values": {"cascade.engine"}, "cascade.engine": {"cascade.core.values"}}
    engine = layer_of("cascade.engine")
    assert upward_imports(edges) == [f"cascade.core.values (layer 0) imports cascade.engine (layer {engine})"]
    assert cycles(edges) == [["cascade.core.values", "cascade.engine", "cascade.core.values"]]
    assert (
        layer_of("cascade.runtime.ladder")
        < layer_of("cascade.verification.chain")
        < layer_of("cascade.runtime.call")
    )


PLUGINS = ROOT.parent / "verifiers" / "cascade_verifiers"  # the built-ins' own distribution


@pytest.mark.parametrize(
    "path",
    sorted([*ROOT.rglob("*.py"), *PLUGINS.rglob("*.py")]),
    ids=lambda p: str(p.relative_to(ROOT.parent)),
)
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, (
        f"{path.relative_to(ROOT.parent)} has {lines} lines (the house keeps ~{MAX_LINES})"
    )
