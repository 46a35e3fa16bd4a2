"""Every report file of one evaluated split: metrics text/JSON, bad cases, confusion matrix.

Files written to ``out_dir`` for split ``dev`` (likewise ``test``):

- ``dev_report.txt`` / ``dev_report.json``: per-class table and headline metrics;
- ``dev_badcases.csv`` (UTF-8 with BOM, so Excel shows Chinese) and ``dev_badcases.jsonl``: the
  misclassified examples, most confident mistakes first;
- single-label only: ``dev_confusion.json`` and, when ``plots``, ``dev_confusion.png``.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from textsift.reporting.metrics import (classification_report, confusion, format_report,
                                        multi_label_metrics, single_label_metrics)

SINGLE_COLUMNS = ("index", "text", "gold", "pred", "pred_prob", "gold_prob")
MULTI_COLUMNS = ("index", "text", "gold", "pred", "missing", "extra", "confidence", "gold_probs", "pred_probs")


def _single_bad_cases(texts, y_true, y_pred, probs, labels) -> list[dict]:
    rows = []
    for i in np.flatnonzero(y_true != y_pred):
        gold, pred = int(y_true[i]), int(y_pred[i])
        rows.append({"index": int(i), "text": texts[i], "gold": labels[gold], "pred": labels[pred],
                     "pred_prob": round(float(probs[i, pred]), 4), "gold_prob": round(float(probs[i, gold]), 4)})
    rows.sort(key=lambda r: -r["pred_prob"])  # stable: equal confidence keeps dataset order
    return rows


def _multi_bad_cases(texts, y_true, y_pred, probs, labels) -> list[dict]:
    """A mistake's confidence is that of its most confident wrong decision: ``p`` for a label predicted
    but not gold, ``1 - p`` for a gold label that was missed."""
    rows = []
    for i in np.flatnonzero((y_true != y_pred).any(axis=1)):
        gold, pred = np.flatnonzero(y_true[i]), np.flatnonzero(y_pred[i])
        extra, missing = np.setdiff1d(pred, gold), np.setdiff1d(gold, pred)
        confidence = max([probs[i, j] for j in extra] + [1 - probs[i, j] for j in missing])
        rows.append({"index": int(i), "text": texts[i],
                     "gold": [labels[j] for j in gold], "pred": [labels[j] for j in pred],
                     "missing": [labels[j] for j in missing], "extra": [labels[j] for j in extra],
                     "confidence": round(float(confidence), 4),
                     "gold_probs": {labels[j]: round(float(probs[i, j]), 4) for j in gold},
                     "pred_probs": {labels[j]: round(float(probs[i, j]), 4) for j in pred}})
    rows.sort(key=lambda r: -r["confidence"])
    return rows


def _csv_cell(value) -> str | int | float:
    """Lists and dicts flattened for a spreadsheet: ``a|b`` and ``a=0.91|b=0.2``. A text that a
    spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) gets a leading ``'``, as OWASP
    advises for CSV export; the ``.jsonl`` file keeps every text unchanged."""
    if isinstance(value, list):
        value = "|".join(value)
    elif isinstance(value, dict):
        value = "|".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def write_records(out_dir: Path, stem: str, rows: list[dict], columns: tuple[str, ...]) -> None:
    """``{stem}.csv`` (UTF-8 with BOM, so Excel shows Chinese; formula-safe cells) and ``{stem}.jsonl``
    (every value unchanged)."""
    with open(out_dir / f"{stem}.csv", "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows({k: _csv_cell(v) for k, v in row.items()} for row in rows)
    with open(out_dir / f"{stem}.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_bad_cases(out_dir: Path, split: str, rows: list[dict], columns: tuple[str, ...]) -> None:
    """``{split}_badcases.csv`` and ``{split}_badcases.jsonl``."""
    write_records(out_dir, f"{split}_badcases", rows, columns)


def _check_inputs(texts, y_true, y_pred, probs, labels, multi_label) -> None:
    n = len(texts)
    if len(y_true) != n or len(y_pred) != n:
        raise ValueError(f"texts, y_true and y_pred differ in length: {n}, {len(y_true)}, {len(y_pred)}")
    if probs.shape != (n, len(labels)):
        raise ValueError(f"probs: expected shape (n, L) = ({n}, {len(labels)}), found {probs.shape}")
    if multi_label and (y_true.ndim != 2 or y_pred.ndim != 2):
        raise ValueError(f"multi-label y_true/y_pred must be 0/1 arrays (n, L); found ndim "
                         f"{y_true.ndim} and {y_pred.ndim}")


def write_split_reports(out_dir: Path, split: str, texts: list[str], y_true, y_pred, probs,
                        labels: list[str], multi_label: bool, bad_cases: int, plots: bool) -> dict:
    """Write every report file of one split (see the module docstring) and return its metrics.

    Args:
        out_dir: run directory (created if missing).
        split: file-name prefix, e.g. ``"dev"`` or ``"test"``.
        texts: the ``n`` input texts.
        y_true, y_pred: label ids ``(n,)`` (single-label) or 0/1 arrays ``(n, L)`` (multi-label).
        probs: predicted probabilities ``(n, L)``.
        labels: the ``L`` label names.
        multi_label: which kind of ``y`` is given.
        bad_cases: keep at most this many misclassified examples (0 writes header-only files).
        plots: also draw ``{split}_confusion.png`` (single-label).
    Returns:
        The metrics dict of :func:`single_label_metrics` / :func:`multi_label_metrics`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    y_true, y_pred, probs = np.asarray(y_true), np.asarray(y_pred), np.asarray(probs, dtype=float)
    _check_inputs(texts, y_true, y_pred, probs, labels, multi_label)
    if bad_cases < 0:
        raise ValueError(f"bad_cases: expected a count >= 0, found {bad_cases}")
    metrics = (multi_label_metrics if multi_label else single_label_metrics)(y_true, y_pred, labels)
    report = classification_report(y_true, y_pred, labels, multi_label)
    title = f"{split}: {len(texts)} examples, {len(labels)} labels, {'multi' if multi_label else 'single'}-label"
    (out_dir / f"{split}_report.txt").write_text(format_report(report, metrics, title), encoding="utf-8")
    payload = {"split": split, "task": "multi_label" if multi_label else "single_label",
               "metrics": metrics, "report": report}
    (out_dir / f"{split}_report.json").write_text(
        json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")

    find = _multi_bad_cases if multi_label else _single_bad_cases
    rows = find(texts, y_true, y_pred, probs, labels)[:bad_cases]
    write_bad_cases(out_dir, split, rows, MULTI_COLUMNS if multi_label else SINGLE_COLUMNS)

    if not multi_label:
        matrix = confusion(y_true, y_pred, len(labels))
        (out_dir / f"{split}_confusion.json").write_text(
            json.dumps({"labels": list(labels), "rows": "gold", "columns": "predicted", "matrix": matrix},
                       ensure_ascii=False), encoding="utf-8")
        if plots:
            from textsift.reporting.plots import plot_confusion

            plot_confusion(matrix, labels, out_dir / f"{split}_confusion.png", normalize=True,
                           title=f"{split} confusion matrix")
    return metrics
