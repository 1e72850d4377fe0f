"""The rule router: an ordered list of conditions on the request, each naming a starting
tier; the first rule that matches wins, and no match starts at the cheapest tier."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import regex

from cascade.core.routes import Route
from cascade.core.values import Request
from cascade.logs import get_logger

REGEX_TIMEOUT_S = 0.05

# Fenced code, or a line that opens (or ends) like code in the common languages: a keyword
# with the shape that follows it in code (`def name(`, `let x =`, `import a.b`), never the
# keyword alone, which opens everyday lines too ("let me know", "class schedule", "public
# transport"); a line ends like code at `) {`, `);`, an assignment's `;`, or a lone `}`.
_TYPE = r"(?:void|int|long|bool|boolean|char|double|float|string|String|[A-Z]\w*(?:<[^>\n]*>)?(?:\[\])?)"
_CODE = re.compile(
    r"""```
    | ^[ \t]*(?:
        def\s+\w+\s*\(
      | async\s+def\s+\w+\s*\(
      | class\s+[A-Za-z_]\w*(?:\s*\([^)\n]*\))?\s*(?::|\{|\bextends\b|\bimplements\b)
      | import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*\s*;?[ \t]*$
      | import\s+(?:[\w$*{}, \t]+\s+from\s+)?["'][^"'\n]+["']
      | from\s+[\w.]+\s+import\s+[\w*(]
      | (?:export\s+)?(?:async\s+)?function\b\s*\*?\s*[\w$]*\s*\(
      | (?:export\s+)?(?:const|let|var)\s+[\w$]+\s*(?::[^=\n]+)?=
      | \#include\s*[<"]
      | (?:public|private|protected)\s+(?:(?:static|final|abstract|async|override|readonly)\s+)*
        (?:class|interface|enum|"""
    + _TYPE
    + r""")\s+\w+\s*[({;=]
      | fn\s+\w+\s*[<(]
      | func\s+(?:\([^)\n]*\)\s*)?\w+\s*\(
      | SELECT\s[^\n]*\sFROM\s
      | package\s+[a-z][\w.]*;[ \t]*$
      | \}[\s;,)]*$
      | return\b[^\n]*;[ \t]*$
    )
    | \)[ \t]*\{[ \t]*$
    | \)[ \t]*;[ \t]*$
    | [\w\])][ \t]*=[^=\n]+;[ \t]*$
    """,
    re.MULTILINE | re.VERBOSE,
)


def has_code(text: str) -> bool:
    """Does the text hold code (a fence, or a line that reads like code)?"""
    return _CODE.search(text) is not None


def searched(pattern: regex.Pattern[str], text: str) -> bool:
    """Does `pattern` match somewhere in `text`? A pattern that takes longer than
    REGEX_TIMEOUT_S (a backtracking blow-up on a hostile request) does not match, and says so:
    a rule must never hold the event loop."""
    try:
        return pattern.search(text, timeout=REGEX_TIMEOUT_S) is not None
    except TimeoutError:
        get_logger().warning("rule_regex_timed_out", pattern=pattern.pattern[:80], chars=len(text))
        return False


@dataclass(frozen=True)
class Condition:
    """What a request must show for its rule to match; every field set must hold."""

    tags: Mapping[str, frozenset[str]] | None = None
    min_input_tokens: int | None = None
    max_input_tokens: int | None = None
    regex: regex.Pattern[str] | re.Pattern[str] | None = None
    has_code: bool | None = None
    min_messages: int | None = None
    max_messages: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.regex, re.Pattern):  # the `re` module's: searched with a timeout all the same
            object.__setattr__(self, "regex", regex.compile(self.regex.pattern, self.regex.flags))

    def holds(self, request: Request, tags: Mapping[str, str], seen: Seen) -> bool:
        if self.tags is not None and any(tags.get(k) not in allowed for k, allowed in self.tags.items()):
            return False
        n = len(request.messages)
        if (self.min_messages is not None and n < self.min_messages) or (
            self.max_messages is not None and n > self.max_messages
        ):
            return False
        if self.has_code is not None and seen.code != self.has_code:
            return False
        if isinstance(self.regex, regex.Pattern) and not searched(self.regex, seen.text):
            return False
        if self.min_input_tokens is None and self.max_input_tokens is None:
            return True
        count = seen.tokens  # last: the costliest condition
        return (self.min_input_tokens is None or count >= self.min_input_tokens) and (
            self.max_input_tokens is None or count <= self.max_input_tokens
        )


class Seen:
    """What the rules read of one request, each worked out once, when a rule first needs it:
    its text, whether it holds code, its token count (a long request is not tokenized again
    for every rule that counts it)."""

    def __init__(self, request: Request, count: Callable[[str], int]) -> None:
        self.request, self.count = request, count

    @cached_property
    def text(self) -> str:
        return self.request.text()

    @cached_property
    def code(self) -> bool:
        return has_code(self.text)

    @cached_property
    def tokens(self) -> int:
        return self.count(self.text)


@dataclass(frozen=True)
class Rule:
    tier: str
    when: Condition
    name: str | None = None


class RuleRouter:
    """The first rule whose condition holds names the tier ("rule N", 1-based)."""

    def __init__(self, rules: Sequence[Rule], cheapest: str, tokens: Callable[[str], int]) -> None:
        self.rules, self.cheapest, self.tokens = tuple(rules), cheapest, tokens

    def match(self, request: Request, tags: Mapping[str, str]) -> Route | None:
        """The route of the first rule that matches, or None."""
        seen = Seen(request, self.tokens)
        for i, rule in enumerate(self.rules, start=1):
            if rule.when.holds(request, tags, seen):
                return Route(rule.tier, f"rule {i}")
        return None

    async def route(self, request: Request, tags: Mapping[str, str]) -> Route:
        return self.match(request, tags) or Route(self.cheapest, "no rule")
