"""The learned router's examples from observations (`cascade.offline.calibration.observe`):
one per record, labelled per tier below the top with whether that tier's answer passed
every check and was recorded `correct`. `cascade train-router` and the routing benchmark
train on them."""

from __future__ import annotations

from collections.abc import Callable, Collection

from cascade.config import CascadeConfig
from cascade.offline.calibration import Observations
from cascade.offline.calibration.observations import TierOutcome
from cascade.providers.replay import RecordedSet
from cascade.routing.training import RoutingExample


def routing_examples(
    config: CascadeConfig,
    recorded: RecordedSet,
    observed: Observations,
    only: Collection[str] | None = None,
) -> tuple[list[RoutingExample], int]:
    """One example per record (of `only`, when given) whose every tier below the top has a
    known label, and how many records lacked one."""
    models = [[tier.model, *(a.model for a in tier.alternates)] for tier in config.tiers]
    examples: list[RoutingExample] = []
    unlabelled = 0
    for record_id, row in zip(observed.ids, observed.rows, strict=True):
        if only is not None and record_id not in only:
            continue
        record = recorded.records[record_id]
        labels = [_label(outcome, models[k], record.correct) for k, outcome in enumerate(row[:-1])]
        if any(label is None for label in labels):
            unlabelled += 1
            continue
        examples.append(RoutingExample(record_id, record.request, tuple(label is True for label in labels)))
    return examples, unlabelled


def _label(outcome: TierOutcome, models: list[str], correct: Callable[[str], bool | None]) -> bool | None:
    """Whether a tier's answer passed every check and was correct; None when its answer has
    no `correct` label. A tier that gave no answer is a plain False."""
    if not outcome.answered:
        return False
    if correct(models[outcome.model]) is None:
        return None
    accepted = outcome.finished and all(check.passed for check in outcome.checks)
    return accepted and outcome.correct
