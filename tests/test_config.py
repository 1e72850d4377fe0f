"""Config loading: the documented shape works; every mistake names the file and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cascade import Cascade, ConfigError, load_config
from cascade_verifiers.hedging import HedgingVerifier
from tests.conftest import run_cli

REPO = Path(__file__).resolve().parent.parent
ISSUE_SHAPE = """
tiers:
  - name: small
    provider: openai
    model: gpt-4o-mini
    base_url: http://127.0.0.1:8000/v1
    api_key_env: OPENAI_API_KEY
    price: {input_per_mtok: 0.15, output_per_mtok: 0.60}
    params: {max_tokens: 512, temperature: 0}
    timeout_s: 30
  - name: large
    provider: anthropic
    model: claude-opus-4-8
verifiers:
  - type: hedging
on_exhausted: return_best
max_cost_usd: 0.05
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cascade.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_the_documented_shape_loads_and_builds(tmp_path):
    config = load_config(write(tmp_path, ISSUE_SHAPE))
    assert [t.name for t in config.tiers] == ["small", "large"]
    assert config.tiers[0].params == {"max_tokens": 512, "temperature": 0}
    cascade = Cascade.from_config(config)
    assert [t.primary.model for t in cascade.tiers] == ["gpt-4o-mini", "claude-opus-4-8"]


@pytest.mark.parametrize(
    "path",
    sorted([*(REPO / "configs").glob("*.yaml"), REPO / "cascade" / "demo" / "demo.yaml"]),
    ids=lambda p: p.name,
)
def test_every_shipped_config_loads_and_builds(path, tmp_path):
    from cascade.offline.records import with_records

    base_dir = path.parent
    if "model_file: ../learned.json" in path.read_text():  # made by the README's train step
        base_dir = tmp_path / "configs"
        base_dir.mkdir()
        _train_a_learned_verifier(tmp_path / "learned.json", tmp_path / "recorded.jsonl")
    config = load_config(path)
    if any(t.provider == "replay" for t in config.tiers):  # replayed configs get their data at eval time
        records = tmp_path / "none.jsonl"
        records.write_text("")
        config = with_records(config, records)
    Cascade.from_config(config, base_dir=base_dir)


