"""Classic-model benchmark: textsift vs fastText and TF-IDF + LinearSVC on the same splits.

    .venv/bin/python benchmarks/classic.py
    .venv/bin/python benchmarks/classic.py --datasets thucnews_title,trec6 --skip-textsift
    .venv/bin/python benchmarks/classic.py --datasets thucnews_title \\
        --textsift-configs thucnews_title: thucnews_title:model.name=fasttext
    .venv/bin/python benchmarks/classic.py --skip-peers --peer-results benchmarks/results/classic-peers.json

Every system runs in its own child process, one after another (never side by side), so that wall
time and peak memory belong to that system alone. Prints a markdown table and one verdict line per
dataset, and writes both to --out (plus the raw rows as JSON next to it). Not a unit test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import tempfile
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import REPO_ROOT, default_data_dir, find_splits, primary_metric, task_of  # noqa: E402
from report import PEERS, make_table, recipes, verdicts  # noqa: E402
from runner import run_child  # noqa: E402
from textsift_run import parse_specs, run_textsift  # noqa: E402

DEFAULT_DATASETS = "thucnews_title,sst2_sentence,trec6,clinc150,20newsgroups,imdb,goemotions"
PEER_LABEL = {"fasttext": "fastText", "tfidf_svm": "TF-IDF + LinearSVC"}
PEER_ARG = {"fasttext": "fasttext", "tfidf_svm": "svm"}
# textsift presets run on a dataset when --textsift-configs does not name it: its own preset, plus the
# neural fastText preset on thucnews_title (the target for the `fasttext` model).
DEFAULT_PRESETS = {"thucnews_title": ["thucnews_title", "thucnews_title_fasttext"]}


def log(msg: str) -> None:
    print(f"[classic] {msg}", file=sys.stderr, flush=True)


def run_peer(system: str, dataset: str, task: str, eval_split: str, data_dir: Path, timeout_s: float) -> dict:
    """One peer in a child process (``peers.py``); its JSON line plus the parent's wall/peak."""
    cmd = [sys.executable, str(Path(__file__).with_name("peers.py")), PEER_ARG[system], dataset,
           "--data-dir", str(data_dir)]
    res = run_child(cmd, cwd=REPO_ROOT, timeout_s=timeout_s)
    row = {"dataset": dataset, "system": system, "label": PEER_LABEL[system], "task": task,
           "eval_split": eval_split, "metrics": None, "na": None, "wall_s": res.wall_s, "peak_mib": res.peak_mib}
    line = res.last_json_line()
    if res.timed_out:
        row["na"] = f"timed out after {timeout_s:.0f} s"
    elif res.returncode != 0 or line is None:
        row["na"] = f"peers.py exited {res.returncode}: {res.error_tail()}"
    else:
        out = json.loads(line)
        row.update({k: out[k] for k in ("metrics", "train_s", "tune_s", "predict_s", "recipe", "chosen",
                                        "n_train", "n_eval", "lang")})
    return row


def summary(row: dict) -> str:
    if row.get("metrics") is None:
        return f"{row['dataset']} {row['label']}: n/a: {row.get('na')}"
    main = primary_metric(row["task"])
    t = row.get("train_s")
    return (f"{row['dataset']} {row['label']}: {main} {100 * row['metrics'][main]:.2f}, "
            f"macro-F1 {100 * row['metrics']['macro_f1']:.2f}, train {t if t is None else round(t, 1)} s, "
            f"wall {row['wall_s']:.1f} s, peak {row['peak_mib']:.0f} MiB")


def load_peer_rows(path: Path, datasets: list[str]) -> tuple[list[dict], str]:
    saved = json.loads(path.read_text(encoding="utf-8"))
    rows = [r for r in saved["rows"] if r["system"] in PEERS and r["dataset"] in datasets]
    return rows, f"peer rows reused from {path} (measured {saved['meta'].get('date', '?')})"


