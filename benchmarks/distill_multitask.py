"""Multi-task distillation benchmark: one student for two tasks vs one student per task.

Two MiniLM-L6 teachers (the ``<dataset>_minilm`` presets, e.g. sst2_sentence and trec6: different label sets,
different data) are distilled (1) each into its own BiLSTM student and (2) together into one multi-task
BiLSTM (``distill.tasks``: one softmax block per task; every teacher labels every training text). All
students share one recipe: word tokens, BiLSTM 128 with max pooling started from the pretrained MiniLM-L6
word vectors (nothing from either teacher, so the multi-task student is not tied to one of them), 6 epochs,
lr 2e-3, KL at T=4 + 0.5 x gold-label CE, early stopping on dev (the multi-task student: the mean of the
tasks' dev accuracies). No augmented copies: each copy must be labelled by every teacher.

Reported: each task's test accuracy for its teacher, its single-task student and the multi-task student;
parameters; training time (teacher labelling included: the multi-task student runs both teachers on both
tasks' texts); and texts/s at batch 32, 1 thread, to answer **both** tasks for every test text of both
tasks: one forward pass of the multi-task student vs one pass of each single-task student (best of 5
rounds, the two setups alternating so machine noise hits both). Teachers are trained once and reused from
``benchmarks/.cache/distill/teachers/`` (shared with ``benchmarks/distill.py``), or given with --teacher.

    .venv/bin/python benchmarks/distill_multitask.py
    .venv/bin/python benchmarks/distill_multitask.py --teacher sst2_sentence=runs/sst2_minilm --teacher trec6=runs/trec6_minilm
    .venv/bin/python benchmarks/distill_multitask.py --seeds 3                 # every student 3 times: mean ± std
    .venv/bin/python benchmarks/distill_multitask.py --limit 200 --epochs 1 --out /tmp/mt-smoke.md   # smoke

About 20 min on one core with cached teachers (teacher labelling ~6 min of it); teachers add ~25 min each.
Not a unit test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import distill as D  # noqa: E402
from bench_data import REPO_ROOT  # noqa: E402
from pretrained import machine_line  # noqa: E402

TASK_NAMES = {"sst2_sentence": "sentiment", "trec6": "question", "clinc150": "intent"}
WORK = D.CACHE / "multitask"


def student(assets: Path, epochs: int | None) -> dict:
    return {"tokenizer": {"name": "word"},
            "model": {"name": "textrnn", "hidden_size": 128, "pooling": "max", "vectors": str(assets / "minilm-l6")},
            "train": {"epochs": epochs or D.KD_CLASSIC_EPOCHS, "batch_size": 64, "max_length": 64, "lr": 2e-3},
            "distill": {"temperature": 4.0, "hard_weight": 0.5, "cache_dir": str(WORK / "teacher_logits")}}


def task_files(ds: str, data_dir: Path, train_file: str | None) -> dict:
    files = {split: str(data_dir / ds / f"{split}.jsonl") for split in ("train", "dev", "test")
             if (data_dir / ds / f"{split}.jsonl").is_file()}
    return {**files, **({"train": train_file} if train_file else {})}


def run_metrics(run_dir: Path) -> dict:
    m = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    return {"test": m.get("test") or {}, "teacher_test": (m.get("distill") or {}).get("teacher_test") or {},
            "train_s": m["train_seconds"], "params": json.loads((run_dir / "model.json").read_text())["parameters"]}


def pooled(runs: list[dict]) -> dict:
    """Mean and std over seed runs of every test number (fractions) and of the train time; the first run's
    parameters. ``test``/``teacher_test`` hold means, ``test_std`` the standard deviations."""
    import statistics

    keys = [k for k, v in runs[0]["test"].items() if isinstance(v, float)]
    return {"test": {k: statistics.mean(r["test"][k] for r in runs) for k in keys},
            "test_std": {k: statistics.stdev(r["test"][k] for r in runs) if len(runs) > 1 else 0.0 for k in keys},
            "teacher_test": runs[0]["teacher_test"], "params": runs[0]["params"], "seeds": len(runs),
            "train_s": statistics.mean(r["train_s"] for r in runs), "command": runs[0]["command"]}


def both_tasks_speed(multi: Path, singles: list[Path], texts: list[str], threads: int, rounds: int = 5) -> dict:
    """texts/s to answer every task for every text: the multi-task student once vs each single student."""
    import torch

    from textsift.api import TextClassifier

    torch.set_num_threads(threads)
    mt, ones = TextClassifier.load(multi), [TextClassifier.load(s) for s in singles]
    for clf in (mt, *ones):
        clf.batch_size = 32
        clf.scores(texts[:64])   # warm-up
    best = {"multi": float("inf"), "singles": float("inf")}
    for _ in range(rounds):
        t0 = time.perf_counter()
        mt.scores(texts)
        best["multi"] = min(best["multi"], time.perf_counter() - t0)
        t0 = time.perf_counter()
        for clf in ones:
            clf.scores(texts)
        best["singles"] = min(best["singles"], time.perf_counter() - t0)
    return {k: len(texts) / v for k, v in best.items()}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="sst2_sentence,trec6",
                   help=f"two or more of {','.join(D.DATASETS)} (default: sst2_sentence,trec6)")
    p.add_argument("--teacher", action="append", default=[], metavar="DATASET=RUN_DIR",
                   help="a finished <dataset>_minilm run to use as DATASET's teacher (read only; repeatable)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of every run, teachers included (smoke)")
    p.add_argument("--limit", type=int, default=None, help="training examples per task, every class kept (smoke)")
    p.add_argument("--seeds", type=int, default=1, help="train every student this many times (train.seed 42, 43, "
                   "...; dev splits held at the teachers') and report mean ± std; the seed-42 runs are timed")
    p.add_argument("--threads", type=int, default=1, help="torch threads while timing (default 1)")
    p.add_argument("--retrain", action="store_true", help="train the teachers again instead of reusing the cache")
    p.add_argument("--data-dir", type=Path, default=None, help="default: $TEXTSIFT_DATA, else ../shared/datasets")
    p.add_argument("--assets-dir", type=Path, default=None, help="default: $TEXTSIFT_ASSETS, else "
                   "~/.cache/textsift-assets (needs minilm-l6)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "distill-multitask.md")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per training run (default 3600)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if len(set(datasets)) < 2 or any(d not in D.DATASETS for d in datasets) or args.seeds < 1:
        print(f"error: --datasets: expected two or more distinct names from {', '.join(D.DATASETS)} (got "
              f"{args.datasets!r}), and --seeds ≥ 1", file=sys.stderr)
        return 2
    inputs = D.resolve_inputs(args)
    if inputs is None:
        return 2
    data_dir, assets = inputs
    env = D.child_env(data_dir, assets)
    shutil.rmtree(WORK / "runs", ignore_errors=True)
    (WORK / "runs").mkdir(parents=True)
    base, tasks, singles, teachers = student(assets, args.epochs), [], {}, {}
    for ds in datasets:
        train_file = str(D.limited(data_dir / ds / "train.jsonl", WORK / "data" / f"{ds}-{args.limit}.jsonl",
                                   args.limit)) if args.limit else None
        D.log(f"{ds}: teacher ...")
        t = D.teacher(ds, args, train_file, env)
        if t["na"]:
            print(f"error: {ds}: teacher failed: {t['na']}", file=sys.stderr)
            return 1
        teachers[ds] = t["run_dir"]
        files = task_files(ds, data_dir, train_file)
        split = {"split_seed": D.teacher_split_seed(Path(t["run_dir"]))}   # the teacher's dev split
        tasks.append({"name": TASK_NAMES[ds], "teacher": t["run_dir"], **files, **split})
        singles[ds] = {**base, "data": {**files, **split}, "distill": {**base["distill"], "teacher": t["run_dir"]}}
    runs = [(f"single-{ds}", f"{ds} single-task student", cfg) for ds, cfg in singles.items()] + \
        [("multi", "multi-task student", {**base, "distill": {**base["distill"], "tasks": tasks}})]
    done: dict[str, list[dict]] = {}
    for name, label, cfg in runs:
        for i in range(args.seeds):
            D.log(f"{label}{f' (seed {D.SEED + i})' if i else ''} ...")
            run_dir = WORK / "runs" / (f"{name}-s{i}" if i else name)
            row = D.train({**cfg, "train": {**cfg["train"], "seed": D.SEED + i}}, run_dir, [], env, args.timeout)
            if row["na"]:
                print(f"error: {label} failed: {row['na']}", file=sys.stderr)
                return 1
            done.setdefault(name, []).append({**row, **run_metrics(run_dir)})
    multi, m = done["multi"][0], pooled(done["multi"])
    ones = {ds: pooled(done[f"single-{ds}"]) for ds in datasets}
    texts = [r["text"] for ds in datasets for r in D._read(data_dir / ds / "test.jsonl")]
    speed = both_tasks_speed(WORK / "runs" / "multi", [WORK / "runs" / f"single-{ds}" for ds in datasets], texts,
                             args.threads)
    def pct(row: dict, key: str) -> str:
        sd = f" ± {100 * row['test_std'][key]:.2f}" if args.seeds > 1 else ""
        return f"{100 * row['test'][key]:.2f}{sd}"

    lines = ["| task (dataset) | teacher test % | single-task student % | multi-task student % | multi − single (pt) |",
             "|---|---:|---:|---:|---:|"]
    for ds in datasets:
        name = TASK_NAMES[ds]
        diff = m["test"][f"{name}/accuracy"] - ones[ds]["test"]["accuracy"]
        lines.append(f"| {name} ({ds}) | {100 * ones[ds]['teacher_test']['accuracy']:.2f} | "
                     f"{pct(ones[ds], 'accuracy')} | {pct(m, f'{name}/accuracy')} | {100 * diff:+.2f} |")
    single_params = sum(o["params"] for o in ones.values())
    cost = ["| | parameters | train s (teacher labelling included) | texts/s @32, both tasks answered |",
            "|---|---:|---:|---:|",
            f"| {len(datasets)} single-task students | {single_params / 1e6:.2f} M | "
            f"{sum(o['train_s'] for o in ones.values()):.0f} | {speed['singles']:,.0f} |",
            f"| one multi-task student | {m['params'] / 1e6:.2f} M | {m['train_s']:.0f} | {speed['multi']:,.0f} "
            f"({speed['multi'] / speed['singles']:.2f}x) |"]
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/distill_multitask.py", *sys.argv[1:]])
    smoke = args.limit or args.epochs
    text = "\n".join([
        "# Multi-task distillation: one student for several tasks vs one student per task", "",
        f"- date: {started:%Y-%m-%d %H:%M} (local), took {(dt.datetime.now() - started).seconds / 60:.1f} min",
        f"- command: `{command}`", f"- machine: {machine_line()}",
        *([f"- SMOKE RUN (--limit {args.limit}, --epochs {args.epochs}): not a measurement"] if smoke else []),
        f"- teachers: {', '.join(f'{ds} {r}' for ds, r in teachers.items())}",
        "- students (all): BiLSTM 128, max pooling, pretrained MiniLM-L6 word vectors, KL at T=4 + 0.5 x CE, "
        f"{base['train']['epochs']} epochs, early stopping on dev; "
        + (f"{args.seeds} seeds (train.seed {D.SEED}-{D.SEED + args.seeds - 1}): mean ± std" if args.seeds > 1
           else f"one seed ({D.SEED})"),
        f"- timing: every test text of every task ({len(texts):,}), batch 32, {args.threads} thread(s), best of 5",
        "", "## Accuracy", "", *lines, "", "## Cost", "", *cost, "",
        "## What ran", "",
        *[f"- single-task student, {ds}: `{ones[ds]['command']}`" for ds in datasets],
        f"- multi-task student: `{multi['command']}` with `{json.dumps(runs[-1][2], ensure_ascii=False)}`",
        *([f"- every student also with train.seed {', '.join(str(D.SEED + i) for i in range(1, args.seeds))} "
           "(run directories `<name>-s1`, ...)"] if args.seeds > 1 else []), ""])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(
        {"multi": m, "singles": ones, "speed": speed, "teachers": teachers}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
