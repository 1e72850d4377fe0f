"""Whether two answers to one request agree: the audit's and the shadow's comparison."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Literal

from cascade.core.values import Result, tool_call_dict

Match = Literal["auto", "exact", "normalised"]
_SPACES = re.compile(r"\s+")
_EDGES = " \t\n\"'`.!;:"


def normalised(text: str) -> str:
    """Text as compared by `normalised`: Unicode-normalised, case-folded, spaces collapsed,
    quotes and end punctuation taken off its edges ("Paris." and "paris" agree)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", text).strip(_EDGES)


def agree(answer: Result, reference: Result, match: Match = "auto") -> bool:
    """Do `answer` and `reference` say the same? Tool calls must be the same calls; under
    `auto`, structured answers (a verifier extracted data from both) compare as the parsed
    objects, other answers as normalised text."""
    if answer.tool_calls or reference.tool_calls:
        return _calls(answer) == _calls(reference)
    if match == "auto" and answer.data is not None and reference.data is not None:
        return bool(answer.data == reference.data)
    if answer.output is None or reference.output is None:
        return False
    if match == "exact":
        return answer.output.strip() == reference.output.strip()
    return normalised(answer.output) == normalised(reference.output)


def _calls(result: Result) -> list[tuple[str, str]]:
    """The calls as (name, arguments in one JSON spelling): key order is no difference."""
    return sorted((c["name"], _canonical(c["arguments"])) for c in map(tool_call_dict, result.tool_calls))


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments
