"""An offline provider that answers from canned examples: the demo runs on it, no key needed.

Examples are JSON lines in the recorded-outcomes shape:
`{"id": ..., "prompt": ..., "responses": {"<model>": {"text": ...} | {"error": 503}}}`.
A prompt the examples do not hold gets a plain generic answer. Token counts are
estimated (flagged so), as a real provider's would be when it reports none.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator
from importlib import resources
from pathlib import Path
from typing import Any

from cascade.core.errors import ConfigError
from cascade.core.stream_events import StreamDone, StreamEvent, TextDelta
from cascade.core.tokens import count_tokens
from cascade.core.values import Completion, Request, Usage
from cascade.providers.base import status_error

BUILTIN = "builtin"


def load_examples(source: str) -> dict[str, dict[str, Any]]:
    """Prompt -> {model: response} from a JSONL file, or the bundled demo set."""
    if source == BUILTIN:
        text = resources.files("cascade.demo").joinpath("examples.jsonl").read_text("utf-8")
    else:
        try:
            text = Path(source).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"examples {source}: {exc.strerror or exc}") from None
    examples: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            examples[record["prompt"]] = record["responses"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"examples {source} line {number}: {exc}") from None
    return examples


class SimulatedProvider:
    """Answers like a model would, from `examples`, after `latency_s`."""

    def __init__(self, model: str, *, examples: str = BUILTIN, latency_s: float = 0.01) -> None:
        self.model = model
        self.examples = load_examples(examples)
        self.latency_s = latency_s

    async def complete(self, request: Request) -> Completion:
        await asyncio.sleep(self.latency_s)
        text = self._answer(request)
        usage = Usage(
            count_tokens(request.text(), self.model), count_tokens(text, self.model), estimated=True
        )
        return Completion(text=text, model=self.model, usage=usage, finish_reason="stop")

    async def stream_events(self, request: Request) -> AsyncGenerator[StreamEvent, None]:
        """The same answer, a word at a time, as a model would stream it."""
        await asyncio.sleep(self.latency_s)
        text = self._answer(request)
        for word in re.findall(r"\S+\s*|\s+", text):
            await asyncio.sleep(self.latency_s / 4)
            yield TextDelta(word)
        yield StreamDone("stop", None)  # usage unreported: counted, as for a real stream

    def _answer(self, request: Request) -> str:
        prompt = request.messages[-1].content if request.messages else ""
        response = self.examples.get(prompt, {}).get(self.model)
        if response is None:
            response = {"text": f"(simulated answer of {self.model} to: {prompt[:60]})"}
        if "error" in response:
            raise status_error(int(response["error"]), "simulated failure", None)
        return str(response["text"])

    async def aclose(self) -> None:
        return None
