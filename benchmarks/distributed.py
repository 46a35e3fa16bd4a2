"""Distributed training and large-input prediction benchmark (issue 10).

1. Training throughput, TextCNN on THUCNews titles: examples/s of the training loop (textsift's own
   ``train_examples / train_seconds`` in history.json, dev evaluation excluded) for one process with one
   thread, one process with two threads, and ``torchrun --nproc_per_node 2`` with one thread each; the
   scaling efficiency is ex/s(2 processes) / (2 x ex/s(1 process, 1 thread)).
2. ``textsift predict --input`` over generated files of --lines lines (default 100k and 1M: a 10x ratio),
   each in a child process whose peak RSS is measured exactly (``wait4``'s ``ru_maxrss``, see runner.py):
   memory must stay flat while the input grows 10x.

    .venv/bin/python benchmarks/distributed.py                            # full: 180k training titles, 100k + 1M lines
    .venv/bin/python benchmarks/distributed.py --limit 20000 --lines 10000 100000   # reduced (marked so)

Prints a markdown table (and writes it to --out when given). The machine's 2 cores may be shared, so the
scaling number is a lower bound of what two idle cores give. Not a unit test.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import REPO_ROOT, default_data_dir  # noqa: E402
from runner import run_child  # noqa: E402

FULL_LINES, FULL_LIMIT = (100_000, 1_000_000), None


def _env(threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("TEXTSIFT_DEBUG", None)
    return env


def _config(data: Path, work: Path, limit, epochs: int, threads: int, batch_size: int) -> Path:
    cfg = {"data": {"train": str(data / "train.jsonl"), "dev": str(data / "dev.jsonl"), "limit": limit},
           "tokenizer": {"name": "char"}, "model": {"name": "textcnn", "embedding_dim": 64, "num_filters": 64},
           "train": {"epochs": epochs, "batch_size": batch_size, "max_length": 32, "threads": threads, "progress": False,
                     "early_stopping": {"patience": None}},
           "report": {"plots": False, "tensorboard": False}}
    path = work / f"train-{threads}t.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def train_row(name: str, cmd: list[str], run_dir: Path, threads: int) -> dict:
    res = run_child(cmd + ["--run-dir", str(run_dir)], cwd=run_dir.parent, env=_env(threads))
    if res.returncode != 0:
        raise SystemExit(f"{name} failed:\n{res.stderr[-3000:]}")
    history = json.loads((run_dir / "history.json").read_text())
    examples = sum(h["train_examples"] for h in history)
    seconds = sum(h["train_seconds"] for h in history)
    dev = history[-1]["dev_accuracy"]
    return {"name": name, "examples": examples, "seconds": seconds, "ex_s": examples / seconds, "dev": dev,
            "wall": res.wall_s}


def predict_row(run_dir: Path, texts: list[str], lines: int, work: Path) -> dict:
    src = work / f"input-{lines}.txt"
    rng = random.Random(lines)
    with open(src, "w", encoding="utf-8") as f:
        for _ in range(lines):
            f.write(rng.choice(texts) + "\n")
    out = work / f"pred-{lines}.jsonl"
    cmd = [sys.executable, "-m", "textsift", "predict", str(run_dir), "--input", str(src), "--output", str(out),
           "--overwrite", "--top-k", "1"]
    res = run_child(cmd, cwd=work, env=_env(1))  # one thread: steadier on a shared 2-core machine
    if res.returncode != 0:
        raise SystemExit(f"predict over {lines} lines failed:\n{res.stderr[-3000:]}")
    written = sum(1 for _ in open(out, encoding="utf-8"))
    src.unlink()
    out.unlink()
    return {"lines": lines, "written": written, "wall": res.wall_s, "texts_s": lines / res.wall_s,
            "peak_mib": res.peak_mib}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data_dir() / "thucnews_title")
    ap.add_argument("--limit", type=int, default=FULL_LIMIT, help="training titles used (default: all 180k)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64, help="the global train.batch_size (every run)")
    ap.add_argument("--lines", type=int, nargs=2, default=list(FULL_LINES), metavar=("SMALL", "LARGE"),
                    help="predict input sizes (default 100000 1000000)")
    ap.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = ap.parse_args()
    reduced = args.limit is not None or tuple(args.lines) != FULL_LINES
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        work = Path(tmp)
        rows = []
        for name, threads, launcher in (
                ("1 process x 1 thread", 1, [python, "-m", "textsift"]),
                ("1 process x 2 threads", 2, [python, "-m", "textsift"]),
                ("torchrun 2 processes x 1 thread", 1,
                 [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "textsift"])):
            cfg = _config(args.data, work, args.limit, args.epochs, threads, args.batch_size)
            rows.append(train_row(name, launcher + ["train", "-c", str(cfg)], work / name.replace(" ", "_"), threads))
        base = rows[0]["ex_s"]
        texts = [json.loads(line)["text"] for line in open(args.data / "test.jsonl", encoding="utf-8")]
        preds = [predict_row(work / rows[0]["name"].replace(" ", "_"), texts, n, work) for n in args.lines]
    lines = [f"# Distributed training and large-input prediction{' (REDUCED run)' if reduced else ''}", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs, load average "
             f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; TextCNN on THUCNews titles, "
             f"{rows[0]['examples']} training examples ({args.epochs} epoch(s), global batch {args.batch_size})", "",
             "| training | examples/s | vs 1x1 | dev accuracy | wall s |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['ex_s']:.0f} | {r['ex_s'] / base:.2f}x | {r['dev']:.4f} | {r['wall']:.1f} |")
    eff = rows[2]["ex_s"] / (2 * base)
    lines += ["", f"Scaling efficiency, 2 processes: {eff:.0%} (ex/s of 2 processes / (2 x 1 process, 1 thread))", "",
              "| predict input lines | texts/s | wall s | peak RSS MiB |", "|---:|---:|---:|---:|"]
    for p in preds:
        lines.append(f"| {p['lines']:,} | {p['texts_s']:.0f} | {p['wall']:.1f} | {p['peak_mib']:.0f} |")
    ratio = preds[1]["peak_mib"] / preds[0]["peak_mib"]
    lines += ["", f"Peak memory ratio for {preds[1]['lines'] / preds[0]['lines']:.0f}x the input: {ratio:.2f}x "
              f"({'flat' if ratio < 1.15 else 'NOT flat'})"]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
