"""What a person expects of a command line: --version, help from a bare command, global flags
on either side of the sub-command, and a quiet stop when the reader of stdout goes away."""

from __future__ import annotations

import subprocess
from importlib.metadata import version

from tests.conftest import cli_command, run_cli


def test_version_prints_the_installed_version():
    proc = run_cli("--version", timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"cascade {version('verified-cascade')}"


def test_a_bare_cascade_prints_help_and_succeeds():
    proc = run_cli(timeout=60)
    assert proc.returncode == 0 and "usage: cascade" in proc.stdout and "validate" in proc.stdout
    assert proc.stderr == ""


def test_global_flags_go_before_or_after_the_sub_command():
    before = run_cli("-q", "--log-format", "json", "demo", "--json", timeout=120)
    after = run_cli("demo", "--json", "-q", "--log-format", "json", timeout=120)
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert before.stdout.count("\n") == after.stdout.count("\n") > 1
    assert "attempt_finished" not in before.stderr + after.stderr  # -q held in both places


def test_a_closed_stdout_stops_the_command_quietly():
    proc = subprocess.Popen(
        cli_command("demo", "--json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line: `| head -0`
    errors = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and errors == ""


def test_every_command_has_a_summary_an_example_and_help_on_every_argument():
    import argparse

    from cascade.cli.main import parser

    top = parser()
    (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(commands.choices) >= 8
    for name, command in commands.choices.items():
        assert command.description and command.epilog and "examples:" in command.epilog, name
        assert f"cascade {name}" in command.epilog, name
        unexplained = [a.dest for a in command._actions if not a.help and a.dest != "help"]
        assert unexplained == [], f"{name}: {unexplained}"


def test_log_format_is_offered_only_where_there_are_events():
    for command, offered in (("run", True), ("batch", True), ("validate", False), ("report", False)):
        proc = run_cli(command, "--help", timeout=60)
        assert ("--log-format" in proc.stdout) is offered, command
    accepted = run_cli("validate", "no-such.yaml", "--log-format", "json", timeout=60)
    assert accepted.returncode == 2 and "unrecognized arguments" not in accepted.stderr  # taken all the same
