"""JSON Schema check: the answer must contain a JSON document that follows a schema.

The schema comes inline, from a JSON or YAML file, or from a pydantic model (validated
strictly, as JSON: `"2"` is no integer; the model's own validators apply). The request
carries the schema (for tiers with structured output) and an instruction with it (for those
without). The JSON may be bare, fenced, or embedded in prose; a failure names the failing
paths (`$.items[2].price: ...`). Score: 1.0 when the document follows the schema, 0.0
otherwise; the parsed document is the verdict's `parsed` (for a model,
`model_dump(mode="json")`).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import best_match
from pydantic import BaseModel, ValidationError

from cascade import Candidate, Request, Verdict
from cascade_verifiers._json import FoundJson, find_json, json_prefix_error
from cascade_verifiers._jsonschema import compiled, truncated

MAX_ERRORS = 3  # errors named in a failed verdict
_ERRORS_SCANNED = 50  # errors collected to pick the best from
_MESSAGE_CHARS = 200
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class JsonSchemaVerifier:
    """Passes an answer holding a JSON document valid under `schema`, `schema_file` or `model`."""

    name = "json_schema"

    def __init__(
        self,
        schema: Mapping[str, Any] | None = None,
        schema_file: str | None = None,
        model: str | type[BaseModel] | None = None,
        name: str | None = None,
    ) -> None:
        given = [
            key
            for key, value in (("schema", schema), ("schema_file", schema_file), ("model", model))
            if value is not None
        ]
        if len(given) != 1:
            which = f"got {', '.join(given)}" if given else "got none"
            raise ValueError(f"give exactly one of `schema`, `schema_file` or `model` ({which})")
        self.model: type[BaseModel] | None = None
        if model is not None:
            self.model = _import_model(model)
            try:
                loaded: Any = self.model.model_json_schema()
            except Exception as exc:  # types pydantic cannot describe in JSON Schema
                raise ValueError(f"model {model!r} has no JSON Schema: {exc}") from None
        elif schema_file is not None:
            loaded = _read_schema_file(schema_file)
        else:
            loaded = schema
        if not isinstance(loaded, Mapping):
            raise ValueError(f"the schema must be a mapping, not {type(loaded).__name__}")
        self.schema: dict[str, Any] = dict(loaded)
        try:
            self._validator = compiled(self.schema)
        except jsonschema.SchemaError as exc:
            where = f"schema_file {schema_file!r} holds an " if schema_file is not None else ""
            raise ValueError(
                f"{where}invalid JSON Schema at {_path(exc.absolute_path)}: {_short(exc.message)}"
            ) from None
        self.schema_name = _schema_name(name, self.schema)

    def prepare_request(self, request: Request) -> Request:
        """Attach the schema (for structured output) and ask for one JSON document following it."""
        compact = json.dumps(self.schema, separators=(",", ":"), ensure_ascii=False)
        note = (
            f"Answer with a single JSON document, and nothing else, that follows this JSON Schema: {compact}"
        )
        return request.replace(
            response_schema=self.schema, response_schema_name=self.schema_name
        ).with_system_note(note)

    def check_partial(self, text: str) -> Verdict | None:
        """Stop a streamed answer that began as bare JSON once it can no longer become JSON."""
        error = json_prefix_error(text)
        if error is None:
            return None
        return Verdict(self.name, False, f"the JSON can no longer become valid: {error}", score=0.0)

    def __call__(self, candidate: Candidate) -> Verdict:
        try:
            return self._judge(candidate.text)
        except Exception as exc:  # never raise on model text: a check that cannot run fails
            return self._fail(f"could not check the answer: {type(exc).__name__}: {_short(str(exc))}")

    def _judge(self, text: str) -> Verdict:
        # the closest miss: its best error deepest in the document, a wrong type counting as further off
        best: tuple[tuple[int, bool], list[str]] | None = None
        for found in find_json(text):
            parsed, errors, closeness = self._check(found)
            if not errors:
                how = "" if found.how == "bare" else f" ({found.how} in the answer)"
                return Verdict(self.name, True, f"JSON follows the schema{how}", score=1.0, parsed=parsed)
            if best is None or closeness > best[0]:
                best = (closeness, errors)
        if best is None:
            return self._fail("no JSON found in the answer")
        errors = best[1]
        more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
        return self._fail(f"JSON does not follow the schema: {'; '.join(errors[:MAX_ERRORS])}{more}")

    def instance(self, text: str) -> BaseModel | None:
        """The model's instance of the document in `text` this check passes (the first that
        validates, in the order `__call__` looks); None without a model or a valid document.
        Read from the document as written: `parsed`, its dump, need not validate again
        (aliases, excluded and computed fields, validators that change a value)."""
        if self.model is None:
            return None
        for found in find_json(text):
            try:
                return self._validated(self.model, found)
            except ValidationError:
                continue
        return None

    @staticmethod
    def _validated(model: type[BaseModel], found: FoundJson) -> BaseModel:
        # strict, as JSON: no "9.50" for a float, as the schema sent to providers says
        return model.model_validate_json(json.dumps(found.value), strict=True)

    def _check(self, found: FoundJson) -> tuple[Any, list[str], tuple[int, bool]]:
        """(parsed value, error lines best first, how close: path depth of the first error and
        whether it is about something other than a value's type)."""
        if self.model is not None:
            try:
                instance = self._validated(self.model, found)
            except ValidationError as exc:
                problems = exc.errors(include_url=False)
                lines = [f"{_path(p['loc'])}: {_short(p['msg'])}" for p in problems]
                first = problems[0] if problems else None
                closeness = (len(first["loc"]), not first["type"].endswith("_type")) if first else (0, False)
                return None, lines or ["invalid"], closeness
            return instance.model_dump(mode="json"), [], (0, True)
        errors = list(islice(self._validator.iter_errors(found.value), _ERRORS_SCANNED))
        if not errors:
            return found.value, [], (0, True)
        top = best_match(errors)
        rest = sorted((e for e in errors if e is not top), key=lambda e: [str(p) for p in e.absolute_path])
        ordered = [top, *rest]
        lines = list(dict.fromkeys(f"{_path(e.absolute_path)}: {_short(e.message)}" for e in ordered))
        return None, lines, (len(top.absolute_path), top.validator != "type")

    def _fail(self, reason: str) -> Verdict:
        return Verdict(self.name, False, reason, score=0.0)


def _import_model(reference: str | type[BaseModel]) -> type[BaseModel]:
    """The pydantic model class itself, or the one that `reference` names as 'module:Class'."""
    if isinstance(reference, type):
        if not issubclass(reference, BaseModel):
            raise ValueError(f"model {reference.__qualname__} is not a pydantic model class")
        return reference
    if not isinstance(reference, str):
        raise ValueError(f"`model` is a pydantic model class or 'module:Class', not {reference!r}")
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"`model` must name a pydantic model as 'module:Class', not {reference!r}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import model {reference!r}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, BaseModel)):
        raise ValueError(f"model {reference!r} is not a pydantic model class")
    return obj


def _read_schema_file(path: str) -> Any:
    """The schema in a JSON file (`.json`) or YAML file (anything else); relative to the cwd."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ValueError(f"cannot read schema_file {path!r}: {problem}") from None
    try:
        return json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        kind = "JSON" if file.suffix.lower() == ".json" else "YAML"
        raise ValueError(f"schema_file {path!r} is not valid {kind}: {exc}") from None


def _schema_name(name: str | None, schema: Mapping[str, Any]) -> str:
    """The name providers get: `name`, else the schema's title, else "answer", as [A-Za-z0-9_-]{1,64}."""
    if name is not None and not isinstance(name, str):
        raise ValueError(f"`name` must be a string, not {type(name).__name__}")
    if name is not None and not name.strip():
        raise ValueError("`name` must not be empty")
    if name is not None:
        return _NAME_CHARS.sub("_", name.strip())[:64]
    title = schema.get("title")
    from_title = _NAME_CHARS.sub("_", title.strip())[:64].strip("_") if isinstance(title, str) else ""
    return from_title or "answer"


def _path(parts: Any) -> str:
    """`$.items[2].price` for the parts of a path (strings are keys, ints are indexes)."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.fullmatch(str(part)):
            out += f".{part}"
        else:
            out += f"[{json.dumps(str(part), ensure_ascii=False)}]"
    return out


def _short(message: str) -> str:
    return truncated(message, _MESSAGE_CHARS)
