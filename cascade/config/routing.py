"""The `router:` section of a config: rules, a classifier model, a learned router, or rules
first and one of the others where no rule matched (validation only, no I/O)."""

from __future__ import annotations

import string

import regex
from pydantic import Field, field_validator, model_validator

from cascade.config.models import ModelConfig, Strict

DEFAULT_CLASSIFIER_PROMPT = (
    "Classify how hard the request below is to answer well. Reply with exactly one word, one of: "
    "{labels}.\n\nRequest:\n{request}"
)
PROMPT_FIELDS = ("labels", "request")
# A label is one word; the model may wrap it in quotes, bold marks or a full stop.
LABEL_WRAPPING = " \t\r\n\"'`*.:"


def label_key(text: str) -> str:
    """A label or a classifier's reply as they are matched: unwrapped, case folded."""
    return text.strip(LABEL_WRAPPING).casefold()


def label_problems(labels: dict[str, str]) -> list[str]:
    """What makes `labels` (label -> tier) ambiguous: a label that is nothing once unwrapped
    (it would take an empty reply), or two that read alike naming different tiers."""
    problems: list[str] = []
    seen: dict[str, tuple[str, str]] = {}
    for label, tier in labels.items():
        key = label_key(label)
        if not key:
            problems.append(f"label {label!r} is empty once its quotes, spaces and stops are taken off")
        elif (other := seen.setdefault(key, (label, tier)))[1] != tier:
            problems.append(
                f"labels {other[0]!r} and {label!r} read alike (case, quotes and stops are ignored) "
                f"but name different tiers ({other[1]!r}, {tier!r})"
            )
    return problems


def checked_prompt(prompt: str) -> str:
    """A classifier prompt: a `str.format` template whose only fields are {labels} and
    {request}, each there (a literal brace is written {{ or }}); ValueError says what is wrong."""
    literal = "write a literal brace as {{ or }}"
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(prompt)]
    except ValueError as exc:
        raise ValueError(f"the classifier prompt is no template ({exc}): {literal}") from None
    for name, spec, conversion in fields:
        if name is not None and (name not in PROMPT_FIELDS or spec or conversion):
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ValueError(
                f"the classifier prompt's only fields are {{labels}} and {{request}}, not {shown}: {literal}"
            )
    if not set(PROMPT_FIELDS) <= {name for name, _, _ in fields}:
        raise ValueError("the classifier prompt must contain {labels} and {request}")
    return prompt


Tags = dict[str, str | list[str]]  # tag name -> its value, or one of a list of values


class RuleCondition(Strict):
    """What a request must show for its rule to match; every condition given must hold.

    `tags` are the request's attribution tags (its metadata): each named tag must have that
    value, or one of a list of values. `regex` is searched in the request's text (system
    prompt and every message)."""

    tags: Tags | None = None
    min_input_tokens: int | None = Field(default=None, ge=0)
    max_input_tokens: int | None = Field(default=None, ge=0)
    regex: str | None = Field(default=None, min_length=1)
    has_code: bool | None = None
    min_messages: int | None = Field(default=None, ge=1)
    max_messages: int | None = Field(default=None, ge=1)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                regex.compile(pattern)
            except regex.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return pattern

    @field_validator("tags")
    @classmethod
    def _tags_say_something(cls, tags: Tags | None) -> Tags | None:
        if tags is not None and not tags:
            raise ValueError("name at least one tag (an empty mapping would match every request)")
        for name, allowed in (tags or {}).items():
            if isinstance(allowed, list) and not allowed:
                raise ValueError(f"tag {name!r}: give at least one value (none would match no request)")
        return tags

    @model_validator(mode="after")
    def _something(self) -> RuleCondition:
        # a condition given as null is none: a rule of nulls alone would match every request
        if not self.model_dump(exclude_none=True):
            raise ValueError("a rule needs at least one condition")
        for what in ("input_tokens", "messages"):
            low, high = getattr(self, f"min_{what}"), getattr(self, f"max_{what}")
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{what} {low} is above max_{what} {high}: no request would match")
        return self


class RuleConfig(Strict):
    """`when` the request shows all of its conditions, the ladder starts at `tier`."""

    tier: str = Field(min_length=1)
    when: RuleCondition
    name: str | None = None  # shown beside "rule N" in `cascade validate`


