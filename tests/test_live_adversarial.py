"""Adversarial tests of the live quality loop: each one states a promise of the ledger, the
cache, the audit, the shadow cascade or the ledger commands, and breaks it on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import sqlite3
import subprocess
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, field_validator
from structlog.testing import capture_logs

from cascade import Cascade
from cascade.cli.render_live import audit_tables
from cascade.config import parse_config
from cascade.core.errors import ExhaustedError
from cascade.core.events import StreamDelta
from cascade.live.audit_figures import audit_figures
from cascade.live.rows import Row
from cascade.live.spend import ledger_report
from cascade.live.store import SqliteStore
from cascade.live.writer import LedgerWriter
from cascade.runtime import portal
from cascade.testing.server import FakeProviderServer, RecordedRequest, Reply
from tests.conftest import cli_command, loopback_tier, run_cli
from tests.live_helpers import (
    CHEAP,
    TOP,
    auditor_of,
    cache_of,
    calls_to,
    ledger_of,
    live_cascade,
    live_config,
    live_of,
    serve,
)

LEDGER = {"path": "spend.sqlite"}
CACHE = {"path": "cache.sqlite"}
KEY = "sk-live-abcdefghijklmnop1234"  # shaped like a key: `redact` knows it without being told
# an alarm after 5 audits that all disagree (the fewest whose bound can certify 0.5)
QUICK_ALARM = {"sample": 1.0, "max_false_accept": 0.5, "confidence": 0.95, "window": 10, "max_in_flight": 10}


def cheap_says_yes_top_says_no(model: str, prompt: str) -> str:
    return "Yes." if model == CHEAP else "No."


def ledger_rows(tmp_path: Path, table: str) -> list[dict[str, Any]]:
    store = SqliteStore(tmp_path / "spend.sqlite", create=False)
    try:
        return store.select(table)
    finally:
        store.close()


# -- the report's numbers -------------------------------------------------------------------


def test_cache_hits_are_not_calls_of_a_tier_in_the_report(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """One real call of the cheap tier and three cache hits: the tier was called once, and
    its latency is that call's (the report says hits are left out: nothing was called)."""
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, cache=CACHE) as cascade:
        cascade.run("What is 2 + 2?")
        assert cache_of(cascade).writer.flush()
        hits = [cascade.run("What is 2 + 2?").cache for _ in range(3)]
    assert hits == ["hit"] * 3
    report = ledger_report(
        "tier",
        ledger_rows(tmp_path, "results"),
        ledger_rows(tmp_path, "attempts"),
        ledger_rows(tmp_path, "audits"),
        ledger_rows(tmp_path, "alarms"),
    ).to_dict()
    (small,) = report["tiers"]
    assert small["calls"] == 1
    assert small["latency_p50_s"] is not None and small["latency_p50_s"] > 0


# -- secrets ------------------------------------------------------------------------------


def test_a_key_in_a_tag_never_reaches_the_alarms_table(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """A key pasted as a tag value is redacted in every ledger row: the results' and the
    audits' tags are, and so must be the drift alarm's group, which names the tag's slice."""
    serve(fake_server, cheap_says_yes_top_says_no)

    async def main() -> None:
        async with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=QUICK_ALARM) as cascade:
            for i in range(6):
                await cascade.arun(f"question {i}", tags={"user": KEY})
                await auditor_of(cascade).background.drain()
            assert auditor_of(cascade).monitor.state(("small", "")) == "drift"

    asyncio.run(main())
    alarms = ledger_rows(tmp_path, "alarms")
    assert alarms, "the alarm was raised"
    assert all(KEY not in json.dumps(row, default=str) for row in alarms)


# -- the cache never serves a broken answer -----------------------------------------------


