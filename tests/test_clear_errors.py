"""Bad input gets a clear error naming the file and the field, exit 2, never a traceback:
a prompt that is not UTF-8, a read-only folder or a full disk, flags before the prompt, a
non-finite setting, an invalid schema file, and (accepted) a BOM on a JSONL file."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from cascade.batch.items import Item, LineError, read_items
from tests.conftest import cli_command

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "cascade" / "demo" / "demo.yaml"
ANSWER = "17 \u00d7 23 = 391."  # the demo's answer to "What is 17 * 23?"


def cli(*args: str, stdin: bytes | None = None, preexec=None, wrap: list[str] | None = None):
    command = [*(wrap or []), *cli_command(*args)]
    proc = subprocess.run(command, input=stdin, capture_output=True, timeout=120, preexec_fn=preexec)
    return proc.returncode, proc.stdout.decode(), " ".join(proc.stderr.decode().split())


def demo_items(path: Path, n: int = 3) -> Path:
    path.write_text("".join(json.dumps({"id": k, "prompt": "What is 17 * 23?"}) + "\n" for k in range(n)))
    return path


def test_a_prompt_on_stdin_that_is_not_utf8_is_a_usage_error():
    code, out, err = cli("run", str(DEMO), stdin=b"What is \xff\xfe 2 + 2?")
    assert code == 2 and "stdin: the prompt is not valid UTF-8 (byte 0xff at offset 8)" in err
    assert "Traceback" not in err and out == ""


def test_a_bom_on_stdin_is_no_part_of_the_prompt():
    code, out, err = cli("run", str(DEMO), "--json", stdin="\ufeffWhat is 17 * 23?".encode())
    assert code == 0, err
    assert json.loads(out)["output"] == ANSWER


@pytest.mark.parametrize(
    "args",
    [
        ("run", str(DEMO), "--json", "What is 17 * 23?"),
        ("run", "--json", str(DEMO), "What is 17 * 23?"),
        ("run", str(DEMO), "What is 17 * 23?", "--json"),
        ("run", str(DEMO), "-q", "--json", "What is 17 * 23?", "--log-format", "json"),
    ],
)
def test_flags_may_come_before_or_after_the_prompt(args):
    code, out, err = cli(*args)
    assert code == 0, err
    assert json.loads(out)["output"] == ANSWER


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("verifiers: [{type: hedging, threshold: .nan}]", "verifiers.0.threshold"),
        (
            "verifiers: [{type: judge, threshold: .inf, model: {provider: openai, model: m}}]",
            "verifiers.0.threshold",
        ),
        ("max_cost_usd: .nan", "max_cost_usd"),
        (
            "verifiers: [{type: any, verifiers: [{type: length, max_chars: -.inf}]}]",
            "verifiers.0.verifiers.0.max_chars",
        ),
    ],
)
def test_a_non_finite_setting_is_refused_naming_its_field(tmp_path, setting, field):
    config = tmp_path / "c.yaml"
    config.write_text(DEMO.read_text().split("verifiers:")[0] + setting + "\n")
    code, _, err = cli("validate", str(config))
    assert code == 2 and f"{config}: invalid config: {field}: must be a finite number" in err, err
    assert "Traceback" not in err


def test_a_non_finite_timeout_of_a_tier_is_refused_naming_its_field(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        DEMO.read_text().replace("model: gpt-4o-mini", "model: gpt-4o-mini\n    timeout_s: .inf", 1)
    )
    code, _, err = cli("validate", str(config))
    assert code == 2 and "tiers.0.timeout_s: must be a finite number" in err, err


def test_verifiers_built_in_code_refuse_non_finite_settings_too():
    from cascade_verifiers.basic import NonEmptyVerifier
    from cascade_verifiers.hedging import HedgingVerifier

    for build in (
        lambda: HedgingVerifier(threshold=float("nan")),
        lambda: NonEmptyVerifier(float("nan")),  # type: ignore[arg-type]  # a float on purpose
    ):
        with pytest.raises(ValueError, match="not nan"):
            build()


def test_a_schema_file_holding_an_invalid_schema_is_named(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"type": "objekt"}))
    config = tmp_path / "c.yaml"
    config.write_text(
        DEMO.read_text().split("verifiers:")[0] + "verifiers: [{type: json_schema, schema_file: bad.json}]\n"
    )
    code, _, err = cli("validate", str(config))
    assert code == 2 and "schema_file" in err and "bad.json" in err and "invalid JSON Schema" in err, err
    assert "Traceback" not in err


# -- batch input ---------------------------------------------------------------------------------


def test_a_bom_on_the_first_jsonl_line_is_accepted(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + b'{"id": 1, "prompt": "a"}\n{"id": 2, "prompt": "b"}\n')
    entries = list(read_items(source))
    assert [type(e) for e in entries] == [Item, Item] and entries[0].id == 1


def test_a_jsonl_line_that_is_not_utf8_is_an_error_of_that_line_only(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        b'{"id": 1, "prompt": "a"}\n{"id": 2, "prompt": "caf\xe9"}\n{"id": 3, "prompt": "c"}\n'
    )
    first, bad, last = read_items(source)
    assert isinstance(first, Item) and isinstance(last, Item) and last.id == 3
    assert isinstance(bad, LineError)
    assert bad.message == "line 2: not valid UTF-8 (byte 0xe9 at character 24)"


# -- files that cannot be written --------------------------------------------------------------------


def _limit_file_size() -> None:
    """In the child: files may grow to 1 MiB (a few hundred items), then writing fails
    (EFBIG) instead of killing it."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_a_state_that_cannot_grow_names_the_file_and_keeps_what_was_committed(tmp_path):
    source = demo_items(tmp_path / "in.jsonl", 2000)
    out = tmp_path / "out.jsonl"
    code, _, err = cli(
        "batch", str(DEMO), "--input", str(source), "--output", str(out), preexec=_limit_file_size
    )
    assert code == 2, err
    assert f"cannot write the job state {out}.state.sqlite" in err or f"cannot write {out}" in err, err
    assert "Traceback" not in err
    code, out_text, err = cli("batch", str(DEMO), "--input", str(source), "--output", str(out))  # room again
    assert code == 0, err
    resumed = " ".join(out_text.split())
    assert "items finished by an earlier run were not sent again" in resumed, resumed[-300:]
    assert len(out.read_text().splitlines()) == 2000


def _in_a_namespace() -> list[str] | None:
    """A command prefix running the rest in a mount namespace of its own, or None."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run([unshare, "-rm", "true"], capture_output=True, timeout=30)
    return [unshare, "-rm", "sh", "-c"] if probe.returncode == 0 else None


@pytest.mark.parametrize(
    ("options", "expected"), [("ro", "Read-only file system"), ("size=48k", "disk is full")]
)
def test_an_output_folder_that_is_read_only_or_full_is_named(tmp_path, options, expected):
    wrap = _in_a_namespace()
    if wrap is None:
        pytest.skip("no mount namespace here (unshare -rm) to make a read-only or full folder in")
    folder = tmp_path / "mounted"
    folder.mkdir()
    source = demo_items(tmp_path / "in.jsonl", 2000)
    out = folder / "out.jsonl"
    batch = cli_command("batch", str(DEMO), "--input", str(source), "--output", str(out))
    script = f"mount -t tmpfs -o {options} none {folder} && exec " + " ".join(f"'{a}'" for a in batch)
    proc = subprocess.run([*wrap, script], capture_output=True, timeout=300, env=os.environ.copy())
    err = " ".join(proc.stderr.decode().split())
    assert proc.returncode == 2, err
    assert str(folder) in err and expected in err and "Traceback" not in err
