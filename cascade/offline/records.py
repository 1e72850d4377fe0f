"""Pointing a config's replay tiers at a file of recorded outcomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.config import CascadeConfig


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
