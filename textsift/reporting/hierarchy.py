"""Hierarchical metrics and reports, written for every evaluated split of a ``task: hierarchical`` run.

- per level (1 = roots; a node's level is 1 + its longest path from a root): micro/macro F1 over the
  level's labels (scikit-learn), a classification report and the level's bad cases;
- hierarchical precision/recall/F1 (Kiritchenko et al. 2005): predicted and gold sets are augmented with
  all ancestors, then ``hP = sum |P & G| / sum |P|``, ``hR = sum |P & G| / sum |G|`` over examples;
- consistency: the share of examples whose raw (thresholded, undecoded) decisions already contain every
  ancestor of each predicted label, and the same for the decoded outputs (always 1.0 by construction).

Files for split ``dev``: ``dev_hierarchy.json``, ``dev_level{k}_report.txt/.json``,
``dev_level{k}_badcases.csv/.jsonl``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from textsift.reporting.metrics import classification_report, format_report, multi_label_metrics


def ancestor_closure(decisions: np.ndarray, descendants: np.ndarray) -> np.ndarray:
    """0/1 ``(n, L)`` with every ancestor of each predicted label added (``descendants``: ``(L, L)``)."""
    return ((decisions @ descendants.T.astype(np.int64)) > 0).astype(np.int64)


def hierarchical_prf(y_true: np.ndarray, y_pred: np.ndarray, descendants: np.ndarray) -> dict:
    """Kiritchenko's hP, hR, hF on ancestor-augmented label sets, micro-averaged over examples."""
    gold, pred = ancestor_closure(y_true, descendants), ancestor_closure(y_pred, descendants)
    overlap = float((gold & pred).sum())
    hp = overlap / pred.sum() if pred.sum() else 0.0
    hr = overlap / gold.sum() if gold.sum() else 0.0
    hf = 2 * hp * hr / (hp + hr) if hp + hr else 0.0
    return {"h_precision": float(hp), "h_recall": float(hr), "h_f1": float(hf)}


def level_metrics(y_true: np.ndarray, y_pred: np.ndarray, levels: np.ndarray) -> dict:
    """``{level: {"micro_f1", "macro_f1", "labels"}}`` over the label columns of each level."""
    out = {}
    for level in sorted(set(levels.tolist())):
        cols = np.flatnonzero(levels == level)
        t, p = y_true[:, cols], y_pred[:, cols]
        out[str(level)] = {"micro_f1": float(skm.f1_score(t, p, average="micro", zero_division=0)),
                           "macro_f1": float(skm.f1_score(t, p, average="macro", zero_division=0)),
                           "labels": int(len(cols))}
    return out


def hierarchy_metrics(y_true, y_pred, raw, scheme) -> dict:
    """Key hierarchical numbers: per-level F1, hP/hR/hF, consistency of raw and decoded outputs."""
    return {"levels": level_metrics(y_true, y_pred, scheme.levels),
            **hierarchical_prf(y_true, y_pred, scheme.descendants),
            "raw_consistency": float(scheme.consistent(raw).mean()),
            "consistency": float(scheme.consistent(y_pred).mean()),
            "method": scheme.method, "decoding": scheme.decoding}


def key_numbers(summary: dict) -> dict:
    """The flat numbers of a :func:`hierarchy_metrics` summary that go into ``metrics.json``."""
    out = {k: summary[k] for k in ("h_precision", "h_recall", "h_f1", "raw_consistency", "consistency")}
    for level, row in summary["levels"].items():
        out[f"level{level}_micro_f1"], out[f"level{level}_macro_f1"] = row["micro_f1"], row["macro_f1"]
    return out


def write_hierarchy_reports(out_dir: Path, split: str, texts, y_true, y_pred, raw, probs, scheme,
                            bad_cases: int = 500) -> dict:
    """Write the split's hierarchical reports into ``out_dir``; return :func:`hierarchy_metrics`."""
    from textsift.reporting.reports import MULTI_COLUMNS, _multi_bad_cases, write_records

    summary = hierarchy_metrics(y_true, y_pred, raw, scheme)
    labels = scheme.labels
    for level in summary["levels"]:
        cols = np.flatnonzero(scheme.levels == int(level))
        names = [labels[j] for j in cols]
        t, p = y_true[:, cols], y_pred[:, cols]
        report = classification_report(t, p, names, multi_label=True)
        headline = multi_label_metrics(t, p, names)
        stem = f"{split}_level{level}"
        title = f"{split}, level {level}: {len(texts)} examples, {len(names)} labels"
        (out_dir / f"{stem}_report.txt").write_text(format_report(report, headline, title), encoding="utf-8")
        (out_dir / f"{stem}_report.json").write_text(
            json.dumps({"split": split, "level": int(level), "metrics": headline, "report": report},
                       indent=2, ensure_ascii=False), encoding="utf-8")
        rows = _multi_bad_cases(texts, t, p, probs[:, cols], names)[:bad_cases]
        write_records(out_dir, f"{stem}_badcases", rows, MULTI_COLUMNS)
    (out_dir / f"{split}_hierarchy.json").write_text(
        json.dumps({"split": split, **summary}, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
