"""Thresholds written into a config: for each cut-off, a short decimal threshold that takes
exactly the same decisions on the data, so that the engine, run on the written config,
agrees exactly with the simulation; and the config itself, with them as per-tier overrides
and the tiers the chosen ladder skips taken out of `tiers` (and out of every verifier's
`tiers`, `skip_tiers` and `overrides`).
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from cascade.core.errors import ConfigError
from cascade.offline.calibration.observations import Slot


def written_threshold(slot: Slot, cut: float, observed: Sequence[float]) -> float:
    """A short decimal threshold that decides exactly like cut-off `cut` on the `observed`
    scores (sorted): any threshold strictly past the next lower observed score's, up to
    `cut`'s own, does; the one nearest the middle, with the fewest digits, is taken."""
    lower = [s for s in observed if s < cut]
    exact = slot.threshold_for(cut)
    previous = slot.threshold_for(lower[-1] if lower else 0.0)
    return _short_between(previous, exact)


def _short_between(excluded: float, included: float) -> float:
    """The decimal with the fewest digits in the interval from `excluded` (open end) to
    `included` (closed end), nearest the middle; `included` when there is none."""
    if excluded == included or math.isnan(excluded):
        return included
    if math.isinf(excluded):  # "off": stay within a factor of two of the finite end
        excluded = included + math.copysign(max(1.0, abs(included)), excluded)
    low, high = sorted((excluded, included))
    middle = Decimal(repr((low + high) / 2))

    def inside(x: float) -> bool:
        return excluded < x <= included if excluded < included else included <= x < excluded

    for digits in range(0, 18):
        step = Decimal(1).scaleb(-digits)
        nearest = (middle / step).to_integral_value()
        for k in (nearest, nearest - 1, nearest + 1):
            value = float(k * step)
            if inside(value):
                return value
    return included


def read_raw_config(path: Path) -> dict[str, Any]:
    """The config file as written (comments aside), to be written again with thresholds."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the config must be a mapping with a `tiers` list")
    return raw


def calibrated_yaml(
    raw: dict[str, Any],
    config_dir: Path,
    out_dir: Path,
    thresholds: dict[tuple[int, str], float],
    header: str,
    dropped: Sequence[str] = (),
) -> str:
    """`raw` with `thresholds` ((entry, tier) -> value) as per-tier overrides, the `dropped`
    tiers taken out, and relative `*_file` paths rewritten to resolve from `out_dir`, below a
    comment `header`."""
    data = copy.deepcopy(raw)
    entries = data.get("verifiers") or []
    for (entry, tier), value in thresholds.items():
        overrides = entries[entry].get("overrides") or {}
        overrides[tier] = {**(overrides.get(tier) or {}), "threshold": value}
        entries[entry]["overrides"] = overrides
    for entry in entries:
        _rebase_files(entry, config_dir, out_dir)
    if dropped:
        data["tiers"] = [t for t in data["tiers"] if t.get("name") not in dropped]
        if "verifiers" in data:
            data["verifiers"] = _without_tiers(entries, set(dropped))
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + body


def _without_tiers(entries: list[Any], dropped: set[str]) -> list[Any]:
    """The verifier entries with every mention of the `dropped` tiers taken out; an entry
    that ran on dropped tiers alone goes with them."""
    kept = []
    for entry in entries:
        if not isinstance(entry, dict):
            kept.append(entry)
            continue
        if entry.get("tiers"):
            entry["tiers"] = [t for t in entry["tiers"] if t not in dropped]
            if not entry["tiers"]:
                continue
        if entry.get("skip_tiers"):
            entry["skip_tiers"] = [t for t in entry["skip_tiers"] if t not in dropped]
        if entry.get("overrides"):
            entry["overrides"] = {t: v for t, v in entry["overrides"].items() if t not in dropped}
        if entry.get("verifiers"):
            entry["verifiers"] = _without_tiers(entry["verifiers"], dropped)
        kept.append(entry)
    return kept


def write_calibrated(
    raw: dict[str, Any],
    config_path: Path,
    out: Path,
    thresholds: Sequence[tuple[Slot, float]],
    header: str,
    dropped: Sequence[str] = (),
) -> None:
    """Write `raw` to `out` with each slot's threshold, without the `dropped` tiers (see
    `calibrated_yaml`)."""
    by_entry = {(s.entry, s.tier): t for s, t in thresholds}
    text = calibrated_yaml(raw, config_path.parent, out.parent, by_entry, header, dropped)
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None


def _rebase_files(entry: Any, config_dir: Path, out_dir: Path) -> None:
    if not isinstance(entry, dict):
        return
    for key, value in entry.items():
        if key.endswith("_file") and isinstance(value, str) and not Path(value).is_absolute():
            entry[key] = os.path.relpath(os.path.abspath(config_dir / value), os.path.abspath(out_dir))
    for settings in (entry.get("overrides") or {}).values():
        _rebase_files(settings, config_dir, out_dir)
    for child in entry.get("verifiers") or []:
        _rebase_files(child, config_dir, out_dir)
