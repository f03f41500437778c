"""DET curves and score histograms written to PNG.

The DET plot follows the ASVspoof papers (Martin et al., "The DET curve in assessment of
detection task performance", Eurospeech 1997): miss rate of bona fide against false
acceptance of spoofs, both on normal-deviate (probit) axes, ticks at 0.1 ... 40 %, the
EER point marked. Figures are built with ``matplotlib.figure.Figure`` and rendered by the
Agg canvas, so no pyplot state or display is touched; files are written atomically.
"""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy.stats import norm

from spoof_lightning.atomic import atomic_path
from spoof_lightning.metrics.eer import compute_det_curve, compute_eer

DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)


def _save(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    FigureCanvasAgg(figure)
    with atomic_path(path) as temp:  # same suffix: savefig takes the format from it
        figure.savefig(temp, dpi=120)
    return path


def plot_det(
    systems: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: str | Path,
    title: str | None = None,
    limits: tuple[float, float] = (0.0005, 0.5),
) -> Path:
    """Write a DET plot of one or several systems, ``{name: (bonafide, spoof)}``, to ``path``.

    Rates outside ``limits`` (fractions) are drawn on the border; each legend entry
    gives the system's EER.
    """
    if not systems:
        raise ValueError("plot_det needs at least one system")
    low, high = limits
    probit = norm.ppf
    figure = Figure(figsize=(5.5, 5.5))
    axes = figure.add_subplot()
    for name, (bonafide, spoof) in systems.items():
        frr, far, _ = compute_det_curve(bonafide, spoof)
        eer, _ = compute_eer(bonafide, spoof)
        x, y = probit(np.clip(far, low, high)), probit(np.clip(frr, low, high))
        (line,) = axes.plot(x, y, label=f"{name} (EER {100 * eer:.2f} %)")
        point = probit(np.clip(eer, low, high))
        axes.plot(point, point, "o", color=line.get_color(), mfc="none", markersize=8)
    ticks = [t for t in DET_TICKS if low <= t <= high]
    positions = probit(ticks)
    labels = [f"{100 * t:g}" for t in ticks]
    axes.plot(probit([low, high]), probit([low, high]), ":", color="grey", linewidth=0.8)
    axes.set_xticks(positions, labels)
    axes.set_yticks(positions, labels)
    axes.set_xlim(probit(low), probit(high))
    axes.set_ylim(probit(low), probit(high))
    axes.set_xlabel("False acceptance rate of spoofs (%)")
    axes.set_ylabel("Miss rate of bona fide (%)")
    axes.grid(True, linewidth=0.4)
    axes.legend(loc="upper right", fontsize="small")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_score_histogram(
    bonafide: ArrayLike,
    spoof: ArrayLike,
    path: str | Path,
    bins: int = 50,
    threshold: float | None = None,
    title: str | None = None,
) -> Path:
    """Write density histograms of bona fide and spoof scores (and a threshold line) to ``path``."""
    bonafide, spoof = np.asarray(bonafide, float).ravel(), np.asarray(spoof, float).ravel()
    if bonafide.size == 0 or spoof.size == 0:
        raise ValueError(
            f"histogram needs both classes (bona fide {bonafide.size}, spoof {spoof.size})"
        )
    edges = np.histogram_bin_edges(np.concatenate([bonafide, spoof]), bins=bins)
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    axes.hist(bonafide, bins=edges, density=True, histtype="step", label="bona fide")
    axes.hist(spoof, bins=edges, density=True, histtype="step", label="spoof")
    if threshold is not None:
        axes.axvline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    axes.set_xlabel("score (higher = more bona fide)")
    axes.set_ylabel("density")
    axes.legend(fontsize="small")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    return _save(figure, path)


__all__ = ["DET_TICKS", "plot_det", "plot_score_histogram"]