def machine_line() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = []
    for pkg in ("fasttext-wheel", "scikit-learn", "numpy", "torch", "textsift"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    return (f"{platform.node()}: {os.cpu_count()} CPUs, load average {load} (1/5/15 min) at the end; "
            f"Python {platform.python_version()}; {'; '.join(versions)}")


def write_outputs(out: Path, rows: list[dict], datasets: list[str], table: str, verdict_lines: list[str],
                  notes: list[str], started: dt.datetime) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/classic.py", *sys.argv[1:]])
    text = "\n".join([
        "# Classic-model benchmark", "",
        f"- date: {started:%Y-%m-%d %H:%M} (local), took {(dt.datetime.now() - started).seconds / 60:.1f} min",
        f"- command: `{command}`",
        f"- machine: {machine_line()}",
        *[f"- {n}" for n in notes], "",
        table, "",
        "## Verdicts (primary metric: accuracy; micro-F1 for multi-label)", "",
        *verdict_lines, "",
        "## What ran", "",
        *recipes(rows), "",
    ])
    out.write_text(text, encoding="utf-8")
    meta = {"date": f"{started:%Y-%m-%d %H:%M}", "command": command, "datasets": datasets, "notes": notes}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, ensure_ascii=False),
                                        encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=DEFAULT_DATASETS, help=f"comma-separated (default: {DEFAULT_DATASETS})")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="dataset root (default: $TEXTSIFT_DATA, else ../shared/datasets from the repo root)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "classic.md",
                   help="markdown report; the raw rows go to the same name with .json")
    p.add_argument("--skip-textsift", action="store_true", help="run only the two peers")
    p.add_argument("--skip-peers", action="store_true", help="run no peer (see --peer-results)")
    p.add_argument("--peer-results", type=Path, default=None,
                   help="reuse the peer rows of an earlier run's .json (peers missing there still run, "
                        "unless --skip-peers)")
    p.add_argument("--textsift-configs", nargs="+", default=[], metavar="DATASET:KEY=VALUE[,KEY=VALUE]",
                   help="textsift runs with overrides, e.g. thucnews_title:model.name=fasttext; "
                        "'DATASET:' = the preset as shipped; 'DATASET@PRESET:' = another preset on that "
                        "dataset; '*:' applies to every dataset. A dataset named here runs exactly the runs "
                        "named; the others run their default presets as shipped (thucnews_title: "
                        "thucnews_title and thucnews_title_fasttext; others: the dataset's preset)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per child process (default 3600)")
    p.add_argument("--keep-runs", action="store_true", help="keep textsift run directories (path is printed)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    data_dir = (args.data_dir or default_data_dir()).resolve()
    try:
        splits = {ds: find_splits(data_dir, ds) for ds in datasets}
        specs = parse_specs(args.textsift_configs, datasets, DEFAULT_PRESETS)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    rows, notes = [], [f"data: {data_dir}"]
    if args.peer_results:
        peer_rows, note = load_peer_rows(args.peer_results, datasets)
        rows += peer_rows
        notes.append(note)
    work = Path(tempfile.mkdtemp(prefix="textsift-bench-"))
    for ds in datasets:
        sp, task = splits[ds], task_of(splits[ds])
        have = {r["system"] for r in rows if r["dataset"] == ds}
        if not args.skip_peers:
            for system in (p for p in PEERS if p not in have):
                log(f"{ds}: running {PEER_LABEL[system]} ...")
                rows.append(run_peer(system, ds, task, sp.eval_split, data_dir, args.timeout))
                log(summary(rows[-1]))
        if not args.skip_textsift:
            for spec in specs[ds]:
                log(f"{ds}: running textsift {' '.join(spec.overrides) or '(preset)'} ...")
                rows.append(run_textsift(spec, sp, task, data_dir, work, args.timeout))
                log(summary(rows[-1]))
    if args.keep_runs:
        log(f"textsift run directories kept in {work}")
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)

    table, verdict_lines = make_table(rows, datasets), verdicts(rows, datasets)
    print(table)
    print()
    print("\n".join(verdict_lines))
    write_outputs(args.out, rows, datasets, table, verdict_lines, notes, started)
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
