"""Keys never shown: not in answers, verdict reasons, `--json`, streamed text, batch output,
review or record files; not whole, not in pieces, not in the masked forms providers print.

The key here is not `sk-` shaped, so only knowing the key can hide it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.core.redaction import FRAGMENT_CHARS, StreamRedactor, read_key, redact
from cascade.testing.server import Reply
from tests.conftest import run_cli

KEY = "Zq81mXv0Pt9LcQ2wRy7uKe4HbN6dJ3sA"  # 32 characters, no `sk-`


def pieces_of(key: str, length: int = FRAGMENT_CHARS) -> list[str]:
    return [key[i : i + length] for i in range(len(key) - length + 1)]


def assert_nothing_of_the_key_in(text: str) -> None:
    leaked = [piece for piece in pieces_of(KEY) if piece in text]
    assert leaked == [], f"pieces of the key shown: {leaked[:3]}"


@pytest.fixture
def known_key(monkeypatch):
    monkeypatch.setenv("CASCADE_TEST_SECRET_KEY", KEY)
    assert read_key("CASCADE_TEST_SECRET_KEY") == KEY


# -- the redactor itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "echoed",
    [
        KEY,
        KEY[-14:],  # the last 14 characters
        KEY[10:22],  # a 12-character middle piece
        KEY[:8],
        f"{KEY[:4]}...{KEY[-4:]}",  # masked, as providers print a non-`sk-` key
        f"{KEY[:4]}\u2026{KEY[-4:]}",
        f"****{KEY[-4:]}",
        f"{KEY[:6]}********",
        f"{KEY[:3]}****...{KEY[-6:]}",  # as OpenAI prints one: sk-proj-****...wxyz
    ],
)
def test_a_key_a_piece_of_it_or_a_masked_form_is_redacted(known_key, echoed):
    text = f"Invalid API key: {echoed}. Check your settings."
    redacted = redact(text)
    assert redacted.startswith("Invalid API key: ***") and redacted.endswith(". Check your settings.")


def test_masked_forms_are_found_however_many_other_keys_are_known(known_key, monkeypatch):
    for n in range(40):
        monkeypatch.setenv(f"CASCADE_TEST_OTHER_KEY_{n}", f"other-{n:02d}-Lp9Vt4Rw8Kc3Nb6")
        read_key(f"CASCADE_TEST_OTHER_KEY_{n}")
    for echoed in (f"{KEY[:4]}...{KEY[-4:]}", f"****{KEY[-4:]}", f"{KEY[:6]}********"):
        assert redact(f"key {echoed} refused") == "key *** refused"
    assert redact("Wait... what? ****") == "Wait... what? ****"  # an ellipsis by no key is kept


def test_pieces_shorter_than_the_fragment_length_and_ordinary_text_are_left_alone(known_key):
    text = f"{KEY[:7]} and {KEY[-7:]} are too short to be the key; so is this sentence."
    assert redact(text) == text


def test_a_key_shaped_token_is_redacted_whole_even_when_a_known_key_begins_it(monkeypatch):
    monkeypatch.setenv("CASCADE_TEST_SHORT_KEY", "sk-test-key")
    read_key("CASCADE_TEST_SHORT_KEY")
    assert redact("echoed sk-test-key-SECRET123 here") == "echoed sk-*** here"


@settings(max_examples=200, deadline=None)
@given(
    before=st.text(max_size=30),
    start=st.integers(0, len(KEY) - FRAGMENT_CHARS),
    length=st.integers(FRAGMENT_CHARS, len(KEY)),
    after=st.text(max_size=30),
)
def test_any_piece_of_eight_or_more_characters_never_survives(before, start, length, after):
    os.environ["CASCADE_TEST_SECRET_KEY"] = KEY
    read_key("CASCADE_TEST_SECRET_KEY")
    assert_nothing_of_the_key_in(redact(before + KEY[start : start + length] + after))


@settings(max_examples=200, deadline=None)
@given(
    words=st.lists(st.sampled_from(["the", "key", "is", KEY, KEY[5:19], " ", "\n", "a" * 9]), max_size=12),
    cuts=st.lists(st.integers(1, 9), min_size=1, max_size=40),
    whole_lines=st.booleans(),
)
def test_streamed_text_is_redacted_however_it_is_cut(words, cuts, whole_lines):
    os.environ["CASCADE_TEST_SECRET_KEY"] = KEY
    read_key("CASCADE_TEST_SECRET_KEY")
    text = " ".join(words)
    redactor, shown, position, i = StreamRedactor(), "", 0, 0
    while position < len(text):
        step = cuts[i % len(cuts)]
        shown += redactor.feed(text[position : position + step], whole_lines=whole_lines)
        position, i = position + step, i + 1
        assert_nothing_of_the_key_in(shown)
        assert redact(text).startswith(shown)  # what was shown stands: the end only adds to it
    last = text.rfind("\n") if whole_lines else max(text.rfind(" "), text.rfind("\n")) + 1
    held = len(text) - max(last, 0)  # the last line (from its break), or the last word
    assert len(redact(text)) - len(shown) <= held  # all the rest was shown


# -- every output channel, through the real CLI ---------------------------------------------------


def config_file(tmp_path: Path, server) -> Path:
    path = tmp_path / "cascade.yaml"
    path.write_text(
        textwrap.dedent(f"""
        tiers:
          - name: small
            provider: openai
            model: gpt-4o-mini
            base_url: {server.openai_base_url}
            api_key_env: CASCADE_TEST_SECRET_KEY
            retry: {{max_attempts: 1, initial_wait_s: 0, max_wait_s: 1}}
          - name: large
            provider: openai
            model: gpt-4o
            base_url: {server.openai_base_url}
            api_key_env: CASCADE_TEST_SECRET_KEY
            retry: {{max_attempts: 1, initial_wait_s: 0, max_wait_s: 1}}
        verifiers:
          - type: hedging
    """)
    )
    return path


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={"CASCADE_TEST_SECRET_KEY": KEY})


ECHOING = f"I'm not sure, but your key is {KEY} (or {KEY[:4]}...{KEY[-4:]})."


def test_run_json_and_plain_never_print_an_echoed_key(tmp_path, fake_server):
    config = config_file(tmp_path, fake_server)
    for args in (("--json",), (), ("--stream",), ("--stream", "--json"), ("--stream", "--policy", "restart")):
        fake_server.script("gpt-4o-mini", [Reply.text(ECHOING, chunk_chars=3)])
        fake_server.script(
            "gpt-4o", [Reply.text(f"Paris. {KEY[3:20]} is a piece of your key.", chunk_chars=5)]
        )
        proc = cli("run", str(config), "Capital of France?", *args)
        assert proc.returncode == 0, proc.stderr
        assert "Paris." in proc.stdout
        assert_nothing_of_the_key_in(proc.stdout + proc.stderr)


def test_a_verdict_reason_that_quotes_the_key_is_redacted(tmp_path, fake_server):
    config = config_file(tmp_path, fake_server)
    fake_server.script("gpt-4o-mini", [Reply.text(f"I don't know {KEY}")])
    fake_server.script("gpt-4o", [Reply.text(f"I'm not sure {KEY}")])
    proc = cli("run", str(config), "q", "--json")
    result = json.loads(proc.stdout)
    assert proc.returncode == 3 and result["attempts"][0]["verdicts"][0]["passed"] is False
    assert_nothing_of_the_key_in(proc.stdout + proc.stderr)


def test_batch_output_review_and_record_files_hold_no_key(tmp_path, fake_server):
    config = config_file(tmp_path, fake_server)
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": 1, "prompt": "q1", "metadata": {"note": f"pasted {KEY}"}})
        + "\n"
        + json.dumps({"id": 2, "prompt": f"my key is {KEY}, what is it?"})
        + "\n"
    )
    fake_server.default = Reply.text(ECHOING)
    out = tmp_path / "out.jsonl"
    record = tmp_path / "recorded.jsonl"
    proc = cli("batch", str(config), "--input", str(source), "--output", str(out), "--record", str(record))
    assert proc.returncode == 3, proc.stderr  # unverified: every answer hedges
    written = [out, tmp_path / "out.review.jsonl", record]
    assert all(path.stat().st_size > 0 for path in written)
    for path in written:
        assert_nothing_of_the_key_in(path.read_text())
    assert_nothing_of_the_key_in(proc.stdout + proc.stderr)
    report = cli("report", str(out), "--json")
    assert_nothing_of_the_key_in(report.stdout + report.stderr)
    for line in out.read_text().splitlines():
        assert re.search(r"\*\*\*", line)  # redacted, not dropped