class ClassifierConfig(ModelConfig):
    """A small model asked to label each request (a tier-shaped model mapping, plus how to ask).

    `labels` maps each label the model may answer with to a tier (default: the tier names
    themselves). A reply that is not exactly one label, or a call that fails, starts the
    ladder at `fallback` (default: the cheapest tier, where the cascade starts anyway).
    The model sees the request's text only (at most `max_request_chars` of it), never its
    tags.
    """

    labels: dict[str, str] | None = None
    fallback: str | None = None
    prompt: str = DEFAULT_CLASSIFIER_PROMPT
    max_request_chars: int = Field(default=8_000, ge=100)
    # a router waits before any tier is called: a slow classifier is given up on sooner
    timeout_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)

    @field_validator("prompt")
    @classmethod
    def _placeholders(cls, prompt: str) -> str:
        return checked_prompt(prompt)


class LearnedRouterConfig(Strict):
    """A router trained by `cascade train-router`; `cuts` override the file's cut-offs per tier."""

    model_file: str = Field(min_length=1)
    cuts: dict[str, float] | None = None


class RouterConfig(Strict):
    """Rules (first match wins), then a classifier or a learned router where none matched."""

    rules: list[RuleConfig] = Field(default_factory=list)
    classifier: ClassifierConfig | None = None
    learned: LearnedRouterConfig | None = None

    @model_validator(mode="after")
    def _one_model(self) -> RouterConfig:
        if self.classifier is not None and self.learned is not None:
            raise ValueError("give a classifier or a learned router, not both")
        if not self.rules and self.classifier is None and self.learned is None:
            raise ValueError("a router needs rules, a classifier or a learned router")
        return self

    @property
    def kind(self) -> str:
        """ "rules", "classifier", "learned", or "hybrid" (rules, then a model)."""
        model = "classifier" if self.classifier else "learned" if self.learned else None
        if model is None:
            return "rules"
        return "hybrid" if self.rules else model

    def unknown_tiers(self, tiers: list[str]) -> list[str]:
        """What of this section names a tier the cascade does not have, each said where."""
        known, problems = set(tiers), []
        for i, rule in enumerate(self.rules):
            if rule.tier not in known:
                problems.append(f"router.rules.{i} (rule {i + 1}) starts at unknown tier {rule.tier!r}")
        if self.classifier is not None:
            labels = self.classifier.labels or {}
            for label, tier in labels.items():
                if tier not in known:
                    problems.append(f"router.classifier.labels.{label} names unknown tier {tier!r}")
            where = "router.classifier.labels" if labels else "router.classifier (labels: the tier names)"
            problems += [f"{where}: {p}" for p in label_problems(labels or {t: t for t in tiers})]
            fallback = self.classifier.fallback
            if fallback is not None and fallback not in known:
                problems.append(f"router.classifier.fallback names unknown tier {fallback!r}")
        if self.learned is not None:
            for tier in self.learned.cuts or {}:
                if tier not in known:
                    problems.append(f"router.learned.cuts names unknown tier {tier!r}")
        return problems


def describe_router(router: RouterConfig, cheapest: str) -> list[str]:
    """The section in a line per part, as `cascade validate` shows it."""
    lines = [f"router: {router.kind}"]
    for i, rule in enumerate(router.rules, start=1):
        when = ", ".join(f"{k}={v}" for k, v in rule.when.model_dump(exclude_none=True).items())
        name = f" ({rule.name})" if rule.name else ""
        lines.append(f"  rule {i}{name}: {when} -> {rule.tier}")
    if router.rules:
        then = "the classifier" if router.classifier else "the learned router" if router.learned else cheapest
        lines.append(f"  no rule matched -> {then}")
    if (classifier := router.classifier) is not None:
        labels = ", ".join(f"{k}->{v}" for k, v in (classifier.labels or {}).items()) or "the tier names"
        lines.append(
            f"  classifier: {classifier.provider}/{classifier.model}, labels {labels}; "
            f"fallback {classifier.fallback or cheapest}; sees the request's text, never its tags"
        )
    if (learned := router.learned) is not None:
        cuts = ", ".join(f"{k} {v:g}" for k, v in (learned.cuts or {}).items()) or "the file's"
        lines.append(f"  learned: {learned.model_file}, cut-offs {cuts}")
    return lines
