"""Scoring a trained model on labelled examples and writing the split's reports."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from textsift.engines.batching import predict_logits


def score(model, scheme, encoder, texts: Sequence[str], max_length: int, batch_size: int,
          device="cpu", max_tokens: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``(n, num_labels)`` and decisions for ``texts``, tokenized once and scored in length-sorted
    batches (at most ``batch_size`` texts and, with ``max_tokens``, that many padded positions each). A K-fold
    ensemble (``model.members``) encodes the texts once per member and averages the members' logits."""
    if getattr(model, "members", None) is not None:
        import torch

        logits = model.logits(list(texts), batch_size, device)
        probs = scheme.probabilities(torch.from_numpy(logits)).numpy()
        return probs, scheme.decide(probs)
    return score_encoded(model, scheme, encoder.encode_batch(list(texts), max_length), batch_size,
                         encoder.pad_id, device, max_tokens)


def score_encoded(model, scheme, encoded: Sequence[Sequence[int]], batch_size: int, pad_id: int,
                  device="cpu", max_tokens: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``score`` for texts that are already encoded (the trainer encodes dev once, not every epoch)."""
    import torch

    if hasattr(model, "encoded_logits"):  # another runtime (ONNX Runtime) computes the logits
        logits = model.encoded_logits(encoded, batch_size, max_tokens)
    else:
        logits = predict_logits(model, encoded, batch_size, pad_id, device, max_tokens)
    probs = scheme.probabilities(torch.from_numpy(logits)).numpy()
    return probs, scheme.decide(probs)


def split_metrics(scheme, gold: np.ndarray, pred: np.ndarray) -> dict:
    from textsift.reporting.metrics import multi_label_metrics, single_label_metrics

    if scheme.multi_task:
        return multi_task_metrics(scheme, gold, pred, lambda t, g, p: single_label_metrics(g, p, scheme.task_labels(t)))
    if scheme.multi_label:
        return multi_label_metrics(gold, pred, scheme.labels)
    return single_label_metrics(gold, pred, scheme.labels)


def multi_task_metrics(scheme, gold: np.ndarray, pred: np.ndarray, task_metrics) -> dict:
    """A multi-task split: each example is judged on its own task alone (the task of its gold label), by
    ``task_metrics(t, gold, pred)`` on task-local label ids. Returns every task's numbers as
    ``"<task>/<metric>"`` and, under the plain metric names, their mean over the tasks present (so
    ``accuracy`` selects on all tasks at once)."""
    out, per_task = {}, []
    task_of = scheme.task_of.numpy()
    for t, name in enumerate(scheme.tasks):
        rows = np.flatnonzero(task_of[gold] == t)
        if not len(rows):
            continue
        start = scheme.segments[t][0]
        m = task_metrics(t, gold[rows] - start, pred[rows, t] - start)
        per_task.append(m)
        out.update({f"{name}/{k}": v for k, v in m.items()})
    for k in per_task[0] if per_task else ():
        if k != "n":
            out[k] = float(np.mean([m[k] for m in per_task]))
    out["n"] = int(len(gold))
    return out


def evaluate_examples(model, scheme, encoder, examples, max_length: int, batch_size: int, device="cpu",
                      report_dir: Path | None = None, split: str = "eval", bad_cases: int = 500,
                      plots: bool = True, encoded: Sequence[Sequence[int]] | None = None) -> dict:
    """Metrics for labelled examples; with ``report_dir``, also the report, confusion matrix and bad cases.
    ``encoded`` (the examples' ids) skips encoding them again."""
    texts = [ex.text for ex in examples]
    if encoded is None:
        probs, pred = score(model, scheme, encoder, texts, max_length, batch_size, device)
    else:
        probs, pred = score_encoded(model, scheme, encoded, batch_size, encoder.pad_id, device)
    gold = scheme.gold([ex.labels for ex in examples])
    if report_dir is None:
        return split_metrics(scheme, gold, pred)
    from textsift.reporting.reports import write_split_reports

    report_dir.mkdir(parents=True, exist_ok=True)
    if scheme.multi_task:  # one report set per task, on its own examples and label block
        def task_reports(t, g, p):
            rows = np.flatnonzero(scheme.task_of.numpy()[gold] == t)
            block = probs[rows][:, scheme.segments[t]]
            return write_split_reports(report_dir, f"{split}_{scheme.tasks[t]}", [texts[i] for i in rows], g, p,
                                       block, scheme.task_labels(t), False, bad_cases, plots)
        return multi_task_metrics(scheme, gold, pred, task_reports)
    metrics = write_split_reports(report_dir, split, texts, gold, pred, probs, scheme.labels,
                                  scheme.multi_label, bad_cases, plots)
    if scheme.task == "hierarchical":  # per-level reports, hP/hR/hF and consistency: part of every run
        from textsift.reporting.hierarchy import key_numbers, write_hierarchy_reports

        summary = write_hierarchy_reports(report_dir, split, texts, gold, pred, scheme.raw_decide(probs), probs,
                                          scheme, bad_cases)
        metrics.update(key_numbers(summary))
    return metrics


def evaluate_config_splits(model, scheme, encoder, config, max_length: int, report_dir: Path | None = None,
                           batch_size: int = 64) -> dict:
    """``{split: metrics}`` on the config's dev and test files that exist (a rebuilt, pruned or quantized
    model judged on its run's own data); with ``report_dir``, also their report files (no plots)."""
    from textsift.data import read_examples

    out = {}
    for split in ("dev", "test"):
        if scheme.multi_task:  # every task's own file of this split, read as that task's labels
            examples = []
            for t in config.distill.tasks:
                path = getattr(t, split)
                if path and Path(path).is_file():
                    examples += scheme.prefix(read_examples(path, config.data, task="single_label"), t.name)
            if examples:
                out[split] = evaluate_examples(model, scheme, encoder, examples, max_length, batch_size,
                                               report_dir=report_dir, split=split, plots=False)
            continue
        path = getattr(config.data, split)
        if path and Path(path).is_file():
            examples = read_examples(path, config.data, task=scheme.task)
            out[split] = evaluate_examples(model, scheme, encoder, examples, max_length, batch_size,
                                           report_dir=report_dir, split=split, plots=False)
    return out
