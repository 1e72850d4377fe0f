"""The shadow audit over the loopback provider: sampled answers accepted below the top tier
are checked in the background, billed apart, labelled, and counted towards a drift alarm,
which `on_drift: tighten` acts on; `cascade audit` shows it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from structlog.testing import capture_logs

from cascade.live.background import BackgroundCounts
from cascade.live.store import SqliteStore
from cascade.testing.server import FakeProviderServer, Reply
from tests.conftest import run_cli
from tests.live_helpers import (
    CHEAP,
    TOP,
    auditor_of,
    cache_of,
    calls_to,
    live_cascade,
    prompt_of,
    read_jsonl,
    serve,
)

LEDGER = {"path": "spend.sqlite"}
SLICE = ("small", "feature=billing")


def judged_audit(server: FakeProviderServer) -> dict[str, Any]:
    """Every answer audited by a judge on the loopback provider (model `judge-model`)."""
    price = {"input_per_mtok": 1, "output_per_mtok": 1}
    model = {"provider": "openai", "model": "judge-model", "base_url": server.openai_base_url, "price": price}
    return {"sample": 1.0, "against": "judge", "judge": {"model": model}}


def audited(tmp_path):
    return SqliteStore(tmp_path / "spend.sqlite", create=False).select("audits")


def test_an_audit_asks_the_top_tier_in_the_background_and_bills_it_apart(fake_server, tmp_path):
    serve(fake_server, lambda model, prompt: "Paris." if model == CHEAP else "paris")
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit={"sample": 1.0}) as cascade:
        result = cascade.run("Capital of France?", tags={"feature": "geo"})
    (audit,) = audited(tmp_path)
    assert result.tier == "small" and result.output == "Paris."  # the answer is the cheap tier's
    assert result.cost.total_usd == result.attempts[0].cost_usd  # the audit is not in its bill
    assert audit["agreed"] is True and audit["audit_usd"] > 0  # "Paris." and "paris", normalised
    assert (audit["tier"], audit["tags"], audit["request_id"]) == (
        "small",
        {"feature": "geo"},
        result.request_id,
    )
    pair = json.loads(audit["pair"])  # a recorded line, labelled by agreement with the top tier
    assert pair["responses"][CHEAP]["correct"] is True and pair["responses"][TOP]["correct"] is True
    assert pair["messages"] == [{"role": "user", "content": "Capital of France?"}]


def test_the_caller_never_waits_for_its_audit(fake_server, tmp_path):
    def reply(request):
        return Reply.text("4", delay_s=1.0) if request.model == TOP else Reply.text("4")

    fake_server.default = reply

    async def main() -> None:
        async with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit={"sample": 1.0}) as cascade:
            result = await cascade.arun("2 + 2?")
            background = auditor_of(cascade).background
            assert result.verified and len(background._tasks) == 1  # returned with its audit in flight
            assert not any(r.completed for r in fake_server.requests_for(TOP))
        assert background.counts.finished == 1  # closing the cascade let it finish

    asyncio.run(main())
    assert audited(tmp_path)[0]["agreed"] is True


def test_answers_from_the_top_tier_and_the_cache_are_never_audited(fake_server, tmp_path):
    serve(fake_server, lambda model, prompt: "I'm not sure." if model == CHEAP else "Sure: 4.")
    with live_cascade(
        fake_server, tmp_path, ledger=LEDGER, cache={"path": "c.sqlite"}, audit={"sample": 1.0}
    ) as cascade:
        escalated = cascade.run("2 + 2?")
        cache_of(cascade).writer.flush()
        hit = cascade.run("2 + 2?")
    assert escalated.tier == "large" and hit.cache == "hit"
    assert audited(tmp_path) == [] and calls_to(fake_server, TOP) == 1


def test_the_daily_budget_and_the_in_flight_cap_bound_the_audits(fake_server, tmp_path):
    def reply(request):
        return Reply.text("4", delay_s=0.3) if request.model == TOP else Reply.text("4")

    fake_server.default = reply

    async def main(audit: dict[str, Any]) -> BackgroundCounts:
        async with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit) as cascade:
            await asyncio.gather(*(cascade.arun(f"q{i}") for i in range(6)))
            await auditor_of(cascade).background.drain()
            for i in range(6, 9):
                await cascade.arun(f"q{i}")
            return auditor_of(cascade).background.counts

    busy = asyncio.run(main({"sample": 1.0, "max_in_flight": 2}))
    assert busy.skipped_busy >= 4 and busy.started <= 2 + 3
    fake_server.reset()
    fake_server.default = reply
    broke = asyncio.run(main({"sample": 1.0, "max_usd_per_day": "0.000000001"}))
    # the day's budget was spent by the audits already recorded in the ledger: none starts
    assert broke.started == 0 and broke.skipped_budget == 9


def test_against_judge_the_judges_verdict_is_the_label(fake_server, tmp_path):
    def reply(request):
        if request.model == "judge-model":
            good = "Paris" in json.dumps(request.body["messages"])
            return Reply.text(json.dumps({"score": 9 if good else 1, "reason": "checked"}))
        return Reply.text("Paris." if "France" in prompt_of(request) else "Lyon.")

    fake_server.default = reply
    audit = judged_audit(fake_server)
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit) as cascade:
        cascade.run("Capital of France?")
        cascade.run("Capital of Italy?")
    labels = sorted((a["agreed"], a["against"]) for a in audited(tmp_path))
    assert labels == [(False, "judge"), (True, "judge")] and calls_to(fake_server, TOP) == 0


def answers_turning_wrong(model: str, prompt: str) -> str:
    """The cheap tier answers like the top tier, except on billing after the drift."""
    right = f"The total is {len(prompt)}."
    return "The total is 0." if model == CHEAP and "billing" in prompt and "late" in prompt else right


def test_a_drift_in_one_slice_raises_its_alarm_within_the_audits_the_bound_predicts(fake_server, tmp_path):
    """Done-when of the live quality loop: halfway through, the cheap tier's answers turn wrong
    for the billing slice; the alarm is up after exactly as many audited disagreements as the
    bound predicted, no alarm came before, and `cascade audit` shows it."""
    serve(fake_server, answers_turning_wrong)
    audit = {"sample": 0.5, "seed": 7, "max_false_accept": 0.1, "confidence": 0.9, "window": 60}
    features = ["billing", "search", "search", "chat"]

    async def main() -> tuple[int | None, str, list[Any]]:
        async with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit) as cascade:
            auditor = auditor_of(cascade)
            with capture_logs() as before:
                for i in range(240):
                    feature = features[i % 4]
                    await cascade.arun(f"{feature} question {i}", tags={"feature": feature})
                await auditor.background.drain()
            predicted = auditor.monitor.audits_to_alarm(SLICE)
            with capture_logs() as after:
                for i in range(240, 480):
                    feature = features[i % 4]
                    await cascade.arun(f"{feature} question {i} late", tags={"feature": feature})
                    await auditor.background.drain()  # one audit at a time: counted in order
            return predicted, auditor.monitor.state(("small", "feature=search")), [*before, *after]

    predicted, search_state, logs = asyncio.run(main())
    alarms = [e for e in logs if e["event"] == "drift_alarm"]
    assert predicted is not None and 0 < predicted <= 15
    billing = [e for e in alarms if e["group"] == "feature=billing"]
    assert billing and billing[0]["disagreements"] == predicted  # raised at the predicted audit
    assert search_state == "ok" and not [e for e in alarms if e["group"] == "feature=search"]
    late_billing = [
        a for a in audited(tmp_path) if a["tags"]["feature"] == "billing" and a["agreed"] is False
    ]
    assert len(late_billing) >= predicted  # the alarm needed no more audits than that

    shown = run_cli("audit", "--ledger", str(tmp_path / "spend.sqlite"), "--by", "feature", "--json")
    assert shown.returncode == 0, shown.stderr
    figures = json.loads(shown.stdout)
    assert {(a["tier"], a["group"]) for a in figures["drift_alarms"]} >= {SLICE}
    table = run_cli("audit", "--ledger", str(tmp_path / "spend.sqlite"), env={"COLUMNS": "200"})
    assert "Drift alarms up" in table.stdout and "feature=billing" in table.stdout


def test_tighten_sends_a_drifted_slice_to_the_next_tier_until_cleared(fake_server, tmp_path):
    serve(fake_server, lambda model, prompt: "0" if model == CHEAP and "billing" in prompt else "42")
    # one request in six is billing, all wrong: the slice drifts, the tier as a whole does not
    audit = {"sample": 1.0, "max_false_accept": 0.25, "confidence": 0.8, "window": 200, "on_drift": "tighten"}

    async def drifted() -> None:
        async with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit) as cascade:
            for i in range(60):
                feature = "billing" if i % 6 == 0 else "search"
                await cascade.arun(f"{feature} {i}", tags={"feature": feature})
                await auditor_of(cascade).background.drain()
            assert auditor_of(cascade).monitor.state(("small", "")) == "ok"

    def tiers_now() -> tuple[str | None, str | None]:
        with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit) as cascade:
            billing = cascade.run("billing again", tags={"feature": "billing"}).tier
            search = cascade.run("search again", tags={"feature": "search"}).tier
        return billing, search

    asyncio.run(drifted())
    assert tiers_now() == ("large", "small")  # a restarted cascade remembers the alarm
    cleared = run_cli("audit", "--ledger", str(tmp_path / "spend.sqlite"), "--clear", "small:feature=billing")
    assert cleared.returncode == 0, cleared.stderr
    assert tiers_now() == ("small", "small")


def test_exported_pairs_feed_eval_directly(fake_server, tmp_path):
    serve(fake_server, lambda model, prompt: "Yes." if model == CHEAP else "No.")
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit={"sample": 1.0}) as cascade:
        for i in range(4):
            cascade.run(f"question {i}")
    out = tmp_path / "audited.jsonl"
    exported = run_cli("audit", "--ledger", str(tmp_path / "spend.sqlite"), "--export", str(out))
    assert exported.returncode == 0, exported.stderr
    lines = read_jsonl(out)
    assert len(lines) == 4 and all(line["responses"][CHEAP]["correct"] is False for line in lines)
    replay = tmp_path / "replay.yaml"
    replay.write_text(
        "tiers:\n"
        f"  - {{name: small, provider: replay, model: {CHEAP}}}\n"
        f"  - {{name: large, provider: replay, model: {TOP}}}\n"
    )
    scored = run_cli("eval", str(replay), "--data", str(out), "--json")
    assert scored.returncode == 0, scored.stderr


def test_a_judge_that_fails_to_answer_is_no_disagreement(fake_server, tmp_path):
    def reply(request: Any) -> Reply:
        if request.model == "judge-model":
            return Reply.status(400, message="bad request")  # not retried: the judge's call fails
        return Reply.text("Paris.")

    fake_server.default = reply
    audit = judged_audit(fake_server)
    with live_cascade(fake_server, tmp_path, ledger=LEDGER, audit=audit) as cascade:
        cascade.run("Capital of France?")
        monitor = auditor_of(cascade).monitor
    (row,) = audited(tmp_path)
    assert row["agreed"] is None and row["error"] == "the judge gave no verdict"
    assert monitor.estimate(("small", "")).audited == 0
