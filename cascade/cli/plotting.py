"""Plots drawn with matplotlib (the `plot` extra): cost against accuracy (each tier alone, the
top tier, the oracle, the cascade), and a calibration's error-cost curves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from cascade.core.errors import ConfigError
from cascade.offline.evaluation import EvalReport

INSTALL_HINT = "pip install 'verified-cascade[plot]'"


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed); a ConfigError saying how to
    install it when it is missing."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(f"--plot needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_cost_accuracy(
    report: EvalReport,
    path: str | Path,
    frontier: Sequence[tuple[Decimal | float, float]] | None = None,
    *,
    title: str | None = None,
) -> None:
    """Draw `report` as cost (USD, whole data set) against accuracy into the PNG at `path`;
    `frontier` holds (cost, accuracy) points of a calibration, drawn as a step line."""
    plt = pyplot()
    from matplotlib.ticker import PercentFormatter

    fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
    try:
        if frontier:
            points = sorted((float(cost), accuracy) for cost, accuracy in frontier)
            ax.step(
                [c for c, _ in points],
                [a for _, a in points],
                where="post",
                color="tab:blue",
                alpha=0.6,
                label="calibration frontier (settings explored)",
            )
            ax.scatter([c for c, _ in points], [a for _, a in points], s=12, color="tab:blue", alpha=0.6)
        *lower, top = report.tiers_alone
        if lower:
            ax.scatter(
                [float(p.cost_usd) for p in lower],
                [p.accuracy for p in lower],
                s=70,
                marker="o",
                color="tab:gray",
                label="a tier alone",
                zorder=3,
            )
        ax.scatter(
            [float(top.cost_usd)],
            [top.accuracy],
            s=90,
            marker="s",
            color="black",
            label="top tier alone",
            zorder=3,
        )
        ax.scatter(
            [float(report.oracle.cost_usd)],
            [report.oracle.accuracy],
            s=160,
            marker="*",
            color="tab:green",
            label="oracle (a perfect verifier)",
            zorder=3,
        )
        ax.scatter(  # a ring: a tier alone at the same point (all accepted there) shows inside it
            [float(report.cascade.cost_usd)],
            [report.cascade.accuracy],
            s=260,
            marker="o",
            facecolors="none",
            edgecolors="tab:red",
            linewidths=2,
            label="cascade",
            zorder=4,
        )
        for point in [*report.tiers_alone, report.oracle, report.cascade]:
            below = point is report.cascade  # apart from the others when they coincide
            ax.annotate(
                f"{point.name}\n{point.accuracy:.1%}, ${float(point.cost_usd):.4g}",
                (float(point.cost_usd), point.accuracy),
                textcoords="offset points",
                xytext=(8, -8 if below else 6),
                va="top" if below else "bottom",
                fontsize=8,
                color="tab:red" if below else "black",
            )
        ax.set_xlabel(f"cost (USD, all {report.cascade.requests} requests)")
        ax.set_ylabel("accuracy (answers recorded correct)")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlim(left=0)
        ax.margins(x=0.15, y=0.08)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        ax.set_title(title or "Cost against accuracy on recorded outcomes")
        _save(fig, path)
    finally:
        plt.close(fig)


Curve = Sequence[tuple[float, float]]  # (cost as a share of the top tier alone's, error)


def plot_error_cost(
    path: str | Path,
    curves: Mapping[str, Curve],
    chosen: Mapping[str, tuple[float, float]],
    *,
    error_label: str,
    target: float | None,
    title: str,
) -> None:
    """Error against cost, one step line per data set (`curves`: train, unseen), the chosen
    setting marked on each, and the target as a horizontal line."""
    plt = pyplot()
    from matplotlib.ticker import PercentFormatter

    fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
    try:
        styles = zip(curves.items(), ("tab:blue", "tab:orange"), (6, -12), strict=False)
        for (name, curve), color, label_offset in styles:  # labels apart when the points coincide
            points = sorted(curve)
            ax.step([c for c, _ in points], [e for _, e in points], where="post", color=color, label=name)
            ax.scatter([c for c, _ in points], [e for _, e in points], s=10, color=color)
            if name in chosen:
                cost, error = chosen[name]
                ax.scatter([cost], [error], s=120, marker="D", color=color, edgecolor="black", zorder=4)
                ax.annotate(
                    f"chosen ({name})",
                    (cost, error),
                    textcoords="offset points",
                    xytext=(8, label_offset),
                    fontsize=8,
                )
        if target is not None:
            ax.axhline(target, color="tab:red", linestyle="--", label=f"target ({target:.1%})")
        ax.set_xlabel("cost, as a share of the top tier alone's")
        ax.set_ylabel(error_label)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title(title)
        _save(fig, path)
    finally:
        plt.close(fig)


def _save(fig: Any, path: str | Path) -> None:
    try:
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise ConfigError(f"cannot write the plot to {path}: {exc.strerror or exc}") from None
