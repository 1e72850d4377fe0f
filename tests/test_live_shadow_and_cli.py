"""A shadow cascade on live traffic, the live sections' config errors, and the commands that
tag requests, skip the cache and read a ledger back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cascade import Cascade
from cascade.cli.ledger_source import since_time
from cascade.config import parse_config
from cascade.core.errors import ConfigError
from cascade.live.store import SqliteStore
from cascade.runtime import portal
from tests.conftest import loopback_tier, run_cli
from tests.live_helpers import CHEAP, TOP, calls_to, live_cascade, live_config, live_of, serve

LEDGER = {"path": "spend.sqlite"}


def test_a_shadow_cascade_runs_beside_and_never_answers(fake_server, tmp_path):
    serve(fake_server, lambda model, prompt: "Paris." if model == CHEAP else "Paris, France.")
    candidate = {"tiers": [loopback_tier(fake_server, "only", TOP)]}
    (tmp_path / "candidate.yaml").write_text(yaml.safe_dump(candidate))
    shadow = {"config": "candidate.yaml", "sample": 1.0}
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, shadow=shadow) as cascade:
        results = [cascade.run(f"Capital of France, take {i}?", tags={"feature": "geo"}) for i in range(3)]
    assert all(r.output == "Paris." and r.tier == "small" for r in results)  # the live answer stands
    rows = SqliteStore(tmp_path / "spend.sqlite", create=False).select("shadows")
    assert len(rows) == 3 and calls_to(fake_server, TOP) == 3
    for row in rows:
        assert (row["live_tier"], row["shadow_tier"], row["agreed"]) == ("small", "only", False)
        assert row["shadow_usd"] > row["live_usd"] > 0 and row["tags"] == {"feature": "geo"}
    shown = run_cli("report", "--ledger", str(tmp_path / "spend.sqlite"), "--by", "feature", "--json")
    (geo,) = json.loads(shown.stdout)["groups"]
    assert geo["shadow_usd"] == pytest.approx(float(sum(row["shadow_usd"] for row in rows)))


def test_a_shadow_spends_no_more_than_its_daily_budget(fake_server, tmp_path):
    serve(fake_server)
    (tmp_path / "candidate.yaml").write_text(
        yaml.safe_dump({"tiers": [loopback_tier(fake_server, "x", TOP)]})
    )
    shadow = {"config": "candidate.yaml", "sample": 1.0, "max_usd_per_day": "0.0000001", "max_in_flight": 1}
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, shadow=shadow) as cascade:
        shadow_runner = live_of(cascade).shadow
        assert shadow_runner is not None
        for i in range(5):
            cascade.run(f"q{i}")
            portal.call(shadow_runner.background.drain)  # each shadow done before the next request
        counts = shadow_runner.background.counts
    assert counts.started == 1 and counts.skipped_budget == 4


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"audit": {"sample": 0.1}}, "audit and shadow write what they find to the ledger"),
        ({"ledger": {}}, "exactly one of `path`"),
        ({"ledger": {"path": "a", "url": "postgresql://x/y"}}, "exactly one of `path`"),
        ({"ledger": {"url": "mysql://x"}}, "ledger.url"),
        ({"ledger": LEDGER, "audit": {"sample": 0}}, "audit.sample"),
        ({"ledger": LEDGER, "audit": {"sample": 0.1, "against": "judge"}}, "needs a `judge:`"),
        (
            {"ledger": LEDGER, "audit": {"sample": 0.1, "judge": {"model": {}}}},
            "read only with against: judge",
        ),
        ({"cache": {"path": "c.sqlite", "ttl_s": 0}}, "cache.ttl_s"),
    ],
)
def test_a_broken_live_section_is_a_config_error_naming_it(fake_server, tmp_path, sections, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(live_config(fake_server, tmp_path, **sections), source="live.yaml")


def test_a_shadow_config_that_does_not_load_is_an_error_naming_its_file(fake_server, tmp_path):
    config = parse_config(live_config(fake_server, tmp_path, ledger=LEDGER, shadow="missing.yaml"))
    with pytest.raises(ConfigError, match=r"missing\.yaml"):
        Cascade.from_config(config, base_dir=tmp_path)


def test_since_reads_dates_times_and_ages():
    assert since_time("7d", now=1_000_000.0) == 1_000_000.0 - 7 * 86_400
    assert since_time("90m", now=1000.0 * 60) == 1000.0 * 60 - 90 * 60
    assert since_time("2026-12-01") == since_time("2026-12-01T00:00:00+00:00")
    with pytest.raises(ConfigError, match="--since 'last week'"):
        since_time("last week")


def write_config(fake_server, tmp_path: Path, **sections) -> Path:
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(live_config(fake_server, tmp_path, **sections)))
    return path


def test_run_tags_the_request_and_no_cache_skips_the_cache(fake_server, tmp_path):
    serve(fake_server)
    config = write_config(fake_server, tmp_path, ledger=LEDGER, cache={"path": "c.sqlite"})
    tagged = run_cli("run", str(config), "2 + 2?", "--tag", "user=ann", "--tag", "feature=math", "--json")
    assert tagged.returncode == 0, tagged.stderr
    assert json.loads(tagged.stdout)["tags"] == {"user": "ann", "feature": "math"}
    again = run_cli("run", str(config), "2 + 2?", "--json")
    fresh = run_cli("run", str(config), "2 + 2?", "--json", "--no-cache")
    assert (json.loads(again.stdout)["cache"], json.loads(fresh.stdout)["cache"]) == ("hit", None)
    bad = run_cli("run", str(config), "2 + 2?", "--tag", "no-equals-sign")
    assert bad.returncode == 2 and "expected NAME=VALUE" in bad.stderr
    rows = SqliteStore(tmp_path / "spend.sqlite", create=False).select("results")
    assert [r["cache"] for r in rows] == ["miss", "hit", None]


def test_batch_tags_land_in_the_output_and_the_ledger_report_by_feature(fake_server, tmp_path):
    serve(
        fake_server, lambda model, prompt: "I'm not sure." if model == CHEAP and "hard" in prompt else "Done."
    )
    config = write_config(fake_server, tmp_path, ledger=LEDGER)
    lines = [
        {"id": 1, "prompt": "easy a", "tags": {"feature": "search", "user": "ann"}},
        {"id": 2, "prompt": "hard b", "tags": {"feature": "chat"}},
        {"id": 3, "prompt": "easy c", "tags": {"feature": "search"}},
        {"id": 4, "prompt": "easy d", "tags": {"feature": ["not", "a", "string"]}},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out.jsonl"
    job = run_cli("batch", str(config), "--input", str(source), "--output", str(out), "--tag", "team=ops")
    assert job.returncode == 3, job.stderr  # a line in error needs a look
    records = {r.get("id") or r.get("input_id"): r for r in map(json.loads, out.read_text().splitlines())}
    assert records[1]["tags"] == {"team": "ops", "feature": "search", "user": "ann"}
    assert "tag 'feature' must be a string" in records[4]["error"]  # the line, and only it, in error
    report = run_cli("report", "--ledger", str(tmp_path / "spend.sqlite"), "--by", "feature", "--json")
    assert report.returncode == 0, report.stderr
    figures = json.loads(report.stdout)
    groups = {g["group"]: g for g in figures["groups"]}
    assert (groups["search"]["requests"], groups["chat"]["requests"]) == (2, 1)
    assert groups["chat"]["escalation_rate"] == 1.0 and groups["search"]["escalation_rate"] == 0.0
    assert figures["total"]["requests"] == 3 and {t["tier"] for t in figures["tiers"]} == {"small", "large"}
    spend = sum(g["spend_usd"] for g in figures["groups"])
    assert spend == pytest.approx(sum(r["cost"]["total_usd"] for r in records.values() if "cost" in r))
    table = run_cli("report", "--ledger", str(tmp_path / "spend.sqlite"), "--by", "user", "--since", "1d")
    assert table.returncode == 0 and "ann" in table.stdout and "Calls per tier" in table.stdout
    typo = run_cli("report", "--ledger", str(tmp_path / "spend.sqlite"), "--by", "featrue")
    assert (
        typo.returncode == 2 and "no result has that tag (group by: tier, model, day, feature" in typo.stderr
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report"], "give a batch output file or --ledger"),
        (["report", "--ledger", "nowhere.sqlite"], "no such ledger"),
        (["report", "out.jsonl", "--since", "1d"], "--since and --by read a ledger"),
        (["report", "out.jsonl", "--by", "user"], "--since and --by read a ledger"),
        (["audit", "--ledger", "nowhere.sqlite"], "no such ledger"),
        (["audit", "--ledger", "x.sqlite", "--limit", "2"], "--limit must be between 0 and 1"),
        (["audit", "--ledger", "x.sqlite", "--clear", "small", "--export", "x.jsonl"], "give it alone"),
    ],
)
def test_the_ledger_commands_refuse_what_they_cannot_read(tmp_path, args, message):
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_validate_shows_the_live_sections_and_checks_the_shadows_config(fake_server, tmp_path):
    (tmp_path / "candidate.yaml").write_text(
        yaml.safe_dump({"tiers": [loopback_tier(fake_server, "x", TOP)]})
    )
    url = "postgresql://ledger:s3cr3t-pw@127.0.0.1:1/db"
    good = write_config(
        fake_server, tmp_path, ledger={"url": url}, audit={"sample": 0.05}, shadow="candidate.yaml"
    )
    shown = run_cli("validate", str(good))
    assert shown.returncode == 0, shown.stderr
    assert (
        "audit: 5.0% of the answers below the top tier" in shown.stdout and "candidate.yaml" in shown.stdout
    )
    assert "s3cr3t-pw" not in shown.stdout + shown.stderr
    (tmp_path / "candidate.yaml").write_text("tiers: []\n")
    broken = run_cli("validate", str(good))
    assert broken.returncode == 2 and "shadow.config" in broken.stderr and "valid" not in broken.stdout
