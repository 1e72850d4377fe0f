"""Adapter for the Anthropic messages API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import anthropic

from cascade.errors import ProviderError, ProviderTimeout, TransientProviderError
from cascade.providers.base import SdkAdapter, error_message, status_error
from cascade.secrets import redact
from cascade.tokens import fill_usage
from cascade.types import Completion, Request

DEFAULT_MAX_TOKENS = 1024  # the messages API requires max_tokens; this is used when params omit it


class AnthropicAdapter(SdkAdapter[anthropic.AsyncAnthropic]):
    """Calls `client.messages.create`; the client's own retries must be off."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic | None,
        model: str,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(client, model, {"max_tokens": DEFAULT_MAX_TOKENS, **(params or {})}, **kwargs)

    def _options(self, request: Request) -> dict[str, Any]:
        """Call options: the tier's params, the system prompt, and a forced tool call
        carrying the response schema when structured output is on (object schemas only:
        a tool's input is always an object)."""
        options: dict[str, Any] = dict(self.params)
        if request.system:
            options["system"] = request.system
        schema = request.response_schema
        if self.structured_output and schema is not None and schema.get("type") == "object":
            name = request.response_schema_name
            options["tools"] = [
                {
                    "name": name,
                    "description": "Give the answer as structured data.",
                    "input_schema": dict(schema),
                }
            ]
            options["tool_choice"] = {"type": "tool", "name": name}
        return options

    async def complete(self, request: Request) -> Completion:
        client = self._ready_client()
        try:
            response = await client.messages.create(
                model=self.model,
                messages=[{"role": m.role, "content": m.content} for m in request.messages],  # type: ignore[misc]
                **self._options(request),
            )
        except anthropic.APIError as exc:
            raise translate_anthropic_error(exc) from None
        except ValueError as exc:  # the SDK lets a non-JSON body escape as JSONDecodeError
            raise TransientProviderError(f"malformed response: {exc}") from None
        content = getattr(response, "content", None)
        if content is None:
            raise TransientProviderError("malformed response: no content")
        text = "".join(_block_text(block) for block in content)
        usage = response.usage
        return Completion(
            text=text,
            model=response.model or self.model,
            usage=fill_usage(
                usage.input_tokens if usage else None,
                usage.output_tokens if usage else None,
                request.text(),
                text,
                self.model,
            ),
            finish_reason=response.stop_reason,
        )


def _block_text(block: Any) -> str:
    """Text of one content block; a forced tool call's input is the answer, as JSON."""
    if block.type == "text":
        return str(block.text)
    if block.type == "tool_use":
        return json.dumps(block.input)
    return ""


def translate_anthropic_error(exc: anthropic.APIError) -> ProviderError:
    """The cascade error for an Anthropic SDK error (529 overloaded is transient)."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderTimeout("timeout: no answer within the tier's timeout_s")
    if isinstance(exc, anthropic.APIConnectionError):
        return TransientProviderError(redact(f"connection error: {exc.message}"))
    if isinstance(exc, anthropic.APIStatusError):
        return status_error(exc.status_code, error_message(exc.body, exc.message), exc.response.headers)
    return TransientProviderError(redact(f"malformed response: {exc.message}"))
