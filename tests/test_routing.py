"""Routers pick where a request's ladder starts: rules, a classifier model (through both SDKs
to the loopback server), rules then the classifier, and the caller's min_tier / start_tier;
the cascade still verifies and escalates from there, and routing is billed."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
import yaml
from hypothesis import given
from hypothesis import strategies as st

from cascade import Cascade, ConfigError, ExhaustedError
from cascade.config import parse_config
from cascade.core.events import StreamResult
from cascade.core.routes import Route
from cascade.core.values import Message, Request, Result
from cascade.live.rows import ADDED_COLUMNS, TABLES, result_rows
from cascade.live.store import open_store
from cascade.routing.classifier import ClassifierRouter
from cascade.routing.rules import Condition, Rule, RuleRouter, has_code
from cascade.testing.server import FakeProviderServer, Reply
from tests.conftest import CHEAP, loopback_tier, scripted_tier

SECRET_TAG = "acct-7731-SECRET"


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-SECRET123")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-SECRET456")


def classifier_config(server: FakeProviderServer, wire: str = "openai", **extra: Any) -> dict[str, Any]:
    tier = loopback_tier(server, "unused", "router-model", wire)
    return {**{k: v for k, v in tier.items() if k != "name"}, **extra}


def ladder(server: FakeProviderServer, router: dict[str, Any], **extra: Any) -> Cascade:
    tiers = [
        loopback_tier(server, "small", "small"),
        loopback_tier(server, "medium", "medium", "anthropic"),
        loopback_tier(server, "large", "large"),
    ]
    return Cascade.from_config(parse_config({"tiers": tiers, "router": router, **extra}))


def request(text: str, *turns: str) -> Request:
    messages = [Message("user", text)] + [Message("user", t) for t in turns]
    return Request(messages=tuple(messages))


# -- rules ---------------------------------------------------------------------------------


def rule_router(*rules: Rule) -> RuleRouter:
    return RuleRouter(rules, "small", lambda text: len(text.split()))


def route(router: RuleRouter, asked: Request, tags: dict[str, str]) -> Route:
    return asyncio.run(router.route(asked, tags))


def test_the_first_rule_that_matches_names_the_tier_and_no_match_is_the_cheapest():
    router = rule_router(
        Rule("large", Condition(tags={"plan": frozenset({"pro", "team"})})),
        Rule("medium", Condition(regex=re.compile(r"(?i)\bprove\b"))),
        Rule("large", Condition(regex=re.compile("prove"))),  # shadowed by rule 2 for "prove"
        Rule("medium", Condition(min_input_tokens=5)),
        Rule("large", Condition(has_code=True)),
        Rule("medium", Condition(min_messages=2)),
    )
    assert route(router, request("hi"), {"plan": "team"}) == Route("large", "rule 1")
    assert route(router, request("Prove it"), {"plan": "free"}) == Route("medium", "rule 2")
    assert route(router, request("one two three four five"), {}) == Route("medium", "rule 4")
    assert route(router, request("```\nx\n```"), {}) == Route("large", "rule 5")
    assert route(router, request("a", "b"), {}) == Route("medium", "rule 6")
    assert route(router, request("hello there"), {}) == Route("small", "no rule")


def test_every_condition_of_a_rule_must_hold():
    rule = Rule("large", Condition(regex=re.compile("invoice"), max_input_tokens=3, max_messages=1))
    router = rule_router(rule)
    assert (route(router, request("the invoice"), {})).tier == "large"
    assert (route(router, request("the invoice is long now"), {})).tier == "small"  # 5 tokens
    assert (route(router, request("the invoice", "again"), {})).tier == "small"  # 2 messages


def test_code_is_told_from_prose():
    assert has_code("def f(x):\n    return x")
    assert has_code("Why does this fail?\n```js\nlet a = 1\n```")
    assert has_code("int main() {\n  return 0;\n}")
    assert not has_code("What is the capital of France? Tell me briefly.")


@given(st.text(max_size=300), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))
def test_rules_never_raise_on_any_request(text: str, tags: dict[str, str]) -> None:
    router = rule_router(
        Rule("large", Condition(regex=re.compile(r"\d{3,}"), has_code=False)),
        Rule("medium", Condition(tags={"x": frozenset({"y"})}, min_input_tokens=2)),
    )
    assert route(router, request(text or "?"), tags).tier in ("small", "medium", "large")


@pytest.mark.parametrize(
    ("router", "message"),
    [
        (
            {"rules": [{"tier": "huge", "when": {"min_messages": 2}}]},
            "router.rules.0 (rule 1) starts at unknown tier 'huge'",
        ),
        (
            {"rules": [{"tier": "large", "when": {"colour": "red"}}]},
            "router.rules.0.when.colour: Extra inputs",
        ),
        ({"rules": [{"tier": "large", "when": {}}]}, "a rule needs at least one condition"),
        ({"rules": [{"tier": "large", "when": {"regex": "(unclosed"}}]}, "not a regular expression"),
        ({}, "a router needs rules, a classifier or a learned router"),
        (
            {"classifier": {"provider": "openai", "model": "m", "labels": {"hard": "xl"}}},
            "labels.hard names unknown tier 'xl'",
        ),
        (
            {"classifier": {"provider": "openai", "model": "m", "fallback": "xl"}},
            "fallback names unknown tier 'xl'",
        ),
        (
            {"classifier": {"provider": "openai", "model": "m", "prompt": "no slots"}},
            "must contain {labels} and {request}",
        ),
        (
            {"classifier": {"provider": "openai", "model": "m"}, "learned": {"model_file": "r.json"}},
            "a classifier or a learned router, not both",
        ),
    ],
)
def test_a_bad_router_section_is_a_config_error_saying_where(router: dict[str, Any], message: str):
    tiers = [{"name": n, "provider": "simulated", "model": "gpt-4o-mini"} for n in ("small", "large")]
    with pytest.raises(ConfigError) as caught:
        parse_config({"tiers": tiers, "router": router})
    assert message in str(caught.value)


def test_rules_from_yaml_route_and_the_result_says_why(fake_server: FakeProviderServer):
    router = {"rules": [{"tier": "large", "when": {"tags": {"plan": "pro"}}}]}
    fake_server.script("large", [Reply.text("From the top.")])
    fake_server.script("small", [Reply.text("From the bottom.")])
    with ladder(fake_server, router) as cascade:
        pro = cascade.run("Summarise this.", tags={"plan": "pro"})
        free = cascade.run("Summarise this.", tags={"plan": "free"})
    assert [a.tier for a in pro.attempts] == ["large"]
    assert pro.to_dict()["route"] == {"tier": "large", "by": "rule 1", "score": None, "cost_usd": 0.0}
    assert free.route == Route("small", "no rule") and free.tier == "small"


def test_the_cascade_still_escalates_from_where_the_router_started_it(fake_server: FakeProviderServer):
    router = {"rules": [{"tier": "medium", "when": {"regex": "contract"}}]}
    fake_server.script("medium", [Reply.text("I'm not sure, maybe.")])
    fake_server.script("large", [Reply.text("Clause 4 applies.")])
    with ladder(fake_server, router, verifiers=[{"type": "hedging"}]) as cascade:
        result = cascade.run("Which clause of the contract applies?")
    assert [a.tier for a in result.attempts] == ["medium", "large"] and result.verified
    assert fake_server.requests_for("small") == []


# -- the classifier ------------------------------------------------------------------------


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_the_classifier_labels_the_request_and_its_call_is_billed_as_routing(
    fake_server: FakeProviderServer, wire: str
):
    labels = {"simple": "small", "hard": "large"}
    router = {"classifier": classifier_config(fake_server, wire, labels=labels)}
    fake_server.script("router-model", [Reply.text("**Hard.**", input_tokens=100, output_tokens=2)])
    fake_server.script("large", [Reply.text("42", input_tokens=10, output_tokens=1)])
    with ladder(fake_server, router) as cascade:
        result = cascade.run("A hard question?", tags={"account": SECRET_TAG})
    assert result.route is not None and result.route.tier == "large" and result.route.by == "classifier"
    routing = Decimal(100 * 1 + 2 * 2) / 1_000_000  # the loopback price: $1 / $2 per Mtok
    attempts = Decimal(10 * 1 + 1 * 2) / 1_000_000
    assert result.cost.routing_usd == routing == result.route.cost_usd
    assert result.cost.total_usd == routing + attempts
    assert result.to_dict()["cost"]["routing_usd"] == float(routing)
    asked = json.dumps(fake_server.requests_for("router-model")[0].body)
    assert "A hard question?" in asked and "simple, hard" in asked
    assert SECRET_TAG not in asked  # the request's metadata is never shown to the classifier


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (
            Reply.text("It is probably hard, I think"),
            "classifier reply 'It is probably hard, I think' is not one of",
        ),
        (Reply.text(""), "classifier reply '' is not one of"),
        (Reply.status(400), "classifier call failed"),
    ],
)
def test_a_classifier_reply_that_is_not_a_label_falls_back_and_says_so(
    fake_server: FakeProviderServer, reply: Reply, why: str
):
    router = {
        "classifier": classifier_config(
            fake_server, labels={"easy": "small", "hard": "large"}, fallback="medium"
        )
    }
    fake_server.script("router-model", [reply])
    fake_server.script("medium", [Reply.text("An answer.")])
    with ladder(fake_server, router) as cascade:
        result = cascade.run("A question?")
    assert result.route is not None and result.route.tier == "medium" and result.tier == "medium"
    assert result.route.fallback is not None and why in result.route.fallback


def test_a_classifier_that_times_out_is_retried_then_falls_back(fake_server: FakeProviderServer):
    settings = classifier_config(fake_server, timeout_s=0.3, retry={"max_attempts": 2, "initial_wait_s": 0})
    fake_server.script("router-model", [Reply.stall(2), Reply.stall(2)])
    fake_server.script("small", [Reply.text("An answer.")])
    with ladder(fake_server, {"classifier": settings}) as cascade:
        result = cascade.run("A question?")
    assert len(fake_server.requests_for("router-model")) == 2  # retried like any call
    assert result.route is not None and result.route.tier == "small"  # the default fallback: the cheapest
    assert result.route.fallback is not None and "classifier call failed" in result.route.fallback
    assert result.cost.routing_usd > 0  # a timed-out call's input may be billed: it is counted
    assert result.verified and result.output == "An answer."


def test_hybrid_asks_the_classifier_only_where_no_rule_matched(fake_server: FakeProviderServer):
    router = {
        "rules": [{"tier": "large", "when": {"has_code": True}}],
        "classifier": classifier_config(fake_server),  # labels: the tier names
    }
    fake_server.script("router-model", [Reply.text("medium")])
    fake_server.script("large", [Reply.text("Fixed.")])
    fake_server.script("medium", [Reply.text("Paris.")])
    with ladder(fake_server, router) as cascade:
        coded = cascade.run("Fix this:\n```py\nprint(x\n```")
        plain = cascade.run("Capital of France?")
    assert coded.route == Route("large", "rule 1") and coded.cost.routing_usd == 0
    assert plain.route is not None and plain.route.tier == "medium" and plain.route.by == "classifier"
    assert len(fake_server.requests_for("router-model")) == 1


def test_label_parsing_is_strict_but_forgives_case_quotes_and_a_full_stop():
    router = ClassifierRouter(
        scripted_tier("r", ("m", [])).primary,
        {"Simple": "small", "hard": "large"},
        "small",
        "{labels}{request}",
        1000,
    )
    assert router.label("simple") == "small" and router.label(' "HARD". ') == "large"
    assert router.label("hard or simple") is None and router.label("harder") is None


@given(st.text(max_size=40))
def test_a_label_is_found_only_when_the_reply_is_exactly_one(reply: str) -> None:
    router = ClassifierRouter(
        scripted_tier("r", ("m", [])).primary,
        {"easy": "small", "hard": "large"},
        "small",
        "{labels}{request}",
        1000,
    )
    tier = router.label(reply)
    bare = reply.strip(" \t\r\n\"'`*.:").casefold()
    assert tier == {"easy": "small", "hard": "large"}.get(bare)


def test_the_classifier_reads_a_long_request_as_its_head_and_tail():
    model = scripted_tier("r", ("m", [])).primary
    router = ClassifierRouter(model, {"small": "small"}, "small", "{labels}: {request}", 400)
    asked = router.asking(request("A" * 1000 + "THE END")).messages[0].content
    assert asked.startswith("small: user: AAA") and asked.endswith("THE END") and len(asked) < 500


def test_routing_counts_against_the_request_budget(fake_server: FakeProviderServer):
    router = {"classifier": classifier_config(fake_server, labels={"easy": "small"})}
    fake_server.script("router-model", [Reply.text("easy", input_tokens=2_000_000, output_tokens=0)])  # $2
    with ladder(fake_server, router, max_cost_usd="1") as cascade, pytest.raises(ExhaustedError) as caught:
        cascade.run("A question?")
    result = caught.value.result
    assert result.attempts == () and result.stop_reason == "budget" and result.cost.total_usd == 2
    assert fake_server.requests_for("small") == []


# -- the caller's min_tier and start_tier ----------------------------------------------------


def test_min_tier_is_a_floor_under_the_routers_pick_and_start_tier_skips_the_router(
    fake_server: FakeProviderServer,
):
    router = {"classifier": classifier_config(fake_server)}
    fake_server.script("router-model", [Reply.text("small"), Reply.text("large")])
    fake_server.script("medium", [Reply.text("Medium answer.")])
    fake_server.script("large", [Reply.text("Large answer."), Reply.text("Large again.")])
    with ladder(fake_server, router) as cascade:
        raised = cascade.run("Q1", min_tier="medium")  # the classifier says small
        kept = cascade.run("Q2", min_tier="medium")  # the classifier says large: above the floor
        chosen = cascade.run("Q3", start_tier="large")
    assert raised.route is not None and raised.route.tier == "medium" and raised.route.by == "min_tier"
    assert raised.route.picked == "small" and raised.tier == "medium"
    assert kept.route is not None and kept.route.tier == "large" and kept.route.by == "classifier"
    assert chosen.route == Route("large", "start_tier") and chosen.cost.routing_usd == 0
    assert len(fake_server.requests_for("router-model")) == 2  # not asked for Q3


def test_min_tier_and_start_tier_work_in_streams(fake_server: FakeProviderServer):
    fake_server.script("large", [Reply.text("Streamed from the top.")])
    with ladder(fake_server, {"rules": [{"tier": "medium", "when": {"min_messages": 5}}]}) as cascade:
        events = list(cascade.stream("Q", start_tier="large"))
        with pytest.raises(ValueError, match="start_tier 'xl' is not a tier of this cascade"):
            list(cascade.stream("Q", start_tier="xl"))
        with pytest.raises(ValueError, match="min_tier 'xl' is not a tier"):
            cascade.run("Q", min_tier="xl")
    result = events[-1]
    assert isinstance(result, StreamResult) and result.result.tier == "large"
    assert result.result.route == Route("large", "start_tier")
    assert fake_server.requests_for("small") == []


def test_without_a_router_only_an_override_makes_a_route():
    cascade = Cascade([scripted_tier("small", ("s", ["a"])), scripted_tier("large", ("l", ["b"]))])
    assert cascade.run("Q").route is None
    assert cascade.run("Q", min_tier="large").route == Route("large", "min_tier")


def test_a_router_passed_in_python_is_used():
    class Everything:
        async def route(self, request: Request, tags: Any) -> Route:
            return Route("large", "mine", score=0.9)

    small, large = scripted_tier("small", ("s", ["no"]), price=CHEAP), scripted_tier("large", ("l", ["yes"]))
    with Cascade([small, large], router=Everything()) as cascade:
        result = cascade.run("Q")
    assert result.output == "yes" and result.route == Route("large", "mine", score=0.9)
    assert [a.tier for a in result.attempts] == ["large"]


# -- the ledger ------------------------------------------------------------------------------


def test_the_ledger_records_each_route_and_its_cost(tmp_path: Path, fake_server: FakeProviderServer):
    router = {"classifier": classifier_config(fake_server, labels={"hard": "large"})}
    fake_server.script("router-model", [Reply.text("hard", input_tokens=30, output_tokens=1)])
    fake_server.script("large", [Reply.text("Answer.")])
    ledger = tmp_path / "ledger.db"
    with ladder(fake_server, router, ledger={"path": str(ledger)}) as cascade:
        result = cascade.run("Q")
    rows = open_store(path=ledger, create=False).select("results")
    assert [(r["route_tier"], r["route_by"], r["routing_usd"]) for r in rows] == [
        ("large", "classifier", Decimal("0.000032"))
    ]
    assert rows[0]["total_usd"] == result.cost.total_usd


def test_a_ledger_made_before_routing_gets_its_columns_and_keeps_its_rows(tmp_path: Path):
    path = tmp_path / "old.db"
    old_columns = [c for c in TABLES["results"] if c not in ADDED_COLUMNS["results"]]
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE results ({', '.join(old_columns)})")
        db.execute("INSERT INTO results (request_id, ts, total_usd, tags) VALUES ('old', 1.0, '0.5', '{}')")
    store = open_store(path=path)
    fresh: Result[Any] = Result(
        "a", True, (), None, Decimal(0), request_id="new", route=Route("large", "rule 1")
    )
    store.insert(result_rows(fresh, config="c", latency_s=0.1, ts=2.0)[:1])
    rows = store.select("results")
    assert [(r["request_id"], r["route_tier"], r["total_usd"]) for r in rows] == [
        ("old", None, Decimal("0.5")),
        ("new", "large", Decimal(0)),
    ]


# -- batch -----------------------------------------------------------------------------------


def test_batch_lines_and_flags_set_the_start_and_the_report_counts_the_routing(
    tmp_path: Path, fake_server: FakeProviderServer
):
    from tests.conftest import run_cli

    config = tmp_path / "c.yaml"
    tiers = [loopback_tier(fake_server, n, n) for n in ("small", "medium", "large")]
    router = {
        "rules": [{"tier": "medium", "when": {"regex": "medium"}}],
        "classifier": classifier_config(fake_server),
    }
    config.write_text(json.dumps({"tiers": tiers, "router": router}))
    lines = [
        {"id": 1, "prompt": "a medium one"},  # rule 1
        {"id": 2, "prompt": "ask the classifier"},
        {"id": 3, "prompt": "forced", "start_tier": "large"},
        {"id": 4, "prompt": "floored", "min_tier": "xl"},
        {"id": 5, "prompt": "bad", "start_tier": 7},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    fake_server.script("router-model", [Reply.text("small", input_tokens=50, output_tokens=1)])
    fake_server.script("small", [Reply.text("s")])
    fake_server.script("medium", [Reply.text("m")])
    fake_server.script("large", [Reply.text("l")])
    out, report = tmp_path / "out.jsonl", tmp_path / "report.json"
    done = run_cli(
        "batch", str(config), "--input", str(source), "--output", str(out), "--report-json", str(report)
    )
    assert done.returncode == 3, done.stderr  # two lines in error: attention
    records = {r.get("id") or r["input_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records[1]["route"]["by"] == "rule 1" and records[1]["tier"] == "medium"
    assert records[2]["route"]["by"] == "classifier" and records[2]["tier"] == "small"
    assert records[3]["route"] == {"tier": "large", "by": "start_tier", "score": None, "cost_usd": 0.0}
    assert "min_tier 'xl' is not a tier of this cascade" in records[4]["error"]
    assert "`start_tier` must be a tier's name" in records[5]["error"]
    figures = json.loads(report.read_text())
    assert figures["routed_to_tier"] == {"medium": 1, "small": 1, "large": 1}
    assert figures["routed_by"] == {"rule": 1, "classifier": 1, "start_tier": 1}
    assert figures["routing_fallbacks"] == 0  # counted apart: routed_by adds up to the items routed
    routing = sum(r["cost"]["routing_usd"] for r in records.values() if "cost" in r)
    assert figures["routing_usd"] == pytest.approx(routing) and routing == pytest.approx(52e-6)
    assert figures["total_usd"] == pytest.approx(
        sum(r["cost"]["total_usd"] for r in records.values() if "cost" in r)
    )

    floor = tmp_path / "floor.jsonl"
    again = run_cli(
        "batch", str(config), "--input", str(source), "--output", str(floor), "--start-tier", "huge"
    )
    assert again.returncode == 2 and "--start-tier 'huge' is not a tier of this cascade" in again.stderr


def test_the_readmes_router_section_is_a_valid_config() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme[readme.index("## Routing") :].split("```yaml\n", 1)[1].split("```", 1)[0]
    tiers = [
        {"name": n, "provider": "simulated", "model": "gpt-4o-mini"} for n in ("small", "medium", "large")
    ]
    config = parse_config({"tiers": tiers, **yaml.safe_load(block)})
    assert config.router is not None and config.router.kind == "hybrid" and len(config.router.rules) == 3


def test_a_rule_regex_that_blows_up_gives_up_in_time_and_does_not_match() -> None:
    """A backtracking blow-up on a hostile request: the rule does not match (and says so), and
    the request is routed at once rather than holding the event loop for minutes."""
    router = RuleRouter([Rule("large", Condition(regex=re.compile(r"^(\w+\s?)*$")))], "small", len)
    started = time.perf_counter()
    with structlog.testing.capture_logs() as logs:
        found = route(router, request("a" * 5000 + "!"), {})
    assert found == Route("small", "no rule") and time.perf_counter() - started < 2
    assert [e["event"] for e in logs] == ["rule_regex_timed_out"]
    assert route(router, request("two words"), {}) == Route("large", "rule 1")  # a fast match still matches
