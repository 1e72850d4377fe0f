"""Builds the router of a config's `router:` section: rules, a classifier (a model built
like a tier's: priced, retried, rate-limited), a learned router's file, or rules then one
of the other two."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import regex

from cascade.config.models import ModelConfig
from cascade.config.routing import LearnedRouterConfig, RouterConfig, RuleConfig
from cascade.core.errors import ConfigError
from cascade.core.tokens import count_tokens
from cascade.protocols import Router
from cascade.routing.classifier import ClassifierRouter
from cascade.routing.learned import LearnedRouter
from cascade.routing.learned_model import load
from cascade.routing.rules import Condition, Rule, RuleRouter
from cascade.routing.start import HybridRouter
from cascade.runtime.ladder import Tier, TierModel


def build_router(
    config: RouterConfig,
    tiers: Sequence[Tier],
    *,
    model: Callable[[ModelConfig], TierModel],
    base_dir: Path | None = None,
) -> Router:
    """The router `config` describes, over `tiers` (cheapest first); `model` builds the
    classifier's model as a tier's are built (`config.build.build_model`)."""
    names = [t.name for t in tiers]
    counted_as = tiers[0].primary.model  # token counts as the cheapest tier's model counts them

    rules = RuleRouter(
        [_rule(r) for r in config.rules], names[0], lambda text: count_tokens(text, counted_as)
    )
    if config.classifier is not None:
        classifier = config.classifier
        then: Router = ClassifierRouter(
            model(classifier),
            classifier.labels or {name: name for name in names},
            classifier.fallback or names[0],
            classifier.prompt,
            classifier.max_request_chars,
        )
    elif config.learned is not None:
        then = _learned(config.learned, tiers, base_dir)
    else:
        return rules
    return HybridRouter(rules, then) if config.rules else then


def _rule(config: RuleConfig) -> Rule:
    when = config.when
    tags = None
    if when.tags is not None:
        tags = {k: frozenset([v] if isinstance(v, str) else v) for k, v in when.tags.items()}
    return Rule(
        config.tier,
        Condition(
            tags=tags,
            min_input_tokens=when.min_input_tokens,
            max_input_tokens=when.max_input_tokens,
            regex=None if when.regex is None else regex.compile(when.regex),
            has_code=when.has_code,
            min_messages=when.min_messages,
            max_messages=when.max_messages,
        ),
        config.name,
    )


def _learned(learned: LearnedRouterConfig, tiers: Sequence[Tier], base_dir: Path | None) -> Router:
    """The router of a `cascade train-router` file, refused when it was trained for other
    tiers or models (relative paths are relative to the config's folder)."""
    path = Path(learned.model_file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        model = load(path, [t.name for t in tiers], [t.primary.model for t in tiers])
        return LearnedRouter(model, learned.cuts)
    except ValueError as exc:
        raise ConfigError(f"router.learned: {exc}") from None