def _train_a_learned_verifier(out: Path, records: Path) -> None:
    """`cascade train-verifier` on a few recorded answers: a model file as the README makes one."""
    import json

    from cascade.cli import main

    rows = [
        {
            "id": i,
            "prompt": f"question {i}",
            "responses": {m: {"text": f"answer {i % 3}", "correct": i % 3 == 0} for m in ("a", "b")},
        }
        for i in range(40)
    ]
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["train-verifier", "--data", str(records), "--out", str(out), "-q"]) == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tiers: []", "tiers: List should have at least 1 item"),
        ("tiers:\n  - name: a\n    provider: openai\n", "tiers.0.model: Field required"),
        ("tiers:\n  - {name: a, provider: nope, model: m}\n", "tiers.0.provider"),
        (
            "tiers:\n  - {name: a, provider: openai, model: m, tmeout_s: 3}\n",
            "tiers.0.tmeout_s: Extra inputs are not permitted",
        ),
        (
            "tiers:\n  - {name: a, provider: openai, model: gpt-4o-mini}\non_exhausted: maybe\n",
            "on_exhausted",
        ),
        (
            "tiers:\n  - {name: a, provider: openai, model: gpt-4o-mini}\n"
            "  - {name: a, provider: openai, model: gpt-4o}\n",
            "tier names must be unique; repeated: a",
        ),
        ("tiers: [\n", "not valid YAML"),
        ("- just a list\n", "must be a mapping"),
    ],
)
def test_bad_configs_name_the_file_and_the_field(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_unknown_price_names_the_tier_field(tmp_path):
    path = write(tmp_path, "tiers:\n  - {name: a, provider: openai, model: my-local-llama}\n")
    with pytest.raises(ConfigError, match=r"tiers\.0\.price: no known price for model 'my-local-llama'"):
        Cascade.from_config(path)


def test_unknown_verifier_type_lists_the_known_ones(tmp_path):
    path = write(
        tmp_path,
        "tiers:\n  - {name: a, provider: simulated, model: gpt-4o-mini}\nverifiers:\n  - type: hedgign\n",
    )
    with pytest.raises(ConfigError, match=r"unknown verifier type 'hedgign' \(known: .*hedging"):
        Cascade.from_config(path)


def test_bad_verifier_setting_names_the_verifier(tmp_path):
    path = write(
        tmp_path,
        "tiers:\n  - {name: a, provider: simulated, model: gpt-4o-mini}\n"
        "verifiers:\n  - {type: hedging, treshold: 2}\n",
    )
    with pytest.raises(ConfigError, match=r"verifiers\.0 \(hedging\):.*treshold"):
        Cascade.from_config(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")


def cli(*args: str, stdin: str | None = None):
    return run_cli(*args, stdin=stdin, timeout=60)


def test_cli_validate_exits_2_with_field_and_no_traceback(tmp_path):
    path = write(tmp_path, "tiers:\n  - name: a\n    provider: openai\n")
    proc = cli("validate", str(path))
    assert proc.returncode == 2
    assert "tiers.0.model: Field required" in proc.stderr and str(path) in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def cli_with_keys(*args: str, **env: str | None):
    keys: dict[str, str | None] = {
        "OPENAI_API_KEY": "sk-test-validate-1",
        "ANTHROPIC_API_KEY": "sk-ant-test-2",
    }
    unset: dict[str, str | None] = {"OPENAI_BASE_URL": None, "ANTHROPIC_BASE_URL": None}
    return run_cli(*args, env={**keys, **unset, **env}, timeout=60)


def test_cli_validate_accepts_a_good_config(tmp_path):
    proc = cli_with_keys("validate", str(write(tmp_path, ISSUE_SHAPE)))
    assert proc.returncode == 0, proc.stderr
    assert "gpt-4o-mini" in proc.stdout and "claude-opus-4-8" in proc.stdout
    # each model's endpoint: the config's base_url, else the SDK's default
    assert "http://127.0.0.1:8000/v1" in proc.stdout and "https://api.anthropic.com" in proc.stdout
    assert "missing" not in proc.stderr


def test_cli_validate_exits_3_naming_a_missing_key(tmp_path):
    proc = cli_with_keys("validate", str(write(tmp_path, ISSUE_SHAPE)), ANTHROPIC_API_KEY=None)
    assert proc.returncode == 3, proc.stderr
    assert "ANTHROPIC_API_KEY not set" in proc.stdout  # in the table, and said below it
    assert "missing key: ANTHROPIC_API_KEY is not set: calls of large would fail" in " ".join(
        proc.stderr.split()
    )


def test_cli_validate_needs_no_key_for_a_server_of_ones_own(tmp_path):
    """With a base_url, or the SDK's BASE_URL variable, a placeholder is sent: no key is missing."""
    proc = cli_with_keys(
        "validate",
        str(write(tmp_path, ISSUE_SHAPE)),
        OPENAI_API_KEY=None,
        ANTHROPIC_API_KEY=None,
        ANTHROPIC_BASE_URL="http://127.0.0.1:4000",
    )
    assert proc.returncode == 0, proc.stderr
    assert "http://127.0.0.1:4000" in proc.stdout and "(ANTHROPIC_BASE_URL)" in proc.stdout
    assert "OPENAI_API_KEY not set" in proc.stdout and "not needed: own server" in proc.stdout


def test_cli_run_without_prompt_is_a_usage_error(tmp_path):
    proc = cli("run", str(REPO / "cascade" / "demo" / "demo.yaml"), stdin="")
    assert proc.returncode == 2 and "prompt is empty" in proc.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "tiers:\n  - {name: a, provider: openai, model: gpt-4o-mini, params: {max_token: 5}}\n",
            "tiers.0.params.max_token: not a parameter of this API",
        ),
        (
            "tiers:\n  - {name: a, provider: anthropic, model: claude-opus-4-8, params: {stream: true}}\n",
            "tiers.0.params.stream: set by cascade itself",
        ),
        (
            "tiers:\n  - {name: a, provider: simulated, model: gpt-4o-mini, examples: /no/such.jsonl}\n",
            "tiers.0.examples:",
        ),
        (
            "tiers:\n  - {name: a, provider: simulated, model: gpt-4o-mini}\nverifiers:\n  - type: nope\n",
            "verifiers.0.type: unknown verifier type 'nope'",
        ),
        (
            "tiers:\n  - {name: a, provider: simulated, model: gpt-4o-mini}\nverifiers:\n"
            "  - {type: hedging, add: [a, b]}\n",
            "verifiers.0 (hedging):",
        ),
        (
            "tiers:\n  - {name: a, provider: simulated, model: gpt-4o-mini}\nverifiers:\n"
            "  - {type: hedging, tiers: [b]}\n",
            "verifiers.0 names unknown tiers: b",
        ),
    ],
)
def test_build_errors_name_the_file_and_the_field(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        Cascade.from_config(path)
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tiers:\n  - {name: a, provider: openai, model: m, timeout_s: .inf}\n", "tiers.0.timeout_s"),
        ("tiers:\n  - {name: a, provider: openai, model: ' '}\n", "tiers.0.model"),
        ("tiers:\n  - name: a\n    name: b\n    provider: openai\n    model: m\n", "duplicate key 'name'"),
    ],
)
def test_suspicious_values_are_refused(tmp_path, text, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, text))


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("tiers: [caf\xe9]\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_per_tier_overrides_and_combinators_build_per_tier_chains(tmp_path):
    path = write(
        tmp_path,
        """
        tiers:
          - {name: small, provider: simulated, model: gpt-4o-mini}
          - {name: large, provider: simulated, model: claude-sonnet-4-5}
        verifiers:
          - type: non_empty
          - {type: hedging, threshold: 1.0, overrides: {small: {threshold: 0.3}}}
          - type: any
            skip_tiers: [large]
            verifiers: [{type: non_empty, min_chars: 500}, {type: hedging}]
        reask: 1
        run_all_verifiers: true
    """,
    )
    cascade = Cascade.from_config(path)
    small, large = cascade.plan.chain("small"), cascade.plan.chain("large")
    assert [getattr(v, "name", None) for v in small] == ["non_empty", "hedging", "any"]
    assert [getattr(v, "name", None) for v in large] == ["non_empty", "hedging"]
    assert isinstance(small[1], HedgingVerifier) and isinstance(large[1], HedgingVerifier)
    assert small[1].threshold == 0.3 and large[1].threshold == 1.0
    assert small[0] is large[0]  # no override: one instance shared
    assert cascade.plan.reask == {"small": 1, "large": 1} and not cascade.plan.stop_at_first_failure


def test_per_tier_overrides_and_skip_tiers_apply_at_run_time(tmp_path):
    examples = tmp_path / "ex.jsonl"
    examples.write_text(
        '{"id": "1", "prompt": "q", "responses": {"gpt-4o-mini": {"text": "Perhaps 4."},'
        ' "claude-sonnet-4-5": {"text": "Perhaps 4."}}}\n'
    )
    path = write(
        tmp_path,
        f"""
        tiers:
          - {{name: small, provider: simulated, model: gpt-4o-mini, examples: {examples}}}
          - {{name: large, provider: simulated, model: claude-sonnet-4-5, examples: {examples}}}
        verifiers:
          - {{type: hedging, overrides: {{small: {{threshold: 0.3}}}}}}
          - {{type: length, max_chars: 3, skip_tiers: [large]}}
    """,
    )
    with Cascade.from_config(path) as cascade:
        result = cascade.run("q")
    small, large = result.attempts
    assert [v.verifier for v in small.verdicts] == ["hedging"] and not small.verdicts[0].passed
    assert [v.verifier for v in large.verdicts] == [
        "hedging",
    ] and large.verdicts[0].passed
    assert result.verified and result.tier == "large"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{type: any, threshold: 2, verifiers: [{type: hedging}]}", "`any` takes only `verifiers`"),
        ("{type: any, verifiers: [{type: hedging, tiers: [large]}]}", "none of `any`'s verifiers applies"),
    ],
)
def test_combinator_mistakes_are_config_errors(tmp_path, entry, expected):
    path = write(
        tmp_path,
        f"""
        tiers:
          - {{name: small, provider: simulated, model: gpt-4o-mini}}
          - {{name: large, provider: simulated, model: claude-sonnet-4-5}}
        verifiers:
          - {entry}
    """,
    )
    with pytest.raises(ConfigError, match=expected):
        Cascade.from_config(path)


