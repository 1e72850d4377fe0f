"""The checks a request itself calls for, first in every chain: a response model's (or an
OpenAI `response_format`'s) schema, and the calls of a request that offers tools. Both are
built-in verifiers (`json_schema`, `tool_call`), found through the registry like any other."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cascade.core.errors import ExhaustedError
from cascade.core.messages import write_tool_choice
from cascade.core.values import ForcedTool, Result, ToolChoice
from cascade.protocols import Verifier
from cascade.runtime.plan import CascadePlan
from cascade.verification.registry import resolve

ModelT = TypeVar("ModelT", bound=BaseModel)
TOOL_CHECK = "tool_call"
_KEPT_SCHEMAS = 64  # response models whose compiled check is kept


class RequestChecks:
    """Builds, and keeps, the per-request checks of one cascade."""

    def __init__(self) -> None:
        self._schemas: dict[Any, Verifier] = {}  # by model class, or by a schema's JSON text
        self._tools: Verifier | None = None

    def plan_for(
        self,
        plan: CascadePlan,
        *,
        response_model: type[BaseModel] | None = None,
        response_format: Mapping[str, Any] | None = None,
        tools: bool = False,
        tool_choice: ToolChoice | None = None,
    ) -> CascadePlan:
        """`plan` with the answer's schema check and, when `tools` are offered, the tool
        check first in every chain (a chain with a tool check of its own keeps it)."""
        if response_model is not None and response_format is not None:
            raise ValueError("give response_model or response_format, not both")
        checks = []
        if response_model is not None:
            checks.append(self._model_check(response_model))
        if response_format is not None and (schema := format_schema(response_format)) is not None:
            checks.append(self._schema_check(*schema))
        if checks and (tool_choice == "required" or isinstance(tool_choice, ForcedTool)):
            # the schema check fails every call, the tool check every text: each tier paid to fail
            raise ValueError(
                f"tool_choice {write_tool_choice(tool_choice)} requires a tool call, and a response schema "
                "an object in the answer: no answer can be both (give tool_choice auto, or no schema)"
            )
        if tools:
            checks.append(self._tool_check())
        return plan.checking_first(*checks, keep_own=frozenset({TOOL_CHECK})) if checks else plan

    def typed(self, result: Result[Any], model: type[ModelT]) -> Result[ModelT]:
        """`result` with its `model` instance, read by the model's check (see `typed`)."""
        return typed(result, model, self._model_check(model))

    def _model_check(self, model: type[BaseModel]) -> Verifier:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"response_model must be a pydantic model class, not {model!r}")
        return self._kept(model, lambda: resolve("json_schema", where="response_model")(model=model))

    def _schema_check(self, name: str | None, schema: Mapping[str, Any]) -> Verifier:
        key = json.dumps([name, schema], sort_keys=True, default=str)
        try:  # the registry is looked up once per schema, when its check is built
            return self._kept(
                key, lambda: resolve("json_schema", where="response_format")(schema=schema, name=name)
            )
        except ValueError as exc:
            raise ValueError(f"response_format: {exc}") from None

    def _kept(self, key: Any, make: Callable[[], Verifier]) -> Verifier:
        if key not in self._schemas:
            if len(self._schemas) >= _KEPT_SCHEMAS:
                self._schemas.pop(next(iter(self._schemas)))
            self._schemas[key] = make()
        return self._schemas[key]

    def _tool_check(self) -> Verifier:
        if self._tools is None:
            self._tools = resolve(TOOL_CHECK, where="tools")()
        return self._tools


def format_schema(response_format: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]] | None:
    """(name, schema) of an OpenAI `response_format`: `json_schema` gives its own,
    `json_object` any object; `text` asks for none (None)."""
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return None, {"type": "object"}
    spec = response_format.get("json_schema") if kind == "json_schema" else None
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if not isinstance(schema, Mapping):
        raise ValueError(
            "response_format must be {type: text}, {type: json_object} or "
            "{type: json_schema, json_schema: {name, schema}}"
        )
    name = spec.get("name") if isinstance(spec, Mapping) else None
    return (name if isinstance(name, str) else None), schema


def typed(result: Result[Any], model: type[ModelT], check: Verifier) -> Result[ModelT]:
    """`result` with its answer as a `model` instance (`parsed`); ExhaustedError, carrying
    the result, when the returned answer holds no valid one. The instance is read again from
    the returned text (redacted: no key in it) by `check`, the model check that passed it."""
    data = result.data
    attempt = result.returned_attempt
    if data is not None and result.output is not None:
        instance = _instance(check, model, result.output, data)
        if instance is not None:
            return replace(result, typed=instance)
    failed = next((v.reason for v in attempt.verdicts if not v.passed), None) if attempt else None
    why = f": {failed}" if failed else ""
    raise ExhaustedError(f"no tier gave a valid {model.__name__}{why}", result)


def _instance(check: Verifier, model: type[ModelT], text: str, data: Any) -> ModelT | None:
    """The instance `check` reads from `text`; a check without `instance` (a plug-in's own
    `json_schema`) has it validated from the data it extracted."""
    read = getattr(check, "instance", None)
    try:
        instance = read(text) if callable(read) else model.model_validate_json(json.dumps(data), strict=True)
    except ValidationError:  # a key was redacted out of it, most likely
        return None
    return instance if isinstance(instance, model) else None
