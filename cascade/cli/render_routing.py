"""The tables of `cascade train-router`."""

from __future__ import annotations

from rich.table import Table

from cascade.routing.training import RouterTraining


def router_training_table(report: RouterTraining, *, title: str, seed: int) -> Table:
    """Per tier: the examples and positives (answer accepted and correct), the held-out AUC
    and accuracy beside the majority baseline, and where the router started held-out requests."""
    held = report.held_records
    table = Table(
        title=title,
        caption=f"held out: a seeded {report.holdout:.0%} of the records ({held}, seed {seed}); "
        "the weights written are then fitted on every record. positive: the tier's answer "
        "passed every check and was correct",
    )
    table.add_column("tier", no_wrap=True)
    for column in ("examples", "positives", "AUC", "accuracy", "majority baseline", "held-out starts"):
        table.add_column(column, justify="right")
    for f in report.figures:
        starts = "-" if not held else f"{f.started}"
        if held and f.started_right is not None and f.started:
            starts += f" ({f.started_right / f.started:.0%} right)"
        if f is report.figures[-1]:
            table.add_row(f"{f.tier} (top)", "-", "-", "-", "-", "-", starts)
            continue
        h = f.held_out
        figures = (
            ("-", "-", "-")
            if h is None
            else (
                "n/a (one class)" if h.auc is None else f"{h.auc:.3f}",
                f"{h.accuracy:.1%}",
                f"{h.baseline:.1%}",
            )
        )
        table.add_row(f.tier, str(f.examples), str(f.positives), *figures, starts)
    return table
