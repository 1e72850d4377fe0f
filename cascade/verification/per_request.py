"""The checks a request itself calls for, first in every chain: a response model's schema,
and the calls of a request that offers tools. Both are built-in verifiers (`json_schema`,
`tool_call`), found through the registry like any other."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cascade.core.errors import ExhaustedError
from cascade.core.values import Result
from cascade.protocols import Verifier
from cascade.runtime.plan import CascadePlan
from cascade.verification.registry import resolve

ModelT = TypeVar("ModelT", bound=BaseModel)
TOOL_CHECK = "tool_call"
_KEPT_SCHEMAS = 64  # response models whose compiled check is kept


class RequestChecks:
    """Builds, and keeps, the per-request checks of one cascade."""

    def __init__(self) -> None:
        self._schemas: dict[type[BaseModel], Verifier] = {}
        self._tools: Verifier | None = None

    def plan_for(self, plan: CascadePlan, response_model: type[BaseModel] | None, tools: bool) -> CascadePlan:
        """`plan` with the response model's check and, when `tools` are offered, the tool
        check first in every chain (a chain with a tool check of its own keeps it)."""
        checks = []
        if response_model is not None:
            checks.append(self._schema(response_model))
        if tools:
            checks.append(self._tool_check())
        return plan.checking_first(*checks, keep_own=frozenset({TOOL_CHECK})) if checks else plan

    def _schema(self, model: type[BaseModel]) -> Verifier:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"response_model must be a pydantic model class, not {model!r}")
        if model not in self._schemas:
            if len(self._schemas) >= _KEPT_SCHEMAS:
                self._schemas.pop(next(iter(self._schemas)))
            self._schemas[model] = resolve("json_schema", where="response_model")(model=model)
        return self._schemas[model]

    def _tool_check(self) -> Verifier:
        if self._tools is None:
            self._tools = resolve(TOOL_CHECK, where="tools")()
        return self._tools


def typed(result: Result[Any], model: type[ModelT]) -> Result[ModelT]:
    """`result` with its answer as a `model` instance (`parsed`); ExhaustedError, carrying
    the result, when the returned answer holds no valid one."""
    data = result.data
    attempt = result.returned_attempt
    if data is not None:
        try:  # as the check read it: strict, as JSON
            return replace(result, typed=model.model_validate_json(json.dumps(data), strict=True))
        except ValidationError:  # a key was redacted out of it, most likely
            pass
    failed = next((v.reason for v in attempt.verdicts if not v.passed), None) if attempt else None
    why = f": {failed}" if failed else ""
    raise ExhaustedError(f"no tier gave a valid {model.__name__}{why}", result)
