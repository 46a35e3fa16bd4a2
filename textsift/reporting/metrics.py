"""Evaluation metrics, per-class reports and per-label threshold tuning.

All scores come from scikit-learn, so they match what a user computes by hand with ``sklearn.metrics``.
Every function is pure: arrays in, plain Python values out (JSON-serialisable).

Single-label ``y`` is an int array ``(n,)`` of label ids; multi-label ``y`` is a 0/1 array ``(n, L)``.
Macro averages for single-label tasks follow scikit-learn's default: they average over the labels that
occur in the gold or predicted labels of the split (a label absent from both has no defined F1).
Multi-label averages cover every label column; ``zero_division=0`` everywhere.
"""
from __future__ import annotations

import unicodedata

import numpy as np
from sklearn import metrics as skm

AVERAGES = ("micro", "macro", "weighted")
AVERAGE_ROWS = ("micro avg", "macro avg", "weighted avg", "samples avg")

# Headline metrics shown under the per-class table, in this order when present.
HEADLINE = ("accuracy", "macro_f1", "micro_f1", "weighted_f1", "example_f1", "subset_accuracy",
            "hamming_loss", "macro_precision", "macro_recall", "micro_precision", "micro_recall", "n")


def _check_single(y_true, y_pred, labels) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).reshape(-1), np.asarray(y_pred).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {len(y_true)} vs {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("no examples to evaluate: y_true is empty")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.min() < 0 or y.max() >= len(labels):
            raise ValueError(f"{name} holds label ids outside 0..{len(labels) - 1} "
                             f"(found {int(y.min())}..{int(y.max())}); pass the full label list")
    return y_true.astype(np.int64), y_pred.astype(np.int64)


def _check_multi(y_true, y_pred, labels) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    expected = (len(y_true), len(labels))
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.ndim != 2 or y.shape != expected:
            raise ValueError(f"{name}: expected a 0/1 array of shape (n, {len(labels)}) = {expected}, "
                             f"found shape {y.shape}")
    if len(y_true) == 0:
        raise ValueError("no examples to evaluate: y_true is empty")
    return (y_true > 0).astype(np.int64), (y_pred > 0).astype(np.int64)


def single_label_metrics(y_true, y_pred, labels: list[str]) -> dict:
    """Headline metrics of a single-label task.

    Args:
        y_true, y_pred: int label ids, shape ``(n,)``.
        labels: label names; ids index this list.
    Returns:
        ``{"accuracy", "macro_f1", "micro_f1", "weighted_f1", "macro_precision", "macro_recall", "n"}``
        as Python floats (``n`` an int).
    Raises:
        ValueError: on empty input, length mismatch or label ids outside ``labels``.
    """
    y_true, y_pred = _check_single(y_true, y_pred, labels)
    out = {"accuracy": skm.accuracy_score(y_true, y_pred)}
    for avg in AVERAGES:
        out[f"{avg}_f1"] = skm.f1_score(y_true, y_pred, average=avg, zero_division=0)
    p, r, _, _ = skm.precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    out.update(macro_precision=p, macro_recall=r)
    out = {k: float(v) for k, v in out.items()}
    out["n"] = int(len(y_true))
    return out


def multi_label_metrics(y_true, y_pred, labels: list[str]) -> dict:
    """Headline metrics of a multi-label task.

    Args:
        y_true, y_pred: 0/1 indicator arrays, shape ``(n, L)``.
        labels: label names, one per column.
    Returns:
        ``{"micro_f1", "macro_f1", "weighted_f1", "example_f1", "subset_accuracy", "hamming_loss",
        "accuracy", "micro_precision", "micro_recall", "n"}``. ``example_f1`` is the samples-average F1
        and ``accuracy`` equals ``subset_accuracy`` (exact match), so every task reports ``accuracy``.
    Raises:
        ValueError: on empty input or shapes other than ``(n, len(labels))``.
    """
    y_true, y_pred = _check_multi(y_true, y_pred, labels)
    out = {f"{avg}_f1": skm.f1_score(y_true, y_pred, average=avg, zero_division=0) for avg in AVERAGES}
    out["example_f1"] = skm.f1_score(y_true, y_pred, average="samples", zero_division=0)
    out["subset_accuracy"] = skm.accuracy_score(y_true, y_pred)
    out["hamming_loss"] = skm.hamming_loss(y_true, y_pred)
    out["accuracy"] = out["subset_accuracy"]
    out["micro_precision"] = skm.precision_score(y_true, y_pred, average="micro", zero_division=0)
    out["micro_recall"] = skm.recall_score(y_true, y_pred, average="micro", zero_division=0)
    out = {k: float(v) for k, v in out.items()}
    out["n"] = int(len(y_true))
    return out


def _row(p, r, f, s) -> dict:
    return {"precision": float(p), "recall": float(r), "f1-score": float(f), "support": int(s)}


def classification_report(y_true, y_pred, labels: list[str], multi_label: bool) -> dict:
    """Per-class precision/recall/F1/support plus micro/macro/weighted averages.

    Same layout as ``sklearn.metrics.classification_report(output_dict=True)``: one entry per label name
    (every label, in ``labels`` order, even when absent from the split), then ``"micro avg"``,
    ``"macro avg"``, ``"weighted avg"`` (and ``"samples avg"`` for multi-label). The averages are the
    ones :func:`single_label_metrics` / :func:`multi_label_metrics` report.

    Returns:
        A JSON-serialisable dict.
    """
    check = _check_multi if multi_label else _check_single
    y_true, y_pred = check(y_true, y_pred, labels)
    ids = list(range(len(labels)))
    per_class = skm.precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    report = {name: _row(*vals) for name, vals in zip(labels, zip(*per_class))}
    averages = AVERAGES + ("samples",) if multi_label else AVERAGES
    support = int(y_true.sum()) if multi_label else int(len(y_true))
    for avg in averages:
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
        report[f"{avg} avg"] = _row(p, r, f, support)
    return report


def _width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def format_report(report: dict, metrics: dict, title: str) -> str:
    """A readable text table: per-class rows (in report order), the averages, then headline metrics.

    Args:
        report: output of :func:`classification_report`.
        metrics: output of :func:`single_label_metrics` or :func:`multi_label_metrics`.
        title: first line of the text.
    """
    names = list(report)
    width = max([_width(n) for n in names] + [12])
    header = _pad("", width) + f"  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>9}"
    lines = [title, "=" * _width(title), "", header]
    first_avg = next((n for n in names if n in AVERAGE_ROWS), None)
    for name in names:
        row = report[name]
        if name == first_avg:
            lines.append("")
        lines.append(_pad(name, width) + f"  {row['precision']:>9.4f}  {row['recall']:>9.4f}"
                     f"  {row['f1-score']:>9.4f}  {row['support']:>9d}")
    lines.append("")
    keys = [k for k in HEADLINE if k in metrics] + [k for k in metrics if k not in HEADLINE]
    key_width = max(len(k) for k in keys) if keys else 0
    for key in keys:
        value = metrics[key]
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{key:<{key_width}}  {shown}")
    return "\n".join(lines) + "\n"


def confusion(y_true, y_pred, num_labels: int) -> list[list[int]]:
    """Single-label confusion matrix as nested lists: ``matrix[gold][predicted]`` counts."""
    ids = list(range(num_labels))
    y_true, y_pred = _check_single(y_true, y_pred, ids)
    return skm.confusion_matrix(y_true, y_pred, labels=ids).astype(int).tolist()


DEFAULT_GRID = np.round(np.arange(1, 20) * 0.05, 2)  # 0.05 .. 0.95


def _best_threshold(y: np.ndarray, p: np.ndarray, candidates: np.ndarray) -> float:
    """The candidate ``t`` maximising F1 of ``p >= t`` against ``y``; ties go to the one closest to 0.5."""
    order = np.argsort(p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    # positives_from[i] = gold positives among the examples with index >= i in ascending order
    positives_from = np.concatenate([np.cumsum(y_sorted[::-1])[::-1], [0]])
    first = np.searchsorted(p_sorted, candidates, side="left")  # first example with p >= t
    tp = positives_from[first]
    predicted = len(p) - first
    f1 = 2 * tp / (predicted + y.sum())
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    distance = np.abs(candidates[best] - 0.5)
    # closest to 0.5; between two equally close, prefer the higher (fewer false positives)
    pick = best[np.lexsort((-candidates[best], distance))[0]]
    return float(candidates[pick])


def tune_thresholds(y_true, probs, grid=None) -> np.ndarray:
    """Per-label decision thresholds that maximise each label's F1 on dev data.

    A label is predicted when ``prob >= threshold``. With ``grid=None`` the candidates are
    0.05, 0.10, ..., 0.95 plus the midpoints between consecutive distinct observed probabilities of that
    label (every achievable split of the dev set, with a margin on both sides); otherwise exactly ``grid``.

    Args:
        y_true: 0/1 array ``(n, L)``.
        probs: probabilities ``(n, L)``.
        grid: optional candidate thresholds.
    Returns:
        float array ``(L,)``. Labels with no positive dev example keep 0.5; ties go to the threshold
        closest to 0.5.
    """
    y_true, probs = (np.asarray(y_true) > 0).astype(np.int64), np.asarray(probs, dtype=np.float64)
    if y_true.shape != probs.shape or y_true.ndim != 2:
        raise ValueError(f"y_true and probs must both have shape (n, L); found {y_true.shape} and {probs.shape}")
    thresholds = np.full(y_true.shape[1], 0.5)
    for j in range(y_true.shape[1]):
        if y_true[:, j].sum() == 0:
            continue
        if grid is None:
            seen = np.unique(probs[:, j])
            candidates = np.unique(np.concatenate([DEFAULT_GRID, (seen[1:] + seen[:-1]) / 2]))
        else:
            candidates = np.unique(np.asarray(grid, dtype=np.float64))
        thresholds[j] = _best_threshold(y_true[:, j], probs[:, j], candidates)
    return thresholds


def best_global_threshold(y_true, scores) -> tuple[float, float]:
    """(threshold, micro-F1): the threshold shared by all labels, among every achievable split of the
    scores (midpoints between consecutive distinct values, and one below and above them all), that
    maximises micro-F1 of ``scores >= threshold``; for raw scores of any range (e.g. SVM margins)."""
    y_true, scores = (np.asarray(y_true) > 0).astype(np.int64).ravel(), np.asarray(scores, np.float64).ravel()
    if y_true.sum() == 0:
        return float(scores.max()) + 1.0, 0.0
    seen = np.unique(scores)
    candidates = np.concatenate([[seen[0] - 1.0], (seen[1:] + seen[:-1]) / 2, [seen[-1] + 1.0]])
    t = _best_threshold(y_true, scores, candidates)
    predicted = scores >= t
    return t, float(2 * (predicted & (y_true > 0)).sum() / (predicted.sum() + y_true.sum()))


def tune_global_threshold(y_true, probs) -> float:
    """One threshold shared by all labels that maximises micro-F1 on dev (0.01 .. 0.99)."""
    y_true, probs = (np.asarray(y_true) > 0).astype(np.int64), np.asarray(probs, dtype=np.float64)
    if y_true.sum() == 0:
        return 0.5
    return _best_threshold(y_true.ravel(), probs.ravel(), np.round(np.arange(1, 100) * 0.01, 2))
