"""Before/after measurements for compression commands: parameters, size on disk, dev/test metric,
texts/s at batch 32 and p50/p95 latency at batch 1, on this machine, printed as one table."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

LATENCY_TEXTS, THROUGHPUT_TEXTS = 100, 512


def model_size(clf, folder: Path) -> int:
    """Bytes of the weights ``clf`` runs on: the ONNX file it loaded, or the run's model.safetensors."""
    path = getattr(clf.bundle.model, "path", None) or Path(folder) / "model.safetensors"
    return Path(path).stat().st_size


def measure(clf, texts: Sequence[str], folder: Path, metric_of: dict) -> dict:
    """One row: ``clf`` is a loaded ``TextClassifier``; ``metric_of`` maps split → metrics dict."""
    from textsift.api import TextClassifier  # noqa: F401 - the type of clf

    model = clf.bundle.model
    params = None
    if hasattr(model, "parameters"):  # int8 Linear weights are packed, not parameters: count them too
        from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

        packed = [t for m in model.modules() if isinstance(m, Int8Linear) for t in (m.weight(), m.bias())
                  if t is not None]
        params = sum(p.numel() for p in model.parameters()) + sum(t.numel() for t in packed)
    texts = list(texts)
    clf.predict(texts[:8])  # warm-up (kernels, caches)
    batch = (texts * (THROUGHPUT_TEXTS // max(1, len(texts)) + 1))[:THROUGHPUT_TEXTS]
    clf.batch_size = 32
    start = time.perf_counter()
    clf.predict_proba(batch)
    throughput = len(batch) / (time.perf_counter() - start)
    latencies = []
    for text in texts[:LATENCY_TEXTS]:
        start = time.perf_counter()
        clf.predict_proba([text])
        latencies.append(time.perf_counter() - start)
    row = {"parameters": params, "size_mb": round(model_size(clf, folder) / 2**20, 2),
           "texts_per_s_b32": round(throughput, 1), "p50_ms_b1": round(1000 * float(np.percentile(latencies, 50)), 2),
           "p95_ms_b1": round(1000 * float(np.percentile(latencies, 95)), 2)}
    for split, metrics in metric_of.items():
        if metrics:
            key = "accuracy" if "accuracy" in metrics and "subset_accuracy" not in metrics else "micro_f1"
            row[f"{split}_{key}"] = round(float(metrics[key]), 4)
    return row


def format_table(rows: dict[str, dict]) -> str:
    """Markdown table of named rows (``before``, ``after``) plus an ``after/before`` ratio line."""
    keys = [k for k in next(iter(rows.values())) if any(k in r for r in rows.values())]
    lines = ["| | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(row.get(k)) for k in keys) + " |")
    if set(rows) >= {"before", "after"}:
        b, a = rows["before"], rows["after"]
        ratio = [(f"{a[k] / b[k]:.2f}x" if isinstance(a.get(k), (int, float)) and b.get(k) else "")
                 for k in keys]
        lines.append("| after / before | " + " | ".join(ratio) + " |")
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, int) and v > 10_000:
        return f"{v:,}"
    return str(v)
