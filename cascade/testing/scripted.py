"""An in-process provider that answers from a script: for testing cascades without network."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from cascade.core.tokens import estimate_tokens
from cascade.core.values import Completion, Request, Usage

Reply = str | Completion | BaseException


class ScriptedProvider:
    """Answers each call with the next scripted reply: a text, a Completion, or an exception
    to raise. When the script runs out it answers `default` (raising if that is None)."""

    def __init__(self, model: str, replies: Iterable[Reply] = (), *, default: Reply | None = None):
        self.model = model
        self.replies: deque[Reply] = deque(replies)
        self.default = default
        self.requests: list[Request] = []

    async def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        reply = self.replies.popleft() if self.replies else self.default
        if reply is None:
            raise AssertionError(f"ScriptedProvider {self.model!r}: script exhausted")
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, Completion):
            return reply
        usage = Usage(estimate_tokens(request.text()), estimate_tokens(reply))
        return Completion(text=reply, model=self.model, usage=usage, finish_reason="stop")

    async def aclose(self) -> None:
        return None
