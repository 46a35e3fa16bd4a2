"""Hierarchical classification benchmark: flat BCE vs hierarchy-aware training (max_constraint, conditional).

    .venv/bin/python benchmarks/hierarchy.py                                   # both datasets, full
    .venv/bin/python benchmarks/hierarchy.py --datasets duee_event_hier --epochs 4 --limit-train 6000  # reduced

Datasets and models (issue 5): ``duee_event_hier`` (Chinese) with TextCNN over characters,
``goemotions_hier`` (English) with the MiniLM-L6 encoder from the asset cache (``make assets``). The
official dev file of duee_event_hier is used as the test set (there is no test file); every run holds
out 10% of train as its own dev set (early stopping, per-label thresholds), so test is never seen
before evaluation. goemotions_hier keeps its dev and test files.

Each method (``hierarchy.method`` flat / max_constraint / conditional, decoding top_down) is one ``textsift train`` in
its own child process, same seed and settings. Reported on test: micro/macro F1 overall and per level,
hierarchical F1 and consistency of the raw (undecoded) and decoded outputs. Prints a markdown table and
writes it (with the raw rows as JSON) to --out. Flags --epochs / --limit-train mark the run as reduced.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TEXTSIFT_DATA", REPO_ROOT.parent / "shared" / "datasets"))
ASSETS = Path(os.environ.get("TEXTSIFT_ASSETS", Path.home() / ".cache" / "textsift-assets"))

SETUPS = {
    "duee_event_hier": {
        "model": "TextCNN (chars)", "epochs": 8,
        "overrides": ["data.train={data}/duee_event_hier/train.jsonl", "data.test={data}/duee_event_hier/dev.jsonl",
                      "tokenizer.name=char", "model.name=textcnn", "train.max_length=64", "train.batch_size=64",
                      "train.lr=0.001", "train.early_stopping.metric=macro_f1"],
    },
    "goemotions_hier": {
        "model": "MiniLM-L6", "epochs": 3,
        "overrides": ["data.train={data}/goemotions_hier/train.jsonl", "data.dev={data}/goemotions_hier/dev.jsonl",
                      "data.test={data}/goemotions_hier/test.jsonl", "model.name=hf",
                      "model.pretrained={assets}/minilm-l6", "model.pooling=mean", "train.max_length=64",
                      "train.batch_size=32", "train.lr=5e-5", "train.warmup_ratio=0.06",
                      "train.early_stopping.metric=macro_f1"],
    },
}
METHODS = ("flat", "max_constraint", "conditional")


def sample_train(dataset: str, n: int, seed: int, work: Path) -> Path:
    import random

    lines = (DATA / dataset / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    random.Random(seed).shuffle(lines)
    path = work / f"{dataset}-train-{n}.jsonl"
    path.write_text("".join(lines[:n]), encoding="utf-8")
    return path


def run_one(dataset: str, method: str, args, work: Path) -> dict:
    setup = SETUPS[dataset]
    run_dir = work / f"{dataset}-{method}"
    cfg = work / "base.yaml"
    cfg.write_text("task: hierarchical\nmodel:\n  name: textcnn\ndata:\n  train: x\n", encoding="utf-8")
    overrides = [o.format(data=DATA, assets=ASSETS) for o in setup["overrides"]]
    overrides += [f"hierarchy.method={method}", f"hierarchy.decoding={args.decoding}",
                  f"train.epochs={args.epochs or setup['epochs']}", f"train.seed={args.seed}",
                  "train.progress=false", "report.plots=false", "report.tensorboard=false"]
    if args.limit_train:  # a seeded random sample: the files are sorted by label, so the first N would not do
        overrides.append(f"data.train={sample_train(dataset, args.limit_train, args.seed, work)}")
    if args.threads:
        overrides.append(f"train.threads={args.threads}")
    cmd = [sys.executable, "-m", "textsift", "train", "-c", str(cfg), "--run-dir", str(run_dir), *overrides]
    start = time.time()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    row = {"dataset": dataset, "model": setup["model"], "method": method, "seconds": round(time.time() - start, 1)}
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return row
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    row.update(metrics["test"])
    return row


def table(rows: list[dict]) -> str:
    levels = sorted({k[len("level"):-len("_macro_f1")] for r in rows for k in r if k.endswith("_macro_f1")
                     and k.startswith("level")})
    head = ["dataset", "model", "method", "micro-F1", "macro-F1"]
    head += [f"L{lv} micro / macro" for lv in levels] + ["hF1", "raw consistency", "consistency", "s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['dataset']} | {r['model']} | {r['method']} | n/a: {r['error']} |")
            continue
        cells = [r["dataset"], r["model"], r["method"], f"{100 * r['micro_f1']:.2f}", f"{100 * r['macro_f1']:.2f}"]
        cells += [f"{100 * r.get(f'level{lv}_micro_f1', 0):.2f} / {100 * r.get(f'level{lv}_macro_f1', 0):.2f}"
                  for lv in levels]
        cells += [f"{100 * r['h_f1']:.2f}", f"{100 * r['raw_consistency']:.1f}%", f"{100 * r['consistency']:.1f}%",
                  f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default=",".join(SETUPS), help=f"comma-separated, from {', '.join(SETUPS)}")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated hierarchy.method values")
    p.add_argument("--decoding", default="top_down", choices=("top_down", "threshold_closure"))
    p.add_argument("--epochs", type=int, help="override the per-dataset epochs (reduced run)")
    p.add_argument("--limit-train", type=int, help="train on a seeded random sample of N examples (reduced run)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, help="torch threads per run")
    p.add_argument("--work-dir", help="keep the run directories here (default: a temporary folder)")
    p.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results" / "hierarchy.md"))
    args = p.parse_args(argv)
    datasets = [d for d in args.datasets.split(",") if d]
    unknown = [d for d in datasets if d not in SETUPS]
    if unknown:
        p.error(f"--datasets: unknown {unknown}; choose from {list(SETUPS)}")
    # fewer epochs than a dataset's default, or a training sample, is a reduced run (more epochs is not)
    reduced = bool(args.limit_train) or any(args.epochs and args.epochs < SETUPS[d]["epochs"] for d in datasets)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = []
        for dataset in datasets:
            for method in args.methods.split(","):
                rows.append(run_one(dataset, method, args, work))
                print(f"{dataset} {method}: done in {rows[-1]['seconds']} s", file=sys.stderr)
    note = ("REDUCED run; " if reduced else "Full run; ") + \
        f"epochs {args.epochs or 'per dataset default'}, train {args.limit_train or 'all'} examples, " \
        f"decoding {args.decoding}, seed {args.seed}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    text = f"{note}\n\n{table(rows)}\n"
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
