"""Pipeline benchmark: the ``sst2_sentence_pipeline`` preset end to end (MiniLM-L6 teacher, 3- and 2-layer
distilled students, width-1/2 pruning, int8 of each, a distilled TextCNN), every candidate measured on
this machine, the frontier printed.

Target (issue 9): the most accurate candidate under 1 ms p50 latency at batch 1 keeps ≥ 98% of the
teacher's test accuracy (for scale: the MiniLM-L6 teacher itself, int8 on ONNX Runtime, is at 1.7 ms).

    .venv/bin/python benchmarks/pipeline.py              # full run (about an hour on 2 cores; resumable)
    .venv/bin/python benchmarks/pipeline.py --quick      # smoke: 300 training texts, 1 epoch, no transfer data

The pipeline directory is ``benchmarks/.cache/pipeline/<full|quick>``: running again reuses the finished
stages (the timings are always measured again). Writes ``benchmarks/results/pipeline.md`` (full runs) or
``--out``; ``--quick`` results are labelled REDUCED and are not a measurement of the target.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import REPO_ROOT, default_data_dir  # noqa: E402
from pretrained import OFFLINE_ENV, default_assets_dir, machine_line  # noqa: E402

PRESET = "sst2_sentence_pipeline"
BUDGET_MS, KEEP = 1.0, 0.98
CACHE = REPO_ROOT / "benchmarks" / ".cache" / "pipeline"
QUICK_TRAIN, QUICK_TEST = 300, 300


def log(msg: str) -> None:
    print(f"[pipeline] {msg}", file=sys.stderr, flush=True)


def wait_for_minilm(assets: Path, wait_s: float) -> None:
    """``make assets`` may still be fetching MiniLM-L6: wait for its config.json, then give up clearly."""
    folder = assets / "minilm-l6"
    deadline = time.time() + wait_s
    while not (folder / "config.json").is_file():
        if time.time() > deadline:
            raise SystemExit(f"error: {folder} not found; run `make assets` (MiniLM-L6 is the teacher)")
        log(f"waiting for {folder} (make assets) ...")
        time.sleep(30)


def _subset(src: Path, dst: Path, n: int) -> str:
    rows = src.read_text(encoding="utf-8").splitlines()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(random.Random(0).sample(rows, min(n, len(rows)))) + "\n", encoding="utf-8")
    return str(dst)


def quick_config(raw: dict, data: Path, work: Path) -> dict:
    """The preset made small: 300 training texts, 300 dev/test texts, one epoch everywhere, no GLUE
    transfer data or augmentation, 50 timed texts."""
    raw["data"] = {"train": str(data / "sst2_sentence" / "train.jsonl"), "limit": QUICK_TRAIN,
                   "dev": _subset(data / "sst2_sentence" / "dev.jsonl", work / "dev.jsonl", QUICK_TEST),
                   "test": _subset(data / "sst2_sentence" / "test.jsonl", work / "test.jsonl", QUICK_TEST)}
    raw["teacher"]["overrides"] = list(raw["teacher"].get("overrides", [])) + ["train.epochs=1", "train.progress=false"]
    raw["measure"] = {"texts": 50}
    for c in raw["candidates"]:
        if c["kind"] == "distill":
            c["config"]["train"] = {**c["config"].get("train", {}), "epochs": 1, "progress": False}
            c["config"]["distill"].pop("transfer_data", None)
            c["config"]["distill"]["augment"] = {"copies": 0}
        if c["kind"] == "prune":
            c["retrain_epochs"] = 1
            c["overrides"] = ["train.progress=false"]
    return raw


def target_line(report: dict, reduced: bool) -> str:
    teacher = report["teacher_score"]
    fits = [r for r in report["candidates"] if r["p50_ms_b1"] <= BUDGET_MS]
    if not fits or not teacher:
        return (f"target: no candidate under {BUDGET_MS:g} ms p50 (or no teacher score) → "
                + ("no verdict (REDUCED run)" if reduced else "FAIL"))
    best = max(fits, key=lambda r: r["score"])
    kept = best["score"] / teacher
    return (f"target: best under {BUDGET_MS:g} ms p50 is {best['name']} ({100 * best['score']:.2f}%, "
            f"{best['p50_ms_b1']:g} ms) = {100 * kept:.1f}% of the teacher's {100 * teacher:.2f}% "
            f"(target ≥ {100 * KEEP:.0f}%) → " + ("no verdict (REDUCED run)" if reduced else
                                                  "PASS" if kept >= KEEP else "FAIL"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: tiny subset, 1 epoch (REDUCED, not the target)")
    p.add_argument("--data-dir", type=Path, default=default_data_dir())
    p.add_argument("--run-dir", type=Path, help="pipeline directory (default benchmarks/.cache/pipeline/<full|quick>)")
    p.add_argument("--out", type=Path, help="report file (default benchmarks/results/pipeline.md; --quick: none)")
    p.add_argument("--threads", type=int, help="torch / ONNX Runtime threads (OMP_NUM_THREADS too)")
    p.add_argument("--wait-assets", type=float, default=1800, help="seconds to wait for MiniLM-L6 (make assets)")
    args = p.parse_args()

    os.environ.update(OFFLINE_ENV)
    os.environ["TEXTSIFT_DATA"] = str(args.data_dir)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    wait_for_minilm(default_assets_dir(), args.wait_assets)
    import yaml

    from textsift.cli.main import main as textsift
    from textsift.config.load import read_yaml
    from textsift.config.pipeline import PIPELINE_PRESET_DIR

    tag = "quick" if args.quick else "full"
    run_dir = args.run_dir or CACHE / tag
    raw = read_yaml(PIPELINE_PRESET_DIR / f"{PRESET}.yaml")
    if args.quick:
        raw = quick_config(raw, args.data_dir, CACHE / "quick-data")
    if args.threads:
        raw["measure"] = {**raw.get("measure", {}), "threads": args.threads}
    config = CACHE / f"{tag}.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    started = time.time()
    log(f"textsift pipeline -c {config} --run-dir {run_dir} --max-latency-ms {BUDGET_MS:g}")
    status = textsift(["pipeline", "-c", str(config), "--run-dir", str(run_dir), "--max-latency-ms", f"{BUDGET_MS:g}"])
    if not (run_dir / "frontier.json").is_file():
        return status or 1
    report = json.loads((run_dir / "frontier.json").read_text(encoding="utf-8"))
    table = (run_dir / "frontier.md").read_text(encoding="utf-8")
    notes = [f"- date: {dt.datetime.now():%Y-%m-%d %H:%M} (local), took {(time.time() - started) / 60:.1f} min "
             "(finished stages reused from an earlier run are not rebuilt)",
             f"- command: `.venv/bin/python benchmarks/pipeline.py{' --quick' if args.quick else ''}`",
             f"- machine: {machine_line()}", f"- pipeline directory: {run_dir}"]
    if args.quick:
        notes.insert(0, f"- REDUCED RUN (--quick: {QUICK_TRAIN} training texts, {QUICK_TEST} test texts, 1 epoch, "
                        "no transfer data): shows the pipeline runs; not a measurement of the target")
    text = "\n".join([f"# Pipeline benchmark: {PRESET}", "", *notes, "", table, target_line(report, args.quick), ""])
    print(text)
    out = args.out or (None if args.quick else REPO_ROOT / "benchmarks" / "results" / "pipeline.md")
    if out:
        out.write_text(text, encoding="utf-8")
        out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        log(f"wrote {out}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
