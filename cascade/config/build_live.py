"""Builds a config's live sections (`ledger`, `cache`, `audit`, `shadow`) into the loop
the engine runs around each request (`cascade.live.loop.LiveLoop`).

The ledger's and the cache's paths are files of state, relative to the working directory
(as `--output` is); the shadow's config is relative to the config's folder (as the files a
config names are). The audit's estimates and the day's audit spend are read back from the
ledger, so a restart neither forgets an alarm nor resets the budget.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cascade.config import CascadeConfig, VerifierConfig, load_config
from cascade.config.build import build_plan
from cascade.config.digest import config_digest
from cascade.config.live import AuditConfig, LedgerConfig
from cascade.core.errors import ConfigError
from cascade.live.audit import Auditor, restore, unannounced
from cascade.live.background import DailyBudget
from cascade.live.cache import AnswerCache
from cascade.live.drift import DriftMonitor
from cascade.live.loop import LiveLoop
from cascade.live.rows import ledger_digest
from cascade.live.shadow import ShadowRunner
from cascade.live.store import LedgerStore, open_store
from cascade.live.urls import safe_url
from cascade.live.writer import LedgerWriter
from cascade.logs import get_logger
from cascade.runtime.plan import CascadePlan
from cascade.verification.registry import build_verifier


def build_live(
    config: CascadeConfig, *, source: str | None = None, base_dir: Path | None = None
) -> LiveLoop | None:
    """The live loop of `config`, or None when it has no live section."""
    if not (config.ledger or config.cache or config.audit or config.shadow):
        return None
    digest = config_digest(config, base_dir)
    loop = LiveLoop(digest)
    if config.ledger is not None:
        loop.ledger = ledger_writer(config.ledger)
    if config.cache is not None:
        cache = config.cache
        loop.cache = AnswerCache(
            Path(cache.path).expanduser(), ttl_s=cache.ttl_s, max_entries=cache.max_entries
        )
    if config.audit is not None:
        assert loop.ledger is not None and config.ledger is not None  # the schema insists
        loop.auditor = _auditor(config.audit, config.ledger, loop.ledger, digest, source, base_dir)
        loop.tighten = config.audit.on_drift == "tighten"
        loop.auditor.on_refuted = loop.refuted
    if config.shadow is not None:
        assert loop.ledger is not None
        shadow_path, candidate, plan = _candidate(config, source=source, base_dir=base_dir, connect=True)
        loop.shadow = ShadowRunner(
            plan,
            config.shadow,
            ledger=loop.ledger,
            digest=ledger_digest(config_digest(candidate, shadow_path.parent)),
            budget=DailyBudget(
                config.shadow.max_usd_per_day, _spend_reader(config.ledger, "shadows", "shadow_usd")
            ),
        )
    return loop


def _candidate(
    config: CascadeConfig, *, source: str | None, base_dir: Path | None, connect: bool
) -> tuple[Path, CascadeConfig, CascadePlan]:
    """The shadow's config and plan; a ConfigError naming `shadow.config` when it does not load."""
    assert config.shadow is not None
    path = _path(config.shadow.config, base_dir)
    try:
        candidate = load_config(path)
        return path, candidate, build_plan(candidate, source=str(path), base_dir=path.parent, connect=connect)
    except ConfigError as exc:
        raise ConfigError(f"{source or 'config'}: shadow.config: {exc}") from None


def describe_live(config: CascadeConfig, *, source: str | None, base_dir: Path | None) -> list[str]:
    """The live sections in a line each, as `cascade validate` shows them, with the shadow's
    config loaded and checked (no file of the ledger or the cache is opened)."""
    lines = []
    if (ledger := config.ledger) is not None:
        lines.append(f"ledger: {ledger.path if ledger.path is not None else safe_url(ledger.url or '')}")
    if (cache := config.cache) is not None:
        lines.append(f"cache: {cache.path} (ttl {cache.ttl_s:g} s, at most {cache.max_entries} answers)")
    if (audit := config.audit) is not None:
        lines.append(
            f"audit: {audit.sample:.1%} of the answers below the top tier, against {audit.against}; "
            f"alarm when the {audit.confidence:.0%} bound crosses {audit.max_false_accept:.1%} "
            f"(window {audit.window}, on drift: {audit.on_drift})"
        )
    if config.shadow is not None:
        path, _, _ = _candidate(config, source=source, base_dir=base_dir, connect=False)
        lines.append(f"shadow: {path} on {config.shadow.sample:.1%} of the requests")
    return lines


def ledger_writer(config: LedgerConfig) -> LedgerWriter:
    path = ledger_path(config)
    return LedgerWriter(
        lambda: open_store(path=path, url=config.url),
        where=str(path) if path is not None else safe_url(config.url or ""),
        max_pending=config.max_pending,
    )


def _auditor(
    config: AuditConfig,
    ledger_config: LedgerConfig,
    ledger: LedgerWriter,
    digest: str,
    source: str | None,
    base_dir: Path | None,
) -> Auditor:
    monitor = DriftMonitor(limit=config.max_false_accept, confidence=config.confidence, window=config.window)
    audits, alarms = _history(ledger_config)
    restore(monitor, audits, alarms)
    judge = None
    if config.judge is not None:
        settings = {"type": "judge", **config.judge}
        where = f"{source}: audit.judge" if source else "audit.judge"
        try:
            judge = build_verifier(VerifierConfig.model_validate(settings), where=where, base_dir=base_dir)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    auditor = Auditor(
        config,
        ledger=ledger,
        digest=ledger_digest(digest),
        monitor=monitor,
        budget=DailyBudget(config.max_usd_per_day, _spend_reader(ledger_config, "audits", "audit_usd")),
        judge=judge,
    )
    auditor.announce(unannounced(monitor, alarms))
    return auditor


def _spend_reader(config: LedgerConfig | None, table: str, column: str) -> Callable[[float], float] | None:
    """What the ledger holds spent in `table` since a time, read through a store of its own
    (opened on first use, kept open)."""
    if config is None:
        return None
    opened: list[LedgerStore] = []

    def read(since: float) -> float:
        if not opened:
            opened.append(open_store(path=ledger_path(config), url=config.url))
        return opened[0].total(table, column, since)

    return read


def ledger_path(config: LedgerConfig) -> Path | None:
    return None if config.path is None else Path(config.path).expanduser()


def _history(config: LedgerConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ledger's audits and alarms so far. None when there is no ledger yet; when it
    cannot be read, none either, and that is said (alarms and the day's spend start afresh),
    while requests go on."""
    path = ledger_path(config)
    if path is not None and not path.exists():
        return [], []
    try:
        store = open_store(path=path, url=config.url, create=False)
        try:
            return store.select("audits"), store.select("alarms")
        finally:
            store.close()
    except Exception as exc:  # a file gone bad, a server down: the writer reports its own side
        where = str(path) if path is not None else safe_url(config.url or "")
        get_logger().warning(
            "ledger_history_unreadable", ledger=where, error=str(exc), then="no alarm restored"
        )
        return [], []


def _path(name: str, base_dir: Path | None) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path
