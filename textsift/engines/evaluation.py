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

    if scheme.multi_label:
        return multi_label_metrics(gold, pred, scheme.labels)
    return single_label_metrics(gold, pred, scheme.labels)


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
        path = getattr(config.data, split)
        if path and Path(path).is_file():
            examples = read_examples(path, config.data, task=scheme.task)
            out[split] = evaluate_examples(model, scheme, encoder, examples, max_length, batch_size,
                                           report_dir=report_dir, split=split, plots=False)
    return out
