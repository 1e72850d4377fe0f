"""The classifier router: a small model asked to label the request (by default with the tier
names), its reply parsed strictly. A reply that is not exactly one label, or a call that
fails after its retries, starts the ladder at the fallback tier, and the route says why.
What the classifier's calls cost is the request's routing cost."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from cascade.config.routing import checked_prompt, label_key, label_problems
from cascade.core.redaction import redact
from cascade.core.routes import Route
from cascade.core.tokens import most_tokens
from cascade.core.values import Message, Request, Usage
from cascade.runtime.call import call_model
from cascade.runtime.ladder import TierModel

# What the call asks for unless the model's own params say otherwise: a label, not an essay.
DEFAULT_PARAMS = {"max_tokens": 16, "temperature": 0}
SHOWN_REPLY_CHARS = 60
REDACTED_REPLY_CHARS = 4096  # what of a long reply is redacted before the shown part is cut from it
FRAMING_TOKENS = 16  # what frames the classifier's one message, for its worst case


class ClassifierRouter:
    """Asks `model` for one of `labels` (label -> tier) with `prompt` ({labels}, {request})."""

    def __init__(
        self,
        model: TierModel,
        labels: Mapping[str, str],
        fallback: str,
        prompt: str,
        max_request_chars: int,
    ) -> None:
        if problems := label_problems(dict(labels)):
            raise ValueError("; ".join(problems))
        self.model, self.fallback, self.prompt = model, fallback, checked_prompt(prompt)
        self.labels = {label_key(label): tier for label, tier in labels.items()}
        self.shown_labels = ", ".join(labels)
        self.max_request_chars = max_request_chars
        own = getattr(model.provider, "params", {}) or {}
        self.params = {k: v for k, v in DEFAULT_PARAMS.items() if k not in own}

    def asking(self, request: Request) -> Request:
        """The classifier's own request: the prompt around the request's text (never its
        tags), the text cut to its head and tail beyond `max_request_chars`."""
        text = conversation(request)
        limit = self.max_request_chars
        if len(text) > limit:
            text = f"{text[: limit * 3 // 4]}\n[...]\n{text[-(limit // 4) :]}"
        question = self.prompt.format(labels=self.shown_labels, request=text)
        return Request(messages=(Message("user", question),), params=self.params)

    def label(self, reply: str) -> str | None:
        """The tier a reply names, or None when it is not exactly one label."""
        return self.labels.get(label_key(reply))

    async def route(self, request: Request, tags: Mapping[str, str]) -> Route:
        call = await call_model(self.model, self.asking(request))
        if call.completion is None:
            why = f"classifier call failed: {redact(call.error or 'no answer')}"
            return Route(self.fallback, "classifier", cost_usd=call.cost_usd, fallback=why)
        reply = call.completion.text
        tier = self.label(reply)
        if tier is None:
            # redacted before it is cut: a key cut in two would keep a piece too short to find
            shown = redact(reply.strip()[:REDACTED_REPLY_CHARS])[:SHOWN_REPLY_CHARS]
            why = f"classifier reply {shown!r} is not one of: {self.shown_labels}"
            return Route(self.fallback, "classifier", cost_usd=call.cost_usd, fallback=why)
        return Route(tier, "classifier", cost_usd=call.cost_usd)

    def worst_cost_usd(self, request: Request) -> Decimal:
        """The most one request's routing can cost: every try billed at its token limit."""
        asking = self.asking(request)
        model = self.model
        output = int(self.params.get("max_tokens") or model.max_tokens or DEFAULT_PARAMS["max_tokens"])
        usage = Usage(most_tokens(asking.text(), model.model) + FRAMING_TOKENS, output)
        return model.price.cost(usage) * model.retry.max_attempts

    def wrap_models(self, wrap: Callable[[TierModel], TierModel]) -> None:
        """Put the classifier behind `wrap` (a batch job's rate limits)."""
        self.model = wrap(self.model)

    async def aclose(self) -> None:
        await self.model.provider.aclose()


def conversation(request: Request) -> str:
    """The request's text as the classifier reads it: the system prompt and each turn by role."""
    parts = [f"system: {request.system}"] if request.system else []
    parts += [f"{m.role}: {m.content}" for m in request.messages if m.content]
    return "\n".join(parts)
