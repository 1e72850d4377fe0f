"""The parameters an SDK's create method takes, for checking a tier's `params` at load time.

Importing an SDK takes a second or more (`anthropic` alone about 1.6 s of CPU), and a plan
built only to be checked (`cascade validate`) calls nothing: there the method's signature
is read from the SDK's source, without running it. When the SDK is loaded already, or its
source is not where it is expected or does not read plainly (a decorator that makes the
signature, `*args`/`**kwargs`), the loaded method is asked instead, as `run` does anyway.
`tests/test_startup.py` holds the two ways equal on the installed SDKs.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path


@dataclass(frozen=True)
class SdkMethod:
    """Where the method lives: its module (and that module's file under the package), class, name."""

    package: str
    module: str
    file: str
    cls: str
    name: str = "create"


SDK_METHODS = {
    "openai": SdkMethod(
        "openai",
        "openai.resources.chat.completions",
        "resources/chat/completions/completions.py",
        "AsyncCompletions",
    ),
    "anthropic": SdkMethod(
        "anthropic", "anthropic.resources.messages", "resources/messages/messages.py", "AsyncMessages"
    ),
}


@cache
def sdk_parameters(provider: str, *, load: bool = False) -> frozenset[str]:
    """The names of the parameters of `provider`'s create method (`self` among them). With
    `load`, or when the SDK is loaded already, from the method itself; else from its source
    when that reads plainly, else from the method."""
    method = SDK_METHODS[provider]
    if not load and method.package not in sys.modules:
        found = _from_source(method)
        if found is not None:
            return found
    loaded = getattr(getattr(importlib.import_module(method.module), method.cls), method.name)
    return frozenset(inspect.signature(loaded).parameters)


def _from_source(method: SdkMethod) -> frozenset[str] | None:
    """The parameters of the method's implementation (not its `@overload`s) in the SDK's
    source, or None when the source is missing or anything about it is unexpected."""
    try:
        spec = importlib.util.find_spec(method.package)  # a top-level name: nothing is imported
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / method.file
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == method.cls), None)
    if cls is None:
        return None
    defs = [
        n
        for n in cls.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and n.name == method.name
        and not any(_is_overload(d) for d in n.decorator_list)
    ]
    if len(defs) != 1:
        return None
    args = defs[0].args
    if args.vararg is not None or args.kwarg is not None:  # the real signature is made elsewhere
        return None
    names = frozenset(a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs])
    return names if {"self", "model", "messages"} <= names else None


def _is_overload(decorator: ast.expr) -> bool:
    name = decorator.attr if isinstance(decorator, ast.Attribute) else getattr(decorator, "id", None)
    return name == "overload"
