"""The cache of verified answers: exact match on the normalised request and the config; only
verified answers stored; a hit costs nothing and says so; `cache=False` skips it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import BaseModel
from structlog.testing import capture_logs

from cascade.core.events import CascadeEvent, StreamDelta, StreamResult
from cascade.live.cache import AnswerCache
from tests.live_helpers import CHEAP, TOP, cache_of, calls_to, live_cascade, serve

CACHE = {"path": "cache.sqlite"}


def ask_twice(cascade, prompt="What is 2 + 2?", first=None, second=None):
    """Two calls, the first's answer committed to the cache before the second."""
    one = cascade.run(prompt, **(first or {}))
    assert cache_of(cascade).writer.flush()
    two = cascade.run(prompt, **(second or first or {}))
    return one, two


def test_a_repeated_request_is_a_free_hit_that_says_where_it_came_from(fake_server, tmp_path):
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
        first, again = ask_twice(cascade)
    assert (first.cache, again.cache) == ("miss", "hit")
    assert again.output == first.output and again.verified and again.tier == "small"
    assert again.cost.total_usd == 0 and again.attempts[0].cost_usd == 0
    assert first.request_id in again.attempts[0].verdicts[0].reason  # names the request that paid
    assert calls_to(fake_server, CHEAP) == 1  # the second was never sent


def test_only_verified_answers_are_stored(fake_server, tmp_path):
    serve(fake_server, lambda model, prompt: "I'm not sure.")  # no tier passes the hedging check
    with live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
        first, again = ask_twice(cascade)
    assert not first.verified and (first.cache, again.cache) == ("miss", "miss")
    assert calls_to(fake_server, TOP) == 2


def test_whatever_shapes_the_answer_is_part_of_the_key(fake_server, tmp_path):
    serve(fake_server)

    class Answer(BaseModel):
        value: int

    variants: list[dict[str, Any]] = [
        {"system": "Be brief."},
        {"temperature": 0.2},
        {"min_tier": "large"},
        {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]},
        {"tags": {"user": "tags are not part of it"}},
    ]
    with live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
        cascade.run("What is 2 + 2?")
        assert cache_of(cascade).writer.flush()
        seen = [cascade.run("What is 2 + 2?", **v).cache for v in variants]
    assert seen == ["miss", "miss", "miss", "miss", "hit"]


def test_a_typed_answer_comes_back_typed_from_the_cache(fake_server, tmp_path):
    class Answer(BaseModel):
        value: int

    serve(fake_server, lambda model, prompt: '{"value": 4}')
    with live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
        first, again = ask_twice(cascade, first={"response_model": Answer})
    assert again.cache == "hit" and again.parsed == Answer(value=4) == first.parsed


def test_a_config_change_invalidates_the_cache(fake_server, tmp_path):
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
        cascade.run("What is 2 + 2?")
    changed = {"reask": 1}  # any setting that can change an answer
    with live_cascade(fake_server, tmp_path, cache=CACHE, **changed) as cascade:
        assert cascade.run("What is 2 + 2?").cache == "miss"
    with live_cascade(fake_server, tmp_path, cache=CACHE, ledger={"path": "l.sqlite"}) as cascade:
        assert cascade.run("What is 2 + 2?").cache == "hit"  # a ledger does not change answers


def test_cache_false_neither_reads_nor_fills_it(fake_server, tmp_path):
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
        first, again = ask_twice(cascade, first={"cache": False})
        assert (first.cache, again.cache) == (None, None)
        assert cascade.run("What is 2 + 2?").cache == "miss"  # nothing was stored for it


def test_entries_expire_after_their_ttl(fake_server, tmp_path):
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, cache={**CACHE, "ttl_s": 0.3}) as cascade:
        cascade.run("What is 2 + 2?")
        assert cache_of(cascade).writer.flush()
        assert cascade.run("What is 2 + 2?").cache == "hit"
        time.sleep(0.4)
        assert cascade.run("What is 2 + 2?").cache == "miss"


def test_the_cache_keeps_under_its_size_cap(fake_server, tmp_path):
    serve(fake_server)
    with live_cascade(fake_server, tmp_path, cache={**CACHE, "max_entries": 5}) as cascade:
        for i in range(12):
            cascade.run(f"question {i}")
            assert cache_of(cascade).writer.flush()
        newest = cascade.run("question 11").cache
        oldest = cascade.run("question 0").cache
    import sqlite3

    (count,) = sqlite3.connect(tmp_path / "cache.sqlite").execute("SELECT count(*) FROM answers").fetchone()
    assert count <= 6 and (newest, oldest) == ("hit", "miss")  # the oldest went first


def test_a_stream_served_from_the_cache_comes_whole_at_once(fake_server, tmp_path):
    serve(fake_server)

    async def main() -> list[CascadeEvent]:
        async with live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
            await cascade.arun("What is 2 + 2?")
            assert cache_of(cascade).writer.flush()
            return [event async for event in cascade.astream("What is 2 + 2?")]

    delta, last = asyncio.run(main())
    assert isinstance(delta, StreamDelta) and isinstance(last, StreamResult)
    assert last.result.cache == "hit" and delta.text == last.result.output


def test_a_corrupt_cache_file_steps_aside_and_requests_go_on(fake_server, tmp_path):
    serve(fake_server)
    (tmp_path / "cache.sqlite").write_bytes(b"this is no database" * 200)
    with capture_logs() as logs, live_cascade(fake_server, tmp_path, cache=CACHE) as cascade:
        results = [cascade.run("What is 2 + 2?") for _ in range(2)]
    assert all(r.verified and r.cache == "miss" for r in results)
    assert {"cache_unavailable"} <= {e["event"] for e in logs}


def test_the_cache_ignores_an_answer_that_is_not_verified_even_if_put(tmp_path):
    from decimal import Decimal

    from cascade.core.values import Attempt, Outcome, Result

    cache = AnswerCache(tmp_path / "c.sqlite", ttl_s=60, max_entries=10)
    attempt = Attempt("t", "m", Outcome.REJECTED, output="unchecked")
    cache.put("k", Result("unchecked", False, (attempt,), 0, Decimal(0)))
    assert cache.writer.flush()
    assert cache.get("k", request_id="r", tags={}) is None
    cache.close()
