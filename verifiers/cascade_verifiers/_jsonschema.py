"""What the JSON Schema checks share (the answer's schema, a tool's parameters)."""

from __future__ import annotations

from typing import Any

import jsonschema
import referencing
from jsonschema import validators


def compiled(schema: dict[str, Any]) -> Any:
    """A validator for `schema`, of the draft its `$schema` names (2020-12 by default); raises
    `jsonschema.SchemaError` for a schema that is not valid JSON Schema. Its registry is
    empty: `$ref`s to other documents are never fetched over the network."""
    validator_class = validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator_class.check_schema(schema)
    return validator_class(schema, registry=referencing.Registry())


def truncated(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with "..." when it is longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
