"""Routers at their edges: templates, labels and replies a classifier may meet, routers
passed in Python that misbehave, rules that could never (or always) match, and what a
request that routing started and the caller left behind still records."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cascade import Cascade, ConfigError
from cascade.config import parse_config
from cascade.core.routes import Route
from cascade.core.values import Message, Request, Result
from cascade.routing.rules import has_code
from cascade.testing.server import FakeProviderServer, Reply
from tests.conftest import run_cli, scripted_tier
from tests.test_routing import classifier_config, ladder


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-SECRET123")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-SECRET456")


def simulated(router: dict[str, Any]) -> dict[str, Any]:
    tiers = [{"name": n, "provider": "simulated", "model": "gpt-4o-mini"} for n in ("small", "large")]
    return {"tiers": tiers, "router": router}


# -- the classifier's prompt -----------------------------------------------------------------


def test_literal_braces_in_the_classifier_prompt_are_written_doubled_and_reach_the_model(
    fake_server: FakeProviderServer,
):
    prompt = 'Answer like {{"label": "small"}} with one of {labels}.\n{request}'
    fake_server.script("router-model", [Reply.text("large")])
    fake_server.script("large", [Reply.text("Done.")])
    with ladder(fake_server, {"classifier": classifier_config(fake_server, prompt=prompt)}) as cascade:
        result = cascade.run("Mind {labels} and {request} and {0} in here")
    assert result.route is not None and result.route.tier == "large" and result.output == "Done."
    asked = fake_server.requests_for("router-model")[0].body["messages"][0]["content"]
    assert asked.startswith('Answer like {"label": "small"} with one of small, medium, large.')
    assert asked.endswith("user: Mind {labels} and {request} and {0} in here")


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ('Reply as {"label": ...}: {labels} {request}', 'not {"label": ...}: write a literal brace'),
        ("{labels} {request} {0}", "not {0}"),
        ("{labels} {request} {}", "not {}"),
        ("{labels:>999999999999} {request}", "not {labels:>999999999999}"),
        ("{labels!r} {request}", "not {labels!r}"),
        ("{labels} {request.system}", "not {request.system}"),
        ("{labels} {request} }", "is no template"),
        ("{{labels}} {{request}}", "must contain {labels} and {request}"),
    ],
)
def test_a_classifier_prompt_that_is_not_a_template_of_labels_and_request_is_a_config_error(
    prompt: str, message: str
):
    router = {"classifier": {"provider": "simulated", "model": "gpt-4o-mini", "prompt": prompt}}
    with pytest.raises(ConfigError) as caught:
        parse_config(simulated(router))
    assert "router.classifier.prompt" in str(caught.value) and message in str(caught.value)


# -- the classifier's labels -------------------------------------------------------------------


def test_a_label_is_matched_as_a_reply_is_unwrapped_and_two_labels_may_name_one_tier(
    fake_server: FakeProviderServer,
):
    labels = {" Easy ": "small", "hard.": "large", "**tough**": "large"}
    fake_server.script("router-model", [Reply.text("easy"), Reply.text("HARD"), Reply.text("Tough.")])
    fake_server.default = Reply.text("An answer.")
    with ladder(fake_server, {"classifier": classifier_config(fake_server, labels=labels)}) as cascade:
        routes = [cascade.run(q).route for q in ("Q1", "Q2", "Q3")]
    assert [(r.tier, r.fallback) for r in routes if r is not None] == [
        ("small", None),
        ("large", None),
        ("large", None),
    ]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            {"Hard": "large", "hard": "small"},
            "labels 'Hard' and 'hard' read alike (case, quotes and stops are ignored) but name different "
            "tiers ('large', 'small')",
        ),
        ({'"hard"': "large", "hard.": "small"}, "labels '\"hard\"' and 'hard.' read alike"),
        ({"": "large", "easy": "small"}, "label '' is empty once its quotes, spaces and stops are taken off"),
        ({"**": "large"}, "label '**' is empty"),
    ],
)
def test_labels_a_reply_could_not_tell_apart_are_a_config_error(labels: dict[str, str], message: str):
    router = {"classifier": {"provider": "simulated", "model": "gpt-4o-mini", "labels": labels}}
    with pytest.raises(ConfigError) as caught:
        parse_config(simulated(router))
    assert "router.classifier.labels: " in str(caught.value) and message in str(caught.value)


def test_tier_names_that_differ_only_in_case_cannot_be_the_default_labels():
    tiers = [{"name": n, "provider": "simulated", "model": "gpt-4o-mini"} for n in ("fast", "Fast")]
    router = {"classifier": {"provider": "simulated", "model": "gpt-4o-mini"}}
    with pytest.raises(ConfigError, match=r"router.classifier \(labels: the tier names\): labels 'fast' and"):
        parse_config({"tiers": tiers, "router": router})
    labelled = {**router["classifier"], "labels": {"quick": "fast", "slow": "Fast"}}
    assert parse_config({"tiers": tiers, "router": {"classifier": labelled}}).router is not None


# -- what a classifier's reply may carry ---------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 3, 7, 12])
def test_a_key_a_classifier_echoes_is_not_shown_in_part_where_the_reply_is_cut(
    fake_server: FakeProviderServer, cut: int
):
    key = "sk-test-openai-SECRET123"
    reply = "x" * (60 - cut) + key + " and then a long tail " * 500
    fake_server.script("router-model", [Reply.text(reply, output_tokens=3000)])
    fake_server.script("small", [Reply.text("An answer.")])
    with ladder(fake_server, {"classifier": classifier_config(fake_server)}) as cascade:
        result = cascade.run("Q")
    assert result.route is not None and result.route.fallback is not None
    shown = result.route.fallback.split("'")[1]
    assert shown.startswith("x" * (60 - cut)) and len(shown) <= 60
    after = shown[60 - cut :]  # where the key was: its mask, never a piece of it
    assert after == ("***" + " and then a long tail " * 3)[: len(after)]


# -- a router passed in Python -------------------------------------------------------------------


class Fixed:
    """A router that returns what it was given, or raises it."""

    def __init__(self, route: Any) -> None:
        self.given = route

    async def route(self, request: Request, tags: Any) -> Route:
        if isinstance(self.given, Exception):
            raise self.given
        return self.given


def two_tiers(router: Any, **extra: Any) -> Cascade:
    small, large = scripted_tier("small", ("s", ["no"])), scripted_tier("large", ("l", ["yes"]))
    return Cascade([small, large], router=router, **extra)


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (
            Route("xl", "mine"),
            ValueError,
            r"the router Fixed routed to 'xl', not a tier of this cascade \(small, large\)",
        ),
        (Route("Large", "mine"), ValueError, "the router Fixed routed to 'Large'"),
        ("large", TypeError, "the router Fixed returned str, not a Route"),
        (None, TypeError, "the router Fixed returned NoneType, not a Route"),
        (RuntimeError("the router's own failure"), RuntimeError, "the router's own failure"),
    ],
)
def test_a_router_that_returns_no_route_to_a_tier_of_the_cascade_is_an_error_naming_it(
    given: Any, error: type[Exception], message: str
):
    with two_tiers(Fixed(given)) as cascade, pytest.raises(error, match=message) as caught:
        cascade.run("Q")
    assert "min_tier" not in str(caught.value)  # the caller gave none


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cost_usd": Decimal(-5)}, "Route.cost_usd must be a finite amount of 0 or more, not -5"),
        ({"cost_usd": Decimal("NaN")}, "Route.cost_usd must be a finite amount"),
        ({"cost_usd": "0.1"}, "Route.cost_usd must be a Decimal, not str"),
        ({"score": float("nan")}, "Route.score must be a finite number or None"),
        ({"tier": ""}, "Route.tier must be a non-empty string"),
    ],
)
def test_a_route_with_a_negative_or_unreadable_cost_is_refused_where_it_is_made(
    kwargs: dict[str, Any], message: str
):
    with pytest.raises((TypeError, ValueError), match=message):
        Route(**{"tier": "large", "by": "mine", **kwargs})


def test_a_routes_cost_given_as_a_number_is_billed_as_a_decimal():
    route = Route("large", "mine", cost_usd=0.25)  # type: ignore[arg-type]
    assert route.cost_usd == Decimal("0.25") and isinstance(route.cost_usd, Decimal)
    with two_tiers(Fixed(route)) as cascade:
        result = cascade.run("Q")
    assert result.cost.routing_usd == Decimal("0.25") and result.cost.total_usd > Decimal("0.25")


# -- the caller's min_tier and start_tier together ------------------------------------------------


def test_a_start_tier_below_the_min_tier_given_with_it_is_refused_and_one_at_or_above_starts_there():
    tiers = [scripted_tier(n, (n, [f"from {n}"] * 4)) for n in ("small", "medium", "large")]
    with Cascade(tiers, router=Fixed(Route("small", "mine"))) as cascade:
        with pytest.raises(ValueError, match="start_tier 'small' is below min_tier 'medium'"):
            cascade.run("Q", start_tier="small", min_tier="medium")
        with pytest.raises(ValueError, match="start_tier 'medium' is below min_tier 'large'"):
            list(cascade.stream("Q", start_tier="medium", min_tier="large"))
        same = cascade.run("Q", start_tier="medium", min_tier="medium")
        above = cascade.run("Q", start_tier="large", min_tier="medium")
    assert same.route == Route("medium", "start_tier") and same.output == "from medium"
    assert above.route == Route("large", "start_tier") and above.output == "from large"


def test_a_batch_lines_start_tier_below_the_jobs_min_tier_is_an_error_of_that_line(tmp_path: Path):
    from cascade.batch.items import Starts
    from cascade.batch.runner import BatchOptions, run_batch

    tiers = [{"name": n, "provider": "simulated", "model": "gpt-4o-mini"} for n in ("small", "large")]
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [{"id": 1, "prompt": "Q", "start_tier": "small"}, {"id": 2, "prompt": "Q", "start_tier": "large"}]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    options = BatchOptions(source, out, starts=Starts(min_tier="large"))
    asyncio.run(run_batch(parse_config({"tiers": tiers}), options))
    records = {r.get("id") or r["input_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert "line 1: start_tier 'small' is below min_tier 'large'" in records[1]["error"]
    assert records[2]["route"]["tier"] == "large" and "error" not in records[2]


def test_run_refuses_a_start_tier_flag_below_the_min_tier_flag(tmp_path: Path):
    config = tmp_path / "c.yaml"
    tiers = [{"name": n, "provider": "simulated", "model": "gpt-4o-mini"} for n in ("small", "large")]
    config.write_text(json.dumps({"tiers": tiers}))
    done = run_cli("run", str(config), "Q", "--start-tier", "small", "--min-tier", "large")
    assert done.returncode == 2 and "--start-tier 'small' is below --min-tier 'large'" in done.stderr


# -- rules that could never, or would always, match ------------------------------------------------


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"tags": {}}, "router.rules.0.when.tags: Value error, name at least one tag"),
        ({"tags": {"plan": []}}, "tag 'plan': give at least one value"),
        ({"regex": None}, "a rule needs at least one condition"),
        ({"has_code": None, "tags": None}, "a rule needs at least one condition"),
        ({"min_input_tokens": 9, "max_input_tokens": 1}, "min_input_tokens 9 is above max_input_tokens 1"),
        ({"min_messages": 5, "max_messages": 2}, "min_messages 5 is above max_messages 2"),
    ],
)
def test_a_rule_that_would_match_every_request_or_none_is_a_config_error(when: dict[str, Any], message: str):
    with pytest.raises(ConfigError) as caught:
        parse_config(simulated({"rules": [{"tier": "large", "when": when}]}))
    assert message in str(caught.value)


def test_rules_with_bounds_that_meet_and_a_list_of_tag_values_are_kept():
    rules = [
        {"tier": "large", "when": {"min_messages": 2, "max_messages": 2, "has_code": False}},
        {"tier": "large", "when": {"tags": {"plan": ["pro", "team"]}, "regex": None}},
    ]
    config = parse_config(simulated({"rules": rules}))
    assert config.router is not None and len(config.router.rules) == 2


# -- a request the caller left once routing was paid -------------------------------------------------


def test_a_request_left_after_its_classifier_answered_records_the_routing_it_paid_for(
    tmp_path: Path, fake_server: FakeProviderServer
):
    from cascade.live.store import open_store

    router = {"classifier": classifier_config(fake_server)}
    fake_server.script("router-model", [Reply.text("medium", input_tokens=1000, output_tokens=1)])
    fake_server.script("medium", [Reply.stall(2)])
    ledger = tmp_path / "ledger.db"

    async def leave_early() -> None:
        cascade = ladder(fake_server, router, ledger={"path": str(ledger)})
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(cascade.arun("Q"), 1.0)  # the medium tier is still thinking
        await cascade.aclose()

    asyncio.run(leave_early())
    rows = open_store(path=ledger, create=False).select("results")
    paid = Decimal(1000 * 1 + 1 * 2) / 1_000_000  # the loopback price: $1 / $2 per Mtok
    assert [(r["stop_reason"], r["route_tier"], r["routing_usd"], r["total_usd"]) for r in rows] == [
        ("abandoned", "medium", paid, paid)
    ]


def test_a_long_request_is_tokenized_once_however_many_rules_count_its_tokens():
    from cascade.routing.rules import Condition, Rule, RuleRouter

    counted: list[int] = []

    def tokens(text: str) -> int:
        counted.append(len(text))
        return len(text.split())

    rules = [Rule("large", Condition(min_input_tokens=10**9)) for _ in range(5)]
    router = RuleRouter([*rules, Rule("medium", Condition(max_input_tokens=10**9))], "small", tokens)
    asked = Request(messages=(Message("user", "word " * 100_000),))
    assert asyncio.run(router.route(asked, {})) == Route("medium", "rule 6")
    assert len(counted) == 1
    asyncio.run(router.route(asked, {}))
    assert len(counted) == 2  # once per request routed, not once per rule


# -- has_code ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prose",
    [
        "let me know what you think about this plan",
        "public transport in Luxembourg: is it free?",
        "class schedule for next semester?",
        "import tariffs on steel, explain them",
        "package arrived damaged, what do I do",
        "function of the liver?",
        "private lessons near me",
        "def initely not a question about code",
        "Write a haiku about {love}",
        "My list:\n- eggs;\n- milk;",
        "Dear team;\nthanks for the help",
        "SELECT the best option for me",
    ],
)
def test_everyday_lines_that_open_with_a_keyword_are_not_code(prose: str):
    assert not has_code(prose)


@pytest.mark.parametrize(
    "code",
    [
        "def f(x):\n    return x",
        "async def main():",
        "class Foo(Bar):",
        "public class Foo {",
        "public static void main(String[] args) {",
        "private int count;",
        "import numpy as np",
        "import java.util.List;",
        "import { useState } from 'react';",
        "from os import path",
        "let a = 1",
        "export const add = (a, b) => a + b",
        "function add(a, b) {",
        "#include <stdio.h>",
        "fn main() {",
        "func (s *Server) Start() error {",
        "SELECT name FROM users WHERE id = 1",
        "package com.example;",
        "int main() {\n  return 0;\n}",
        "total = total + 1;",
        "Why does this fail?\n```js\nlet a = 1\n```",
    ],
)
def test_code_in_the_common_languages_is_still_code(code: str):
    assert has_code(code)


def test_has_code_stays_linear_on_long_lines_of_keywords():
    import time

    for text in (
        "SELECT " * 100_000,
        "import a, " * 100_000 + "b c",
        "a=" * 300_000,
        "public static " * 50_000,
    ):
        started = time.perf_counter()
        has_code(text)
        assert time.perf_counter() - started < 2


# -- a start on a tier a drift alarm took out of service ------------------------------------------------


def test_a_route_to_a_tier_out_of_service_says_where_the_request_really_started(
    fake_server: FakeProviderServer, tmp_path: Path
):
    from cascade.live.store import open_store
    from tests.live_helpers import auditor_of, live_cascade, serve

    serve(fake_server)
    audit = {"sample": 0.0001, "seed": 1, "max_false_accept": 0.5, "window": 10, "on_drift": "tighten"}
    ledger = {"path": "ledger.db"}

    async def main() -> list[Result]:
        async with live_cascade(fake_server, tmp_path, ledger=ledger, audit=audit) as cascade:
            auditor = auditor_of(cascade)
            for _ in range(5):  # five audited answers of the cheap tier, every one refuted
                auditor.monitor.observe([("small", "")], False)
            assert auditor.drifted("small", {})
            return [await cascade.arun("Q", start_tier="small"), await cascade.arun("Q", min_tier="small")]

    chosen, floored = asyncio.run(main())
    for result, by in ((chosen, "start_tier"), (floored, "min_tier")):
        assert [a.tier for a in result.attempts] == ["large"]
        assert result.route is not None and (result.route.tier, result.route.by) == ("large", by)
        assert result.route.picked == "small" and result.route.fallback is not None
        assert "'small' is out of service (its drift alarm is up)" in result.route.fallback
    rows = open_store(path=tmp_path / "ledger.db", create=False).select("results")
    assert [r["route_tier"] for r in rows] == ["large", "large"]


def test_a_router_is_written_from_the_public_surface_alone():
    import cascade as public

    class Paid:
        async def route(self, request: public.Request, tags: Mapping[str, str]) -> public.Route:
            return public.Route("large" if tags.get("plan") == "pro" else "small", "paid plan")

    router: public.Router = Paid()
    assert isinstance(router, public.Router) and "Route" in public.__all__ and "Router" in public.__all__
    small, large = scripted_tier("small", ("s", ["cheap"])), scripted_tier("large", ("l", ["dear"]))
    with public.Cascade([small, large], router=router) as cascade:
        result = cascade.run("Q", tags={"plan": "pro"})
    assert result.output == "dear" and result.route == public.Route("large", "paid plan")


# -- cascade report on a batch output -------------------------------------------------------------------


RECORD = {"id": 1, "attempts": [], "verified": True, "tier": "large", "output": "x"}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"cost": {"routing_usd": None}}, "line 2: `cost.routing_usd` is None, not an amount"),
        ({"cost": {"routing_usd": "abc"}}, "line 2: `cost.routing_usd` is 'abc', not an amount"),
        ({"cost": {"routing_usd": "NaN"}}, "`cost.routing_usd` is 'NaN', not an amount"),
        ({"cost": {"total_usd": True}}, "`cost.total_usd` is True, not an amount"),
        ({"cost": [1]}, "`cost` is [1], not a mapping of amounts"),
        ({"cost": {}, "route": "large"}, "`route` is 'large', not a route with a `tier` and a `by`"),
        ({"cost": {}, "route": {"tier": None, "by": "rule 1"}}, "not a route with a `tier` and a `by`"),
    ],
)
def test_report_on_an_output_with_malformed_routing_or_money_says_which_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], record: dict[str, Any], message: str
):
    from cascade.cli.main import main

    good = {**RECORD, "cost": {"total_usd": 0.5}, "route": {"tier": "large", "by": "rule 1"}}
    output = tmp_path / "out.jsonl"
    output.write_text(json.dumps(good) + "\n" + json.dumps({**RECORD, **record}) + "\n")
    assert main(["report", str(output)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "not a batch output file" in err and message in err and "internal error" not in err


def test_report_on_an_output_from_before_routing_counts_no_route_and_no_routing_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from cascade.cli.main import main

    output = tmp_path / "out.jsonl"
    output.write_text(json.dumps({**RECORD, "cost": {"total_usd": 0.5, "baseline_usd": 1}}) + "\n")
    assert main(["report", str(output), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["routing_usd"] == 0 and figures["routed_to_tier"] == {} and figures["total_usd"] == 0.5


def test_a_router_without_a_route_method_is_refused_when_the_cascade_is_made():
    small = scripted_tier("small", ("s", ["a"]))
    for wrong in (lambda request, tags: Route("small", "f"), "small", RuleConfigLike()):
        with pytest.raises(TypeError, match="router must have an async route\\(request, tags\\) method"):
            Cascade([small], router=wrong)  # type: ignore[arg-type]


class RuleConfigLike:
    """An object that is no router: a config section passed in its place, say."""

    tier = "small"
