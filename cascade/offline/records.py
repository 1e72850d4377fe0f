"""Pointing a config's replay tiers at a file of recorded outcomes, and checking the file
can answer for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.config import CascadeConfig
from cascade.core.errors import ConfigError
from cascade.providers.replay import RecordedSet


def with_records(config: CascadeConfig, path: Path) -> CascadeConfig:
    """`config` with `path` as the records of every replay model that names none."""
    tiers = []
    for tier in config.tiers:
        alternates = [
            a if a.provider != "replay" or a.records else a.model_copy(update={"records": str(path)})
            for a in tier.alternates
        ]
        update: dict[str, Any] = {"alternates": alternates}
        if tier.provider == "replay" and not tier.records:
            update["records"] = str(path)
        tiers.append(tier.model_copy(update=update))
    return config.model_copy(update={"tiers": tiers})


def check_fits(config: CascadeConfig, recorded: RecordedSet, path: Path) -> None:
    """Refuse data that cannot score `config`: a replay model with no recorded answer in it,
    or no `correct` label at all (every accuracy would read 0 %)."""
    models = recorded.models()
    missing = [
        f"tiers.{i} ({model.model})"
        for i, tier in enumerate(config.tiers)
        for model in (tier, *tier.alternates)
        if model.provider == "replay" and model.model not in models
    ]
    if missing:
        known = ", ".join(sorted(models)) or "none"
        raise ConfigError(
            f"{path}: no recorded answers of {', '.join(missing)} (models in the data: {known})"
        )
    labelled = any(record.correct(model) is not None for record in recorded for model in record.responses)
    if recorded and not labelled:
        raise ConfigError(f"{path}: no answer carries a `correct` label, so no accuracy can be measured")


def check_held_out(train: RecordedSet, test: RecordedSet, train_path: Path, test_path: Path) -> None:
    """Refuse a held-out file that shares requests with the training data: figures on it
    would be called unseen and would not be."""
    seen = {record.request for record in train}
    shared = sum(record.request in seen for record in test)
    if shared:
        raise ConfigError(
            f"{test_path}: {shared} of its {len(test)} requests are also in {train_path}: "
            "held-out data must hold none of the training requests"
        )
