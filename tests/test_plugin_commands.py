"""Sub-commands of other packages: the `cascade.commands` entry points, and a built-in type
named when cascade-verifiers is not installed."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from cascade.cli import main
from cascade.config import VerifierConfig
from cascade.core.errors import ConfigError
from cascade.verification.registry import build_verifier

PLUGIN = """
from cascade import ConfigError


def register(subparsers):
    hello = subparsers.add_parser("hello", help="greet someone")
    hello.add_argument("name")
    hello.set_defaults(handler=greet)


def register_run(subparsers):
    subparsers.add_parser("run")


def greet(args, stderr):
    if args.name == "nobody":
        raise ConfigError("hello: nobody to greet")
    print(f"hello, {args.name} (quiet: {args.quiet})")
    return 0
"""


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """A plug-in with a working command, one that takes a built-in's name, and one that is not there."""
    (tmp_path / "hello_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [
        EntryPoint("hello", "hello_plugin:register", "cascade.commands"),
        EntryPoint("clash", "hello_plugin:register_run", "cascade.commands"),
        EntryPoint("gone", "no_such_plugin:register", "cascade.commands"),
    ]
    monkeypatch.setattr("cascade.cli.plugins.entry_points", lambda group: found)


def test_a_plugin_command_runs_with_the_common_options(plugins, capsys):
    assert main(["hello", "world", "-q"]) == 0
    out, err = capsys.readouterr()
    assert out == "hello, world (quiet: True)\n"
    assert err.splitlines() == [
        "cascade: plug-in command 'clash' (hello_plugin:register_run) left out: "
        "ArgumentError: argument COMMAND: conflicting subparser: run",
        "cascade: plug-in command 'gone' (no_such_plugin:register) left out: "
        "ModuleNotFoundError: No module named 'no_such_plugin'",
    ]


def test_a_plugin_commands_config_error_is_a_usage_error(plugins, capsys):
    assert main(["hello", "nobody"]) == 2
    assert "error: hello: nobody to greet" in capsys.readouterr().err


def test_help_lists_the_builtin_plugin_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "train-verifier" in capsys.readouterr().out


def test_a_builtin_type_without_cascade_verifiers_says_what_to_install(monkeypatch):
    monkeypatch.setattr("cascade.verification.registry.entry_points", lambda **_: [])
    with pytest.raises(ConfigError) as caught:
        build_verifier(VerifierConfig(type="hedging"))
    assert str(caught.value).startswith(
        "verifiers.type: 'hedging' is a built-in verifier of the cascade-verifiers package, "
        "which is not installed: pip install cascade-verifiers"
    )
    with pytest.raises(ConfigError, match=r"unknown verifier type 'hedgehog' \(known: none installed\)"):
        build_verifier(VerifierConfig(type="hedgehog"))