def test_an_answer_the_audit_refuted_is_not_served_again_from_the_cache(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """The audit asked the top tier and it disagreed with the cheap tier's answer to this very
    request: serving that answer again, free and marked verified, accepts it silently."""
    serve(fake_server, cheap_says_yes_top_says_no)

    async def main() -> tuple[bool | None, str | None, str | None]:
        async with live_cascade(
            fake_server, tmp_path, ledger=LEDGER, cache=CACHE, audit={"sample": 1.0}
        ) as cascade:
            await cascade.arun("Is it safe?")
            await auditor_of(cascade).background.drain()
            assert ledger_of(cascade).flush() and cache_of(cascade).writer.flush()
            (audit,) = ledger_rows(tmp_path, "audits")
            again = await cascade.arun("Is it safe?")
            return audit["agreed"], again.cache, again.output

    agreed, cache, output = asyncio.run(main())
    assert agreed is False  # the top tier said otherwise, and the ledger knows it
    assert (cache, output) != ("hit", "Yes.")


def test_under_tighten_the_cache_does_not_serve_a_drifted_tiers_answer(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """`on_drift: tighten` takes a drifted tier out of service; its cached answers must go
    with it, or the tier goes on answering, free and unaudited, with the alarm up."""
    serve(fake_server, cheap_says_yes_top_says_no)
    audit = {**QUICK_ALARM, "sample": 0.0001, "seed": 1, "on_drift": "tighten"}

    async def main() -> tuple[str | None, str | None, str | None]:
        async with live_cascade(fake_server, tmp_path, ledger=LEDGER, cache=CACHE, audit=audit) as cascade:
            await cascade.arun("Is it safe?")  # answered by the cheap tier, cached
            assert cache_of(cascade).writer.flush()
            auditor = auditor_of(cascade)
            for _ in range(5):  # the audits of five other answers, every one a disagreement
                auditor.monitor.observe([("small", "")], False)
            assert auditor.drifted("small", {})
            fresh = await cascade.arun("Is it dangerous?")
            again = await cascade.arun("Is it safe?")
            return fresh.tier, again.cache, again.tier

    fresh_tier, cache, tier = asyncio.run(main())
    assert fresh_tier == "large"  # the drifted tier answers no more...
    assert (cache, tier) != ("hit", "small")  # ...not even from the cache


def answer_model(minimum: int) -> type[BaseModel]:
    """`Answer` as one release of an application defines it: the same class, the same JSON
    Schema, and a validator whose bound the next release raises."""

    class Answer(BaseModel):
        value: int

        @field_validator("value")
        @classmethod
        def _at_least(cls, value: int) -> int:
            if value < minimum:
                raise ValueError(f"value must be at least {minimum}")
            return value

    return Answer


def test_a_cached_answer_the_response_model_now_rejects_is_a_miss_not_a_failure(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """The model's validator was tightened (its JSON Schema, the cache key's part, is the
    same): without the cache the cascade escalates to a valid answer; the stale entry must
    not turn that request into an ExhaustedError."""
    serve(fake_server, lambda model, prompt: '{"value": 4}' if model == CHEAP else '{"value": 40}')
    with live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
        assert cascade.run("How many?", response_model=answer_model(0)).tier == "small"
        assert cache_of(cascade).writer.flush()
        uncached = cascade.run("How many?", response_model=answer_model(10), cache=False)
        assert uncached.verified and uncached.tier == "large"
        result = cascade.run("How many?", response_model=answer_model(10))  # raises ExhaustedError
    assert result.verified and result.output == '{"value": 40}'


HOUSE_RULES = "def check(candidate):\n    return {rule}\n"


def test_editing_a_verifier_module_beside_the_config_invalidates_the_cache(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """A `module:attr` verifier is looked for beside the config: editing that file changes
    the rules as much as editing a `*_file` does, so answers cached under the old rules must
    not be served under the new ones."""
    serve(fake_server, cheap_says_yes_top_says_no)
    config = live_config(fake_server, tmp_path, cache=CACHE)
    config["verifiers"] = [{"type": "house_rules:check"}]
    (tmp_path / "cascade.yaml").write_text(yaml.safe_dump(config))
    rules = tmp_path / "house_rules.py"
    env = {"PYTHONDONTWRITEBYTECODE": "1"}

    def ask() -> dict[str, Any]:
        proc = run_cli(
            "run", str(tmp_path / "cascade.yaml"), "Is it safe?", "--json", "-q", env=env, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        answer: dict[str, Any] = json.loads(proc.stdout)
        return answer

    rules.write_text(HOUSE_RULES.format(rule="True"))
    assert ask()["output"] == "Yes."
    rules.write_text(HOUSE_RULES.format(rule='"Yes" not in candidate.text  # the new rule'))
    again = ask()
    assert (again["cache"], again["output"]) != ("hit", "Yes.")  # the new rule rejects "Yes."


# -- budgets and the caller's wait ---------------------------------------------------------


def test_the_shadows_daily_budget_survives_a_restart(fake_server: FakeProviderServer, tmp_path: Path) -> None:
    """The day's shadow spend is in the ledger: a cascade restarted the same day must not
    begin the day's budget again (the audit's budget is read back; the shadow's is not)."""
    serve(fake_server)
    (tmp_path / "candidate.yaml").write_text(
        yaml.safe_dump({"tiers": [loopback_tier(fake_server, "x", TOP)]})
    )
    shadow = {"config": "candidate.yaml", "sample": 1.0, "max_usd_per_day": "0.0000001", "max_in_flight": 1}
    started = []
    for restart in range(3):
        with live_cascade(fake_server, tmp_path, ledger=LEDGER, shadow=shadow) as cascade:
            runner = live_of(cascade).shadow
            assert runner is not None
            cascade.run(f"question {restart}")
            portal.call(runner.background.drain)
            started.append(runner.background.counts.started)
    spent = sum(row["shadow_usd"] for row in ledger_rows(tmp_path, "shadows"))
    assert spent > Decimal("0.0000001")  # the first shadow alone spent the day's budget
    assert started == [1, 0, 0]


def test_an_audit_never_makes_a_live_request_wait_for_a_rate_limit(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """The top tier allows 30 requests a minute (one every 2 s). An audit in flight must not
    take the slot a live request then queues two seconds for."""
    serve(fake_server)
    config = live_config(fake_server, tmp_path, ledger=LEDGER, audit={"sample": 1.0})
    config["tiers"][1]["rate_limit"] = {"requests_per_minute": 30}

    async def main() -> float:
        async with Cascade.from_config(parse_config(config), base_dir=tmp_path) as cascade:
            assert (await cascade.arun("Answered by the cheap tier, then audited")).tier == "small"
            await asyncio.sleep(0.1)  # the audit's call of the top tier goes out
            live = await cascade.arun("A question for the top tier", min_tier="large")
            return live.attempts[0].queued_s

    assert asyncio.run(main()) < 0.5


def test_closing_the_ledger_writer_keeps_to_its_timeout_when_the_store_is_stuck() -> None:
    """A store that hangs (a PostgreSQL insert waiting on a lock) and a full queue: `close`
    (and with it `Cascade.close` and the exit handler) must give up after its timeout, not
    wait for ever to hand the writer its stop."""
    release, inside = threading.Event(), threading.Event()

    class StuckStore:
        def insert(self, rows: Sequence[Row]) -> None:
            inside.set()
            release.wait(30)

        def close(self) -> None:
            pass

    writer = LedgerWriter(StuckStore, where="stuck", max_pending=1)
    writer.put([Row("alarms", ())])
    assert inside.wait(5)  # the writer is in the stuck insert
    writer.put([Row("alarms", ())])  # the queue is full
    closing = threading.Thread(target=writer.close, kwargs={"timeout": 0.5}, daemon=True)
    closing.start()
    closing.join(5)
    hung = closing.is_alive()
    release.set()
    assert not hung, "close(timeout=0.5) was still waiting after 5 s"


# -- secrets in the ledger's url ------------------------------------------------------------


def test_a_ledger_urls_ssl_key_password_is_never_shown(tmp_path: Path) -> None:
    """`sslpassword` (libpq's password of the client key) is as secret as `password`: the
    error naming a server that cannot be reached must not print it."""
    url = "postgresql://bob@127.0.0.1:1/ledger?sslmode=disable&sslpassword=Tr0ub4dor-and-3"
    proc = run_cli("report", "--ledger", url, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "127.0.0.1" in proc.stderr  # the server is named...
    assert "Tr0ub4dor" not in proc.stdout + proc.stderr  # ...not how to log in to it


# -- bad input: clear errors, whatever the cache holds -------------------------------------


def test_an_unknown_stream_policy_is_refused_even_when_the_answer_is_cached(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """The same call is a ValueError on a miss; a hit must not accept it without a word."""
    serve(fake_server)

    async def main() -> None:
        async with live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
            with pytest.raises(ValueError, match="unknown stream policy"):
                async for _ in cascade.astream("What is 3 + 3?", policy="bogus"):  # type: ignore[arg-type]
                    pass  # a miss: refused
            await cascade.arun("What is 2 + 2?")
            assert cache_of(cascade).writer.flush()
            with pytest.raises(ValueError, match="unknown stream policy"):
                async for _ in cascade.astream("What is 2 + 2?", policy="bogus"):  # type: ignore[arg-type]
                    pass  # a hit: must be refused the same

    asyncio.run(main())


def test_a_tag_value_with_brackets_does_not_break_the_report_table(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """Tags are the caller's text (user names, features): `[/]` is a valid value, and the
    report's table must show it, not fail on it as console markup."""
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, ledger=LEDGER) as cascade:
        cascade.run("What is 2 + 2?", tags={"user": "[/]"})
        cascade.run("What is 3 + 3?", tags={"user": "[bold]bob"})
    proc = run_cli(
        "report", "--ledger", str(tmp_path / "spend.sqlite"), "--by", "user", env={"COLUMNS": "200"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "[/]" in proc.stdout and "[bold]bob" in proc.stdout


def test_a_malformed_ledger_row_is_a_clear_error_naming_the_ledger(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """A ledger whose tags column was edited by hand (or written by something else) is bad
    input: a usage error that names the file, not an internal error."""
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, ledger=LEDGER) as cascade:
        cascade.run("What is 2 + 2?")
    db = sqlite3.connect(tmp_path / "spend.sqlite")
    with db:
        db.execute("UPDATE results SET tags = 'feature=search'")
    db.close()
    proc = run_cli("report", "--ledger", str(tmp_path / "spend.sqlite"))
    assert proc.returncode == 2, proc.stderr
    assert "internal error" not in proc.stderr and "spend.sqlite" in proc.stderr


def test_validate_refuses_a_config_whose_shadow_file_is_missing(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """`cascade run` refuses this config (the shadow's file is not there); `cascade validate`,
    whose job is to say so without calling a model, must not call it valid."""
    config = live_config(fake_server, tmp_path, ledger=LEDGER, shadow="candidate-v2.yaml")
    (tmp_path / "cascade.yaml").write_text(yaml.safe_dump(config))
    run = run_cli("run", str(tmp_path / "cascade.yaml"), "hello", timeout=60)
    assert run.returncode == 2 and "candidate-v2.yaml" in run.stderr
    validated = run_cli("validate", str(tmp_path / "cascade.yaml"), timeout=60)
    assert validated.returncode == 2, validated.stdout
    assert "candidate-v2.yaml" in validated.stderr


# -- what is paid for is recorded ------------------------------------------------------------


def test_a_stream_the_caller_abandons_still_records_what_it_paid_for(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """A client that goes away after the first words (a closed browser tab) leaves a call
    that was made and billed: the ledger is an account, and must have its row."""
    serve(fake_server, lambda model, prompt: "word " * 40)

    async def main() -> None:
        async with (
            live_cascade(fake_server, tmp_path, ledger=LEDGER) as cascade,
            contextlib.aclosing(cascade.astream("Tell me a story.")) as events,
        ):
            async for event in events:
                if isinstance(event, StreamDelta):
                    break  # the client is gone

    asyncio.run(main())
    assert calls_to(fake_server, CHEAP) == 1  # the call was made
    assert (tmp_path / "spend.sqlite").exists(), "no row was ever written"
    assert len(ledger_rows(tmp_path, "results")) == 1


def test_rows_of_a_request_made_after_close_are_counted_not_lost(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """`put` after the writer stopped drops the rows without counting them: the promise is
    that a row not written is logged and counted."""
    serve(fake_server)
    cascade = live_cascade(fake_server, tmp_path, ledger=LEDGER)
    cascade.run("What is 2 + 2?")
    cascade.close()
    ledger = ledger_of(cascade)
    before = ledger.counts.written + ledger.counts.dropped
    with contextlib.suppress(Exception):  # the closed providers fail it: it is recorded anyway
        cascade.run("What is 3 + 3?")
    assert ledger.counts.written + ledger.counts.dropped > before


# -- the cache never fails a request ---------------------------------------------------------

DATED_CHECK = """
import datetime

from cascade import Candidate, Verdict


def check(candidate: Candidate) -> Verdict:
    return Verdict("dated", True, "names a day", parsed={"day": datetime.date(2026, 1, 1)})
"""


def test_an_answer_whose_parsed_data_is_not_json_is_still_returned_with_a_cache(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """A plug-in check may extract a date, a Decimal, a set; storing that answer in the cache
    is the cache's business, and must not fail the request that was answered and verified."""
    serve(fake_server)
    (tmp_path / "dated_check.py").write_text(DATED_CHECK)
    config = live_config(fake_server, tmp_path, cache=CACHE)
    config["verifiers"] = [{"type": "dated_check:check"}]
    with Cascade.from_config(parse_config(config), base_dir=tmp_path) as cascade:
        assert cascade.run("Which day?", cache=False).verified  # fine without the cache
        result = cascade.run("Which day?")  # TypeError: Object of type date is not JSON serializable
    assert result.verified and result.cache == "miss"


def test_a_malformed_cache_entry_is_a_miss_not_an_error(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """An entry another version of cascade wrote (or a file edited by hand) is unreadable:
    the cache steps aside, as it does for a file it cannot open."""
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
        cascade.run("What is 2 + 2?")
        assert cache_of(cascade).writer.flush()
        db = sqlite3.connect(tmp_path / "cache.sqlite")
        with db:
            db.execute("""UPDATE answers SET value = '{"output": "4"}'""")
        db.close()
        result = cascade.run("What is 2 + 2?")  # KeyError: 'request_id'
    assert result.verified and result.cache == "miss"


# -- tags ------------------------------------------------------------------------------------


def test_a_tag_name_is_bounded_like_a_tag_value(fake_server: FakeProviderServer, tmp_path: Path) -> None:
    """Values are held to MAX_TAG_CHARS, names to nothing: a 100,000-character name goes into
    every ledger row of the request, and into the name of its drift slice."""
    serve(fake_server)
    with (
        live_cascade(fake_server, tmp_path, ledger=LEDGER) as cascade,
        pytest.raises(ValueError, match="tag"),
    ):
        cascade.run("What is 2 + 2?", tags={"k" * 100_000: "v"})


# -- the drift alarm across restarts -------------------------------------------------------


def test_an_alarm_is_not_forgotten_when_an_unrelated_setting_changes(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """The alarm is cleared by hand once the tier is recalibrated (`cascade audit --clear`);
    a restart under a config whose top tier merely got a longer timeout must still keep the
    drifted cheap tier out of service (the ledger, and `cascade audit`, say it is up)."""
    serve(fake_server, cheap_says_yes_top_says_no)
    audit = {**QUICK_ALARM, "on_drift": "tighten"}

    async def drift() -> None:
        async with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit) as cascade:
            for i in range(6):
                await cascade.arun(f"question {i}")
                await auditor_of(cascade).background.drain()
            assert auditor_of(cascade).drifted("small", {})

    asyncio.run(drift())
    config = live_config(fake_server, tmp_path, ledger=LEDGER, audit=audit)
    config["tiers"][1]["timeout_s"] = 30  # nothing to do with the cheap tier's answers
    shown = run_cli("audit", "--ledger", str(tmp_path / "spend.sqlite"), "--json")
    assert ("small", "(all)") in {(a["tier"], a["group"]) for a in json.loads(shown.stdout)["drift_alarms"]}
    with Cascade.from_config(parse_config(config), base_dir=tmp_path) as cascade:
        assert cascade.run("a new question").tier == "large"


# -- one request, one row --------------------------------------------------------------------


class Count(BaseModel):
    value: int


def test_a_request_with_no_valid_response_model_instance_is_recorded_once(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """No tier gives a valid `Count`: the call raises ExhaustedError, and its one result (what
    its attempts cost) is one row, or the report bills the request twice."""
    serve(fake_server, lambda model, prompt: "I would rather not write JSON.")
    with (
        live_cascade(fake_server, tmp_path, ledger=LEDGER) as cascade,
        pytest.raises(ExhaustedError) as raised,
    ):
        cascade.run("How many?", response_model=Count)
    rows = ledger_rows(tmp_path, "results")
    assert [r["request_id"] for r in rows] == [raised.value.result.request_id]
    assert sum(r["total_usd"] for r in rows) == raised.value.result.cost.total_usd


# -- two processes on one ledger ---------------------------------------------------------------


def test_two_gateways_on_one_ledger_share_the_audits_daily_budget(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """Gateways on several machines share a ledger (that is what PostgreSQL is for). The day's
    audit budget is the config's, not the config's times the number of gateways: once one has
    spent it, and the ledger says so, the other starts no audit."""
    serve(fake_server)
    audit = {"sample": 1.0, "max_usd_per_day": "0.0000001"}
    first = live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit)
    second = live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit)
    try:
        first.run("question one")
        portal.call(auditor_of(first).background.drain)
        assert ledger_of(first).flush()
        assert sum(a["audit_usd"] for a in ledger_rows(tmp_path, "audits")) > Decimal("0.0000001")
        second.run("question two")
        started = auditor_of(second).background.counts.started
    finally:
        first.close()
        second.close()
    assert started == 0


def test_an_alarm_a_restart_raises_again_is_shown_by_cascade_audit(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """The alarm was cleared, the old gateway went on auditing (a clear takes effect on
    restart) and the tier went on disagreeing. The restarted gateway replays those audits,
    is in drift and keeps the tier out of service; `cascade audit` must say an alarm is up,
    not that none is (the replay raises it without a row or a log line)."""
    serve(fake_server, cheap_says_yes_top_says_no)
    audit = {**QUICK_ALARM, "on_drift": "tighten"}
    ledger = str(tmp_path / "spend.sqlite")

    async def audited(cascade: Cascade, prompts: range) -> None:
        for i in prompts:
            await cascade.arun(f"question {i}")
            await auditor_of(cascade).background.drain()

    async def old_gateway() -> None:
        async with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit) as cascade:
            await audited(cascade, range(6))
            assert ledger_of(cascade).flush()
            cleared = await asyncio.to_thread(run_cli, "audit", "--ledger", ledger, "--clear", "small")
            assert cleared.returncode == 0, cleared.stderr
            live_of(cascade).tighten = False  # it still has its alarm up: let the cheap tier answer
            await audited(cascade, range(6, 12))

    asyncio.run(old_gateway())
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit) as restarted:
        assert auditor_of(restarted).drifted("small", {})
        assert restarted.run("a new question").tier == "large"
    shown = run_cli("audit", "--ledger", ledger, "--json")
    assert ("small", "(all)") in {(a["tier"], a["group"]) for a in json.loads(shown.stdout)["drift_alarms"]}


# -- the ledger commands on what a ledger may hold ----------------------------------------------


def test_a_report_with_nothing_since_then_is_an_empty_report_not_a_crash(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """`--since 1h` after a quiet hour (or a ledger not written to yet): no group to show."""
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, ledger=LEDGER) as cascade:
        cascade.run("What is 2 + 2?")
    proc = run_cli("report", "--ledger", str(tmp_path / "spend.sqlite"), "--since", "2099-01-01")
    assert proc.returncode == 0, proc.stderr  # internal error: IndexError: list index out of range


def test_clearing_an_alarm_on_a_tier_the_ledger_never_saw_is_refused(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """`--clear smal` (a typo of `small`) says it cleared an alarm that does not exist and
    exits 0, while the alarm on `small` stays up: a usage error naming the tiers audited."""
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit={"sample": 1.0}) as cascade:
        cascade.run("What is 2 + 2?")
    proc = run_cli("audit", "--ledger", str(tmp_path / "spend.sqlite"), "--clear", "smal")
    assert proc.returncode == 2, proc.stderr
    assert "small" in proc.stderr


def test_a_key_given_as_a_tag_by_mistake_is_not_echoed(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """`--tag sk-...` (the NAME= forgotten): the usage error must not print the key."""
    (tmp_path / "cascade.yaml").write_text(yaml.safe_dump(live_config(fake_server, tmp_path, ledger=LEDGER)))
    proc = run_cli("run", str(tmp_path / "cascade.yaml"), "hello", "--tag", KEY)
    assert proc.returncode == 2
    assert KEY not in proc.stdout + proc.stderr


def test_a_tag_no_ledger_can_store_is_refused_at_the_call(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """A tag holding a lone surrogate (a header decoded with `surrogateescape`) is a row no
    database takes: the call is refused with a clear error before anything is paid for."""
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, ledger=LEDGER) as cascade:
        with pytest.raises(ValueError, match="tag 'user' holds characters no ledger can store"):
            cascade.run("second", tags={"user": "caf\udce9"})
        good = cascade.run("third", tags={"user": "bob"})
    assert calls_to(fake_server, CHEAP) == 1
    assert [r["request_id"] for r in ledger_rows(tmp_path, "results")] == [good.request_id]


def test_one_record_the_store_refuses_does_not_take_the_others_of_its_batch_with_it() -> None:
    """The writer commits what is queued in one transaction: a record the database refuses
    must cost that record its rows, not every record that happened to share the batch."""
    committed: list[list[Row]] = []
    gate = threading.Event()

    class Picky:  # refuses any transaction holding the row marked "bad"
        def insert(self, rows: Sequence[Row]) -> None:
            gate.wait(5)
            if any(row.values == ("bad",) for row in rows):
                raise ValueError("refused")
            committed.append(list(rows))

        def close(self) -> None:
            pass

    writer = LedgerWriter(Picky, where="picky")
    for values in (("a",), ("bad",), ("b",)):
        writer.put([Row("alarms", values)])
    gate.set()
    assert writer.flush()
    writer.close()
    kept = sorted(row.values for rows in committed for row in rows)
    assert kept == [("a",), ("b",)] and writer.counts.dropped == 1


def test_cascade_run_prints_the_answer_before_waiting_for_its_audit(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """The audit's top-tier call takes 5 s. `cascade run` may stay to let it finish (and be
    recorded), but the caller must have the answer first, not after the audit."""

    def reply(request: RecordedRequest) -> Reply:
        return Reply.text("4", delay_s=5.0) if request.model == TOP else Reply.text("4")

    fake_server.default = reply
    config = live_config(fake_server, tmp_path, ledger=LEDGER, audit={"sample": 1.0})
    (tmp_path / "cascade.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        cli_command("run", str(tmp_path / "cascade.yaml"), "What is 2 + 2?", "-q"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], 60)
        assert readable, "no answer within 60 s"
        audit_done = [r.completed for r in fake_server.requests_for(TOP)]
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.strip() == "4", err
    assert True not in audit_done, "the answer came only once the audit had its reference"
    (audit,) = ledger_rows(tmp_path, "audits")  # and the command stayed for the audit to finish
    assert audit["agreed"] is True


# -- the statistics ------------------------------------------------------------------------------


def test_the_interval_cascade_audit_labels_95_percent_covers_95_percent() -> None:
    """`cascade audit` shows "95% interval" from two one-sided 95% bounds, which together
    cover 90%. 5 disagreements in 100 audits: the 95% Clopper-Pearson interval is
    [0.0164, 0.1128]; [0.0199, 0.1023] is the 90% one."""
    audits: list[dict[str, Any]] = [
        {"tier": "small", "tags": {}, "day": "2026-12-01", "agreed": i >= 5, "audit_usd": None}
        for i in range(100)
    ]
    figures = audit_figures(audits, [], confidence=0.95, limit=0.05)
    (column,) = audit_tables(figures)[0].columns[5:6]
    assert str(column.header) == "95% interval"
    (line,) = figures["tiers"]
    assert (line["lower"], line["upper"]) == pytest.approx((0.016432, 0.112835), abs=1e-5)


def test_a_ledger_the_audit_cannot_read_back_at_start_is_said_not_ignored(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """The audit reads its alarms and the day's spend back from the ledger. One row it cannot
    read (a tags column edited by hand) makes it start with no alarm and a fresh budget, and
    the writer, which can still write there, never says a word: the start must."""
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit={"sample": 1.0}) as cascade:
        cascade.run("question one")
        cascade.run("question two")
    db = sqlite3.connect(tmp_path / "spend.sqlite")
    with db:
        db.execute("UPDATE audits SET tags = 'user=bob' WHERE rowid = 2")
    db.close()
    audit = {"sample": 1.0, "max_usd_per_day": "0.0000001"}  # the first audit alone spent it
    with capture_logs() as logs:
        cascade = live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit)
        cascade.close()
    assert any("spend.sqlite" in json.dumps(event, default=str) for event in logs), logs


def test_a_judge_that_cannot_be_reached_is_no_evidence_of_drift(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """`against: judge`, and the judge's server is down: its verdict is "judge failed", not
    "the answer is wrong". Those audits are failed audits (counted neither way), as when
    the top tier gives no answer; counting them as disagreements raises a false alarm,
    and under `tighten` takes the cheap tier out of service because a judge was down."""

    def reply(request: RecordedRequest) -> Reply:
        if request.model == "judge-model":
            return Reply.status(503)
        return Reply.text("Paris.")

    fake_server.default = reply
    judge = {
        "model": {
            "provider": "openai",
            "model": "judge-model",
            "base_url": fake_server.openai_base_url,
            "price": {"input_per_mtok": 1, "output_per_mtok": 1},
            "retry": {"max_attempts": 1},
        }
    }
    audit = {**QUICK_ALARM, "against": "judge", "judge": judge}

    async def main() -> str:
        async with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit) as cascade:
            for i in range(6):
                await cascade.arun(f"Capital of France, take {i}?")
                await auditor_of(cascade).background.drain()
            return auditor_of(cascade).monitor.state(("small", ""))

    state = asyncio.run(main())
    assert [a["agreed"] for a in ledger_rows(tmp_path, "audits")] == [None] * 6
    assert state != "drift" and ledger_rows(tmp_path, "alarms") == []


def test_an_audited_pair_never_labels_a_rejected_reference_correct(
    fake_server: FakeProviderServer, tmp_path: Path
) -> None:
    """The top tier hedges ("I'm not sure."), which its own check rejects. The exported pair
    (what `eval` and `calibrate` learn from) must not call that answer correct, nor count the
    cheap tier's answer as a false accept against it."""
    serve(fake_server, lambda model, prompt: "Paris." if model == CHEAP else "I'm not sure.")
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit={"sample": 1.0}) as cascade:
        assert cascade.run("Capital of France?").tier == "small"
    (audit,) = ledger_rows(tmp_path, "audits")
    responses = json.loads(audit["pair"])["responses"] if audit["pair"] else {}
    assert responses.get(TOP, {}).get("verified") is not True  # its check did reject it
    assert responses.get(TOP, {}).get("correct") is not True
    assert audit["agreed"] is not False
