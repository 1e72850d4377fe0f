"""A two-tier cascade on the loopback provider with live sections, for the live-loop tests.

The cheap tier (`small`, model `cheap-model`) and the top tier (`large`, `top-model`) answer
through the real openai SDK; `answers` decides what each model says to each prompt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cascade import Cascade
from cascade.config import parse_config
from cascade.live.audit import Auditor
from cascade.live.cache import AnswerCache
from cascade.live.loop import LiveLoop
from cascade.live.writer import LedgerWriter
from cascade.testing.server import FakeProviderServer, RecordedRequest, Reply
from tests.conftest import loopback_tier

CHEAP, TOP = "cheap-model", "top-model"
Answers = Callable[[str, str], str]  # (model, prompt) -> the answer's text


def same_answer(model: str, prompt: str) -> str:
    return f"The answer to {prompt}."


def prompt_of(request: RecordedRequest) -> str:
    return next(m["content"] for m in reversed(request.body["messages"]) if m["role"] == "user")


def serve(server: FakeProviderServer, answers: Answers = same_answer) -> None:
    def reply(request: RecordedRequest) -> Reply:
        return Reply.text(answers(request.model, prompt_of(request)))

    server.default = reply


def live_config(server: FakeProviderServer, tmp_path: Path, **sections: Any) -> dict[str, Any]:
    """The config mapping: two loopback tiers, a hedging check, and `sections` (ledger, ...);
    a relative ledger or cache path is put in `tmp_path`."""
    for name in ("ledger", "cache"):
        section = sections.get(name)
        if isinstance(section, dict) and "path" in section:
            sections[name] = {**section, "path": str(tmp_path / section["path"])}
    return {
        "tiers": [loopback_tier(server, "small", CHEAP), loopback_tier(server, "large", TOP)],
        "verifiers": [{"type": "hedging"}],
        **sections,
    }


def live_cascade(server: FakeProviderServer, tmp_path: Path, **sections: Any) -> Cascade:
    config = parse_config(live_config(server, tmp_path, **sections), source="live.yaml")
    return Cascade.from_config(config, base_dir=tmp_path)


def calls_to(server: FakeProviderServer, model: str) -> int:
    return len(server.requests_for(model))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def live_of(cascade: Cascade) -> LiveLoop:
    assert cascade.live is not None, "the config has live sections"
    return cascade.live


def auditor_of(cascade: Cascade) -> Auditor:
    auditor = live_of(cascade).auditor
    assert auditor is not None
    return auditor


def cache_of(cascade: Cascade) -> AnswerCache:
    cache = live_of(cascade).cache
    assert cache is not None
    return cache


def ledger_of(cascade: Cascade) -> LedgerWriter:
    ledger = live_of(cascade).ledger
    assert ledger is not None
    return ledger
