"""`cascade run --stream` on a terminal, as a person sees it: the screen is emulated (pyte)
from what the command wrote to a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import textwrap
from pathlib import Path

import pytest

from cascade.testing.server import FakeProviderServer, Reply
from tests.conftest import cli_command

pyte = pytest.importorskip("pyte")


def screen_after(args: list[str], env: dict[str, str]) -> list[str]:
    """The lines left on an 100x40 terminal once the command has run on it."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    written = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the command ended and closed its side
            break
        if not chunk:
            break
        written += chunk
    proc.wait(timeout=120)
    os.close(leader)
    screen = pyte.Screen(100, 40)
    pyte.ByteStream(screen).feed(written.replace(b"\n", b"\r\n"))
    return [line.rstrip() for line in screen.display]


def test_withdrawn_text_is_erased_and_events_stay_out_of_the_answer(tmp_path: Path):
    with FakeProviderServer(chunk_delay_s=0.01) as server:
        server.script("small", [Reply.text("Sure. I'm not sure, maybe 41 or so.", chunk_chars=4)])
        server.script("large", [Reply.text("It is 42, for certain.", chunk_chars=4)])
        config = tmp_path / "c.yaml"
        config.write_text(
            textwrap.dedent(f"""
            tiers:
              - {{name: small, provider: openai, model: small, base_url: '{server.openai_base_url}',
                  price: {{input_per_mtok: 1, output_per_mtok: 2}}}}
              - {{name: large, provider: openai, model: large, base_url: '{server.openai_base_url}',
                  price: {{input_per_mtok: 5, output_per_mtok: 10}}}}
            verifiers: [{{type: hedging}}]
            stream: {{restart_threshold_tokens: 100}}
            """)
        )
        env = {**os.environ, "OPENAI_API_KEY": "sk-test-terminal-123", "COLUMNS": "100", "TERM": "xterm"}
        lines = screen_after(
            cli_command("run", str(config), "6 x 7?", "--stream", "--policy", "restart"), env
        )
    shown = "\n".join(lines)
    assert "It is 42, for certain." in shown
    assert "maybe 41" not in shown  # withdrawn: erased from the screen, not left above a note
    answer_line = next(line for line in lines if "It is 42" in line)
    assert answer_line.strip() == "It is 42, for certain."  # no event printed into it
    assert "attempt_finished" in shown  # the events are there, on lines of their own