def test_a_verifier_module_that_fails_to_import_is_a_config_error(tmp_path, monkeypatch):
    (tmp_path / "badmod.py").write_text("def broken(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = write(
        tmp_path,
        "tiers:\n  - {name: a, provider: simulated, model: gpt-4o-mini}\n"
        "verifiers:\n  - type: 'badmod:check'\n",
    )
    with pytest.raises(
        ConfigError, match=r"verifiers\.0\.type: cannot import verifier 'badmod:check': SyntaxError"
    ):
        Cascade.from_config(path)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_endpoint_is_the_base_url_else_the_sdks_variable_else_the_sdks_default(provider, monkeypatch):
    import importlib

    from cascade.config import ModelConfig
    from cascade.config.build import SDK_ENDPOINTS, Endpoint, endpoint_of

    def source(config: ModelConfig) -> str:
        endpoint = endpoint_of(config)
        assert endpoint is not None
        return endpoint.source

    env_var, default = SDK_ENDPOINTS[provider]
    monkeypatch.delenv(env_var, raising=False)
    model = ModelConfig(provider=provider, model="m")
    own = model.model_copy(update={"base_url": "http://127.0.0.1:9/v1"})
    assert endpoint_of(model) == Endpoint(default, "default")
    assert endpoint_of(own) == Endpoint("http://127.0.0.1:9/v1", "base_url")
    monkeypatch.setenv(env_var, "")  # set but empty: as if unset
    assert source(model) == "default"
    monkeypatch.setenv(env_var, "http://127.0.0.1:4000")
    assert (source(model), source(own)) == (env_var, "base_url")
    # the default is the SDK's own, as it finds it with no base_url and no variable
    monkeypatch.delenv(env_var)
    sdk = importlib.import_module(provider)
    client = sdk.AsyncOpenAI(api_key="x") if provider == "openai" else sdk.AsyncAnthropic(api_key="x")
    assert str(client.base_url).rstrip("/") == default
