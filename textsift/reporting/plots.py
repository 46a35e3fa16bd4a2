"""Training-curve, confusion-matrix and reliability-diagram PNGs.

Figures are drawn on matplotlib's Agg canvas through the object API (``Figure`` + ``FigureCanvasAgg``)
rather than ``pyplot``: no display is needed, no global backend is switched under a notebook user, and
no figure is left open in pyplot's registry. matplotlib is imported inside the functions so that
``import textsift`` stays fast.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

# Fonts that can draw Chinese/Japanese/Korean labels, tried in order after DejaVu Sans.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
             "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei", "PingFang SC",
             "Heiti SC", "Hiragino Sans GB", "Noto Sans CJK JP", "Arial Unicode MS", "Droid Sans Fallback")
MAX_ANNOTATED = 30  # above this many classes, cells carry no numbers


def _new_figure(figsize: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


@functools.lru_cache(maxsize=None)
def _charmap(font_file: str) -> frozenset[int]:
    from matplotlib import ft2font

    return frozenset(ft2font.FT2Font(font_file).get_charmap())


def label_fonts(texts: list[str]) -> list[str] | None:
    """Font families (first = main, rest = per-glyph fallback) that can draw every character of
    ``texts``, or ``None`` when no installed font can (e.g. Chinese labels on a machine without a CJK
    font)."""
    from matplotlib import font_manager

    needed = {ord(c) for text in texts for c in text if not c.isspace()}
    installed = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    families, covered = [], set()
    for name in ("DejaVu Sans",) + CJK_FONTS:
        if name in installed:
            charmap = _charmap(installed[name])
            if needed & charmap - covered:
                families.append(name)
                covered |= charmap
        if needed <= covered:
            return families or ["DejaVu Sans"]
    return None


def _x_axis(history: list[dict]) -> tuple[str, list[float]]:
    """Epoch when it identifies the rows, else step, else the row number."""
    epochs = [row.get("epoch") for row in history]
    if None not in epochs and len(set(epochs)) == len(epochs):
        return "epoch", epochs
    steps = [row.get("step") for row in history]
    if None not in steps:
        return "step", steps
    return "row", list(range(1, len(history) + 1))


def _series(history: list[dict], xs: list, key: str) -> tuple[list, list]:
    points = [(x, row[key]) for x, row in zip(xs, history)
              if isinstance(row.get(key), (int, float)) and not isinstance(row.get(key), bool)
              and math.isfinite(row[key])]
    return [p[0] for p in points], [p[1] for p in points]


def _curve_keys(history: list[dict]) -> tuple[list[str], list[str]]:
    """(loss keys, metric keys): losses on the left panel; dev/train scores in [0, 1] on the right."""
    keys = list(dict.fromkeys(k for row in history for k in row))
    losses = [k for k in keys if k.endswith("loss") and "hamming" not in k]
    metrics = []
    for k in keys:
        if k in losses or not k.startswith(("dev_", "train_")) or k.endswith("_n"):
            continue
        values = _series(history, range(len(history)), k)[1]
        if values and all(0.0 <= v <= 1.0 for v in values):
            metrics.append(k)
    return losses, metrics


def plot_training_curves(history: list[dict], path: Path, title: str | None = None) -> None:
    """Two panels against epoch: losses (with the learning rate on a second axis) and dev metrics.

    Args:
        history: one dict per evaluation, e.g. ``{"epoch": 1, "step": 120, "train_loss": 0.9,
            "lr": 0.001, "dev_accuracy": 0.8, "dev_macro_f1": 0.7}``; missing keys are skipped.
        path: PNG file to write.
        title: optional figure title.
    """
    fig = _new_figure((11, 4.2))
    ax_loss, ax_metric = fig.subplots(1, 2)
    x_name, xs = _x_axis(history)
    losses, metrics = _curve_keys(history)
    for key in losses:
        ax_loss.plot(*_series(history, xs, key), marker="o", markersize=3, label=key)
    lr_x, lr_y = _series(history, xs, "lr")
    if lr_y:
        ax_lr = ax_loss.twinx()
        ax_loss.plot([], [], color="0.6", linestyle="--", label="lr (right axis)")  # legend entry only
        ax_lr.plot(lr_x, lr_y, color="0.6", linestyle="--", linewidth=1)
        ax_lr.set_ylabel("learning rate", color="0.4")
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for key in metrics:
        ax_metric.plot(*_series(history, xs, key), marker="o", markersize=3, label=key)
    for ax, name, keys in ((ax_loss, "Loss", losses), (ax_metric, "Dev metrics", metrics)):
        ax.set_title(name)
        ax.set_xlabel(x_name)
        ax.grid(alpha=0.3)
        if keys:
            ax.legend(fontsize=8, loc="best")
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="0.5")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)


def _layout(n: int, labels: list[str]) -> tuple[float, float, tuple[float, float]]:
    """(cell size in inches, tick font size, figure size) so that up to ~150 classes stay legible."""
    cell = 0.6 if n <= 10 else 0.45 if n <= MAX_ANNOTATED else max(0.16, min(0.3, 24 / n))
    font = min(10.0, max(5.0, cell * 72 * 0.55))
    longest = max((len(label) for label in labels), default=1)
    margin = 1.2 + min(longest, 40) * font * 0.62 / 72  # room for tick labels and axis titles
    return cell, font, (n * cell + margin + 1.2, n * cell + margin + 0.6)


def _normalise_rows(matrix: np.ndarray) -> np.ndarray:
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix, dtype=float), where=totals > 0)


def plot_confusion(matrix, labels: list[str], path: Path, normalize: bool = True,
                   title: str | None = None) -> None:
    """Confusion-matrix heat map, rows = gold, columns = predicted.

    The figure grows with the number of classes; cells carry numbers only up to 30 classes. Labels no
    installed font can draw (Chinese without a CJK font) are shown as ids, noted in the title.

    Args:
        matrix: ``(L, L)`` counts, ``matrix[gold][pred]``.
        labels: ``L`` label names.
        path: PNG file to write.
        normalize: divide each row by its total (per-class recall on the diagonal).
        title: optional title; default "Confusion matrix".
    """
    counts = np.asarray(matrix, dtype=float)
    n = len(labels)
    if counts.shape != (n, n):
        raise ValueError(f"matrix: expected shape ({n}, {n}) for {n} labels, found {counts.shape}")
    values = _normalise_rows(counts) if normalize else counts
    fonts = label_fonts(labels)
    names = list(labels) if fonts else [str(i) for i in range(n)]
    cell, font, figsize = _layout(n, names)
    import matplotlib

    with matplotlib.rc_context({"font.family": fonts or ["DejaVu Sans"]}):
        fig = _new_figure(figsize)
        ax = fig.subplots()
        vmax = 1.0 if normalize else max(values.max(), 1.0)
        image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of gold row" if normalize else "count")
        ticks = np.arange(n)
        ax.set_xticks(ticks, names, fontsize=font, rotation=90 if n > 10 else 45,
                      ha="center" if n > 10 else "right", rotation_mode="anchor" if n <= 10 else "default")
        ax.set_yticks(ticks, names, fontsize=font)
        big = min(20.0, 11 + n / 15)  # titles stay visible on the large figures of many classes
        ax.set_xlabel("predicted", fontsize=big)
        ax.set_ylabel("gold", fontsize=big)
        if n <= MAX_ANNOTATED:
            _annotate(ax, values, normalize, vmax, font)
        heading = title or "Confusion matrix"
        heading += " (row-normalised)" if normalize else " (counts)"
        if not fonts:
            heading += "\nlabels shown as ids: no installed font can draw the names (see *_confusion.json)"
        ax.set_title(heading, fontsize=big)
        fig.savefig(path, dpi=110)


def _annotate(ax, values: np.ndarray, normalize: bool, vmax: float, font: float) -> None:
    for (i, j), v in np.ndenumerate(values):
        if v == 0:
            continue
        text = f"{v:.2f}" if normalize else f"{int(v)}"
        ax.text(j, i, text, ha="center", va="center", fontsize=min(font, 8),
                color="white" if v > 0.5 * vmax else "black")


def plot_reliability(panels: dict[str, dict], path: Path, title: str | None = None) -> None:
    """Reliability diagram: one panel per named set of bins (e.g. ``{"before (T = 1)": ..., "after
    (T = 1.8)": ...}``), each from :func:`textsift.reporting.calibration.reliability_bins`. Bars are the
    accuracy of each confidence bin, the diagonal is perfect calibration, the gap to it is shaded, and the
    panel title carries the ECE; a histogram of the confidences sits under each panel."""
    fig = _new_figure((5.2 * len(panels), 5.6))
    axes = fig.subplots(2, len(panels), squeeze=False, height_ratios=(3, 1), sharex=True)
    for col, (name, bins) in enumerate(panels.items()):
        ax, ax_count = axes[0][col], axes[1][col]
        edges = np.asarray(bins["edges"])
        left, width = edges[:-1], np.diff(edges)
        acc = np.array([a if a is not None else 0.0 for a in bins["accuracy"]])
        conf = np.array([c if c is not None else 0.0 for c in bins["confidence"]])
        filled = np.asarray(bins["count"]) > 0
        ax.bar(left[filled], acc[filled], width[filled], align="edge", color="#4c72b0", edgecolor="white",
               label="accuracy")
        gap_low = np.minimum(acc, conf)[filled]
        ax.bar(left[filled], np.abs(acc - conf)[filled], width[filled], bottom=gap_low, align="edge",
               color="#c44e52", alpha=0.3, edgecolor="#c44e52", hatch="//", label="gap to mean confidence")
        ax.plot([0, 1], [0, 1], color="0.3", linestyle="--", linewidth=1, label="perfect calibration")
        ax.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=f"{name}: ECE {bins['ece']:.4f}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
        ax_count.bar(left, bins["count"], width, align="edge", color="0.6", edgecolor="white")
        ax_count.set(xlabel="confidence (max probability)", ylabel="texts")
        ax_count.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)
