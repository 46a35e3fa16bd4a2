"""Training-tricks benchmark: what each trick and loss does to test accuracy, and what it costs in time.

    .venv/bin/python benchmarks/tricks.py
    .venv/bin/python benchmarks/tricks.py --models textcnn --datasets sst2_sentence --variants plain,ema \
        --seeds 1 --limit-train 300 --epochs 1 --out /tmp/tricks-smoke.md

For each dataset x model x seed, the ``plain`` run (cross-entropy, no tricks) and every variant (one trick
alone, another loss, one combination) train from the same files with the same settings and seed; every
variant is compared with the plain run of the same seed. Reported per variant, over the seeds: test
accuracy, its per-seed difference to plain (points), macro-F1, and the time cost = the training loop's
seconds (Σ ``train_seconds`` of ``history.json``) ÷ the plain run's, each as mean ± std. Every run is
``textsift train`` in its own child process (``runner.run_child``: wall time, peak memory), one at a time.
A run that fails (e.g. a trick not implemented yet) becomes an ``n/a: <error>`` cell; the others go on.
Prints the protocol and a markdown table, and writes both to --out (raw rows as JSON beside it). Not a
unit test.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import REPO_ROOT, default_data_dir, find_splits  # noqa: E402
from pretrained import (OFFLINE_ENV, cpu_model, default_assets_dir, logged_precision, machine_line,  # noqa: E402
                        missing_assets)
from runner import run_child  # noqa: E402
from textsift_run import _scale, cli_problem, find_cli  # noqa: E402


# ---------------------------------------------------------------- what is measured

@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    tricks: tuple[str, ...] = ()
    loss: Optional[dict] = None
    pretrained_only: bool = False   # meaningless on a randomly initialised model (NoisyTune)


VARIANTS = (
    Variant("plain", "plain (ce)"),
    Variant("fgm", "fgm", ("fgm",)),
    Variant("pgd", "pgd", ("pgd",)),
    Variant("freelb", "freelb", ("freelb",)),
    Variant("awp", "awp", ("awp",)),
    Variant("rdrop", "rdrop", ("rdrop",)),
    Variant("multisample_dropout", "multisample_dropout", ("multisample_dropout",)),
    Variant("noisytune", "noisytune", ("noisytune",), pretrained_only=True),
    Variant("ema", "ema", ("ema",)),
    Variant("swa", "swa", ("swa",)),
    Variant("focal", "loss focal γ=2", loss={"name": "focal", "gamma": 2.0}),
    Variant("poly", "loss poly-1 ε=1", loss={"name": "poly", "epsilon": 1.0}),
    Variant("label_smoothing", "loss ce, label smoothing 0.1", loss={"name": "ce", "label_smoothing": 0.1}),
    Variant("combo", "pgd + ema + rdrop, focal γ=2", ("pgd", "ema", "rdrop"), {"name": "focal", "gamma": 2.0}),
)
VARIANT = {v.name: v for v in VARIANTS}
SKIP_NOTE = "skipped: NoisyTune perturbs pretrained weights; TextCNN here starts from random init"

MODELS = ("textcnn", "minilm")
MODEL_LABEL = {"textcnn": "TextCNN", "minilm": "MiniLM-L6"}
# Training settings besides epochs / max_length (those are flags). TextCNN: textsift's defaults.
MODEL_TRAIN = {
    "textcnn": {},
    "minilm": {"batch_size": 32, "lr": 5.0e-5, "warmup_ratio": 0.06},   # as the sst2_sentence_minilm preset
}
DEFAULT_EPOCHS = {"textcnn": 5, "minilm": 2}
DEFAULT_LIMIT = {"textcnn": None, "minilm": 4000}
DEFAULT_MAX_LENGTH = {"textcnn": 128, "minilm": 64}   # textcnn: textsift's default
DATASETS = ("sst2_sentence", "tnews")
SUBSET_SEED = 0      # training subsets and the tnews dev hold-out: fixed, the same for every run
DEV_SHARE = 0.1      # tnews has no test file: its dev.jsonl is the test set, 10% of train becomes dev
RULE = ("verdict: \"helps\" when the mean Δ is > 0 and larger than the std of the per-seed Δs, \"hurts\" when "
        "it is < 0 and its size is larger than that std, else \"no clear effect\" (needs ≥ 2 seeds). This is "
        "a screening rule, not a significance test: with 3 seeds, mean > 1 std is t > 1.73 (one-sided "
        "p ≈ 0.11), and seeds do not capture the sampling noise of the test set itself")


def log(msg: str) -> None:
    print(f"[tricks] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data: the same files for every run

@dataclass
class Files:
    train: Path
    dev: Path
    test: Path
    n_train: int
    n_dev: int
    n_test: int
    notes: list[str] = field(default_factory=list)


def _lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [ln if ln.endswith("\n") else ln + "\n" for ln in f if ln.strip()]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _sample(lines: list[str], n: Optional[int]) -> list[str]:
    """A random ``n`` of ``lines`` (seed SUBSET_SEED), kept in file order; all of them when n is None."""
    if n is None or n >= len(lines):
        return lines
    keep = sorted(random.Random(SUBSET_SEED).sample(range(len(lines)), n))
    return [lines[i] for i in keep]


def _stratified_holdout(lines: list[str], share: float) -> tuple[list[str], list[str]]:
    """(rest, held out): ``share`` of each label's records, at random (seed SUBSET_SEED), file order kept."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, ln in enumerate(lines):
        by_label[str(json.loads(ln).get("label"))].append(i)
    rng, out = random.Random(SUBSET_SEED), set()
    for label in sorted(by_label):
        idx = by_label[label]
        out.update(rng.sample(idx, round(share * len(idx))))
    return [ln for i, ln in enumerate(lines) if i not in out], [lines[i] for i in sorted(out)]


def prepare_data(name: str, data_dir: Path, work: Path, limits: dict[str, Optional[int]],
                 limit_dev: Optional[int], limit_test: Optional[int]) -> dict[str, Files]:
    """Per model: train/dev/test files. A dataset without test.jsonl (tnews) is tested on its dev.jsonl,
    and a stratified DEV_SHARE of train (fixed seed) becomes the dev split that picks the best epoch."""
    sp = find_splits(data_dir, name)
    folder = work / "data" / name
    base_notes = []
    train = _lines(sp.train)
    if sp.test is not None and sp.dev is not None:
        dev, test = _lines(sp.dev), _lines(sp.test)
    elif sp.test is None:
        train, dev = _stratified_holdout(train, DEV_SHARE)
        test = _lines(sp.dev)
        base_notes.append(f"no test.jsonl: test = the official dev.jsonl ({len(test)}); dev = a stratified "
                          f"{DEV_SHARE:.0%} of train.jsonl ({len(dev)}, seed {SUBSET_SEED}), trained on the "
                          f"other {len(train)}")
    else:   # a test file but no dev file
        train, dev = _stratified_holdout(train, DEV_SHARE)
        test = _lines(sp.test)
        base_notes.append(f"no dev.jsonl: dev = a stratified {DEV_SHARE:.0%} of train.jsonl ({len(dev)}, "
                          f"seed {SUBSET_SEED})")
    if limit_dev is not None and limit_dev < len(dev):
        base_notes.append(f"dev cut to a random {limit_dev} of {len(dev)} (--limit-dev)")
        dev = _sample(dev, limit_dev)
    if limit_test is not None and limit_test < len(test):
        base_notes.append(f"TEST cut to a random {limit_test} of {len(test)} (--limit-test)")
        test = _sample(test, limit_test)
    dev_p, test_p = _write(folder / "dev.jsonl", dev), _write(folder / "test.jsonl", test)
    out = {}
    for model, limit in limits.items():
        lines = _sample(train, limit)
        notes = list(base_notes)
        if len(lines) < len(train):
            notes.append(f"{MODEL_LABEL[model]} trains on a random {len(lines)} of the {len(train)} training "
                         f"records (seed {SUBSET_SEED})")
        out[model] = Files(_write(folder / f"train-{len(lines)}.jsonl", lines), dev_p, test_p,
                           len(lines), len(dev), len(test), notes)
    return out


def unk_share(tokenizer_json: Path, test: Path, n: int = 2000) -> Optional[float]:
    """Share of [UNK] tokens when the encoder's tokenizer reads the first ``n`` test texts."""
    try:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tokenizer_json))
        texts = [json.loads(ln)["text"] for ln in _lines(test)[:n]]
        enc = tok.encode_batch(texts, add_special_tokens=False)
        total = sum(len(e.tokens) for e in enc)
        return sum(e.tokens.count("[UNK]") for e in enc) / total if total else None
    except Exception:
        return None


# ---------------------------------------------------------------- configs and runs

def trick_specs(variant: Variant, trick_params: dict[str, dict]) -> list[dict]:
    return [{"name": t, **trick_params.get(t, {})} for t in variant.tricks]


def build_config(model: str, variant: Variant, seed: int, files: Files, epochs: int, max_length: int,
                 minilm: Path, trick_params: dict[str, dict]) -> dict:
    cfg = {"data": {"train": str(files.train), "dev": str(files.dev), "test": str(files.test)},
           "model": ({"name": "textcnn"} if model == "textcnn"
                     else {"name": "hf", "pretrained": str(minilm), "pooling": "mean"})}
    if variant.loss:
        cfg["loss"] = dict(variant.loss)
    train = {"epochs": epochs, "max_length": max_length, **MODEL_TRAIN[model], "seed": seed,
             # every run trains every epoch (the time cost compares equal work); the best dev epoch is tested
             "early_stopping": {"patience": None}}
    if variant.tricks:
        train["tricks"] = trick_specs(variant, trick_params)
    cfg["train"] = train
    cfg["report"] = {"plots": False, "tensorboard": False}
    return cfg


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def run_one(ds: str, model: str, variant: Variant, seed: int, config: dict, work: Path, overrides: list[str],
            timeout_s: float) -> dict:
    import yaml

    name = f"{ds}-{model}-{variant.name}-s{seed}"
    row = {"dataset": ds, "model": model, "variant": variant.name, "seed": seed, "config": config,
           "metrics": None, "na": None}
    problem = cli_problem()
    if problem:
        return {**row, "na": problem}
    cfg_path, run_dir = work / "configs" / f"{name}.yaml", work / "runs" / name
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    cfg_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    cmd = [str(find_cli()), "train", "-c", str(cfg_path), "--run-dir", str(run_dir), "train.progress=false",
           "report.plots=false", "report.tensorboard=false", *overrides]
    res = run_child(cmd, cwd=REPO_ROOT, env={**os.environ, **OFFLINE_ENV}, timeout_s=timeout_s)
    row.update(command=" ".join(shlex.quote(c) for c in cmd), wall_s=res.wall_s, peak_mib=res.peak_mib)
    if res.timed_out:
        return {**row, "na": f"timed out after {timeout_s:.0f} s"}
    if res.returncode != 0:
        tail = res.error_tail(2).replace(str(cfg_path), "<config>").replace(str(work), "<work>")
        return {**row, "na": f"exit {res.returncode}: {tail}"}
    metrics = _read_json(run_dir / "metrics.json")
    if not isinstance(metrics, dict):
        return {**row, "na": "no readable metrics.json in the run dir"}
    scores = _scale(metrics.get("test") or {})
    if "accuracy" not in scores:
        return {**row, "na": f"metrics.json has no test accuracy (keys: {sorted(metrics)})"}
    history = _read_json(run_dir / "history.json")
    epochs = [h for h in history if isinstance(h, dict) and "train_seconds" in h] if isinstance(history, list) else []
    row.update(metrics=scores, dev_metrics=_scale(metrics.get("dev") or {}),
               run_train_seconds=metrics.get("train_seconds"), precision=logged_precision(run_dir),
               loop_s=sum(float(h["train_seconds"]) for h in epochs) if epochs else None,
               epochs_run=len(epochs), train_examples=sum(int(h.get("train_examples") or 0) for h in epochs),
               best_dev_epoch=(max(epochs, key=lambda h: h.get("dev_accuracy", float("-inf")))["epoch"]
                               if epochs and any("dev_accuracy" in h for h in epochs) else None))
    if row["loop_s"] is None:
        row["time_na"] = "history.json has no per-epoch train_seconds"
    return row


# ---------------------------------------------------------------- table

def _mean_std(xs: list[float]) -> tuple[float, Optional[float]]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) >= 2 else None)


def _pm(xs: list[float], fmt: str = "{:.2f}", suffix: str = "") -> str:
    if not xs:
        return "—"
    m, s = _mean_std(xs)
    return fmt.format(m) + suffix + (" ± " + fmt.format(s).lstrip("+") + suffix if s is not None else "")


def verdict(deltas: list[float]) -> str:
    if len(deltas) < 2:
        return "— (needs ≥ 2 seeds)"
    m, s = _mean_std(deltas)
    if m > 0 and m > s:
        return "helps"
    if m < 0 and -m > s:
        return "hurts"
    return "no clear effect"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _short(text: str, n: int = 160) -> str:
    return text if len(text) <= n else "…" + text[-n:]


def summarise(rows: list[dict], ds: str, model: str, variant: Variant) -> dict:
    """Per-variant aggregates over the seeds (paired with plain of the same seed)."""
    def fastest(rows_of: list[dict]) -> dict:
        """Merged pieces share a seed's plain run (same result, checked): the fastest is the reference."""
        return min(rows_of, key=lambda r: r.get("loop_s") or float("inf"))

    def by_seed(name: str) -> dict:
        out: dict = {}
        for r in rows:
            if (r["dataset"], r["model"], r["variant"]) == (ds, model, name):
                out.setdefault(r["seed"], []).append(r)
        return out

    mine = {s: fastest(rs) for s, rs in by_seed(variant.name).items()}
    plains = by_seed("plain")
    ok = {s: r for s, r in mine.items() if r.get("metrics")}
    acc = [100 * r["metrics"]["accuracy"] for r in ok.values()]
    f1 = [100 * r["metrics"]["macro_f1"] for r in ok.values() if "macro_f1" in r["metrics"]]
    deltas, ratios = [], []
    for s, r in ok.items():
        if s in plains and plains[s][0].get("metrics"):   # a seed's plain runs share one result (merge checks)
            deltas.append(100 * (r["metrics"]["accuracy"] - plains[s][0]["metrics"]["accuracy"]))
        # the reference clock: the fastest plain run of the seed on the variant's own CPU (the pieces of one
        # seed may have run on different machines, and a loop time only compares with one from the same CPU)
        same_cpu = [p for p in plains.get(s, []) if p.get("cpu") == r.get("cpu") and p.get("loop_s")]
        if r.get("loop_s") and same_cpu:
            ratios.append(r["loop_s"] / fastest(same_cpu)["loop_s"])
    failed = {s: r.get("na") or "no result" for s, r in mine.items() if not r.get("metrics")}
    return {"n": len(mine), "ok": ok, "acc": acc, "f1": f1, "deltas": deltas, "ratios": ratios, "failed": failed,
            "loop_s": [r["loop_s"] for r in ok.values() if r.get("loop_s")],
            "wall": [r["wall_s"] for r in ok.values() if r.get("wall_s")],
            "peak": [r["peak_mib"] for r in ok.values() if r.get("peak_mib")]}


HEADER = ("| dataset | model | variant | test acc % | Δ acc vs plain (pt) | macro-F1 % | time cost × plain "
          "| verdict | wall s / peak MiB |\n|---|---|---|---:|---:|---:|---:|---|---:|")


def table(rows: list[dict], datasets: list[str], models: list[str], variants: list[Variant]) -> str:
    body = []
    for ds in datasets:
        for model in models:
            for v in variants:
                cells = [ds, MODEL_LABEL[model], v.label]
                if v.pretrained_only and model == "textcnn":
                    body.append("| " + " | ".join(_cell(c) for c in cells + [SKIP_NOTE, "—", "—", "—", "—", "—"]) + " |")
                    continue
                a = summarise(rows, ds, model, v)
                if a["n"] == 0:
                    continue
                if not a["ok"]:
                    reasons = sorted(set(a["failed"].values()))
                    why = "; ".join(_short(x) for x in reasons[:2])
                    cells += [f"n/a: {why}", "—", "—", "—", "—", "—"]
                else:
                    acc = _pm(a["acc"])
                    if a["failed"]:
                        acc += f" ({len(a['ok'])}/{a['n']} seeds; seed {', '.join(map(str, sorted(a['failed'])))} " \
                               f"failed: {_short(next(iter(a['failed'].values())), 100)})"
                    if v.name == "plain":
                        delta, cost, verd = "0 (reference)", f"1 (loop {_pm(a['loop_s'], '{:.1f}', ' s')})", "reference"
                    else:
                        delta = _pm(a["deltas"], "{:+.2f}") if a["deltas"] else "n/a: no plain run to compare"
                        cost = _pm(a["ratios"], "{:.2f}", "×") if a["ratios"] else "n/a"
                        verd = verdict(a["deltas"])
                    wall = (f"{statistics.fmean(a['wall']):.0f} / {statistics.fmean(a['peak']):.0f}"
                            if a["wall"] and a["peak"] else "—")
                    cells += [acc, delta, _pm(a["f1"]), cost, verd, wall]
                body.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join([HEADER, *body])


# ---------------------------------------------------------------- report

def registered_tricks() -> tuple[dict[str, dict], Optional[str]]:
    """{trick name: its parameter defaults} from textsift's registry, or (…, why not)."""
    try:
        from textsift.registry import TRICKS

        out = {}
        for name in TRICKS.names():
            params = TRICKS.entry(name).params
            try:
                out[name] = params().model_dump() if params is not None else {}
            except Exception:   # a parameter without default
                out[name] = {k: ("required" if f.is_required() else f.default) for k, f in params.model_fields.items()}
        return out, None
    except Exception as e:
        return {}, f"{e.__class__.__name__}: {e}"


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "textsift"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return f"git {head}" + (" + uncommitted changes under textsift/" if dirty else "")
    except Exception:
        return "git state unknown"


def protocol_lines(args, files: dict[str, dict[str, Files]], models: list[str], seeds: list[int],
                   epochs: dict, limits: dict, max_len: dict) -> list[str]:
    reduced = [m for m in models if limits[m] is not None] + (["dev/test"] if args.limit_dev or args.limit_test else [])
    lines = []
    if reduced:
        lines.append(f"**REDUCED RUN** — subsets for {', '.join(MODEL_LABEL.get(m, m) for m in reduced)}; "
                     "not the full-data result")
    lines.append(f"seeds {', '.join(map(str, seeds))} (train.seed); each variant is compared with the plain run "
                 "of the same seed; no early stopping (every run trains every epoch), the best-dev-accuracy epoch "
                 "is evaluated on test")
    for m in models:
        hp = {**MODEL_TRAIN[m]}
        hp_s = ", ".join(f"{k} {v}" for k, v in hp.items()) or "batch 64, lr 1e-3 (textsift defaults)"
        lines.append(f"{MODEL_LABEL[m]}: epochs {epochs[m]}, max_length {max_len[m]}, {hp_s}, training data "
                     f"{'full' if limits[m] is None else f'a random {limits[m]} records'}")
    for ds, per_model in files.items():
        sizes = "; ".join(f"{MODEL_LABEL[m]} train {f.n_train}" for m, f in per_model.items())
        any_f = next(iter(per_model.values()))
        lines.append(f"{ds}: {sizes}; dev {any_f.n_dev}, test {any_f.n_test}"
                     + ("".join(f"; {n}" for n in dict.fromkeys(x for f in per_model.values() for x in f.notes))))
    return lines


def write_outputs(out: Path, rows: list[dict], text_blocks: list[str], meta: dict, started: dt.datetime,
                  final: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/tricks.py", *sys.argv[1:]])
    took = (dt.datetime.now() - started).total_seconds() / 60
    text = "\n".join([
        "# Training-tricks benchmark" + ("" if final else " (INCOMPLETE: still running or interrupted)"), "",
        f"- date: {started:%Y-%m-%d %H:%M} (local), took {took:.1f} min",
        f"- command: `{command}`",
        f"- machine: {machine_line()}",
        f"- textsift: {meta['git']}",
        *text_blocks, ""])
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(
        json.dumps({"meta": {"date": f"{started:%Y-%m-%d %H:%M}", "command": command, "complete": final, **meta},
                    "rows": rows}, indent=1, ensure_ascii=False, default=str), encoding="utf-8")


# ---------------------------------------------------------------- main

def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _per_model(text: Optional[str], defaults: dict, what: str, allow_full: bool = False) -> dict:
    """``N`` (every model) or ``textcnn:N,minilm:M`` (others keep their default); ``full`` = no limit."""
    out = dict(defaults)
    if text is None:
        return out

    def val(s: str):
        s = s.strip()
        if allow_full and s.lower() in ("full", "none", "0"):
            return None
        n = int(s)
        if n < 1:
            raise ValueError(f"{what}: {s} must be ≥ 1")
        return n

    if ":" not in text:
        return {m: val(text) for m in out}
    for item in _csv(text):
        m, _, v = item.partition(":")
        if m.strip() not in out:
            raise ValueError(f"{what}: unknown model '{m}' (models: {', '.join(MODELS)})")
        out[m.strip()] = val(v)
    return out


def _trick_params(items: list[str]) -> dict[str, dict]:
    import yaml

    out: dict[str, dict] = {}
    for item in items:
        name, sep, rest = item.partition(":")
        if not sep or "=" not in rest:
            raise ValueError(f"--trick-params '{item}': expected TRICK:param=value[,param=value]")
        for kv in _csv(rest):
            k, _, v = kv.partition("=")
            out.setdefault(name.strip(), {})[k.strip()] = yaml.safe_load(v)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"single-label dataset folders under --data-dir (default: {','.join(DATASETS)})")
    p.add_argument("--models", default=",".join(MODELS), help=f"default: {','.join(MODELS)}")
    p.add_argument("--variants", default=",".join(v.name for v in VARIANTS),
                   help=f"subset of {','.join(v.name for v in VARIANTS)} (plain always runs: it is the reference)")
    p.add_argument("--seeds", default="1,2,3", help="train.seed values (default 1,2,3)")
    p.add_argument("--limit-train", default=None,
                   help="train on a random N records (fixed seed): N for every model, or textcnn:N,minilm:M; "
                        "'full' = all (default: textcnn full, minilm 4000)")
    p.add_argument("--epochs", default=None, help="N or textcnn:N,minilm:M (default: textcnn 5, minilm 2)")
    p.add_argument("--max-length", default=None, help="N or textcnn:N,minilm:M (default: textcnn 128, minilm 64)")
    p.add_argument("--limit-dev", type=int, default=None, help="random N dev records (epoch selection only)")
    p.add_argument("--limit-test", type=int, default=None, help="random N test records (noisier numbers)")
    p.add_argument("--trick-params", nargs="+", default=[], metavar="TRICK:K=V[,K=V]",
                   help="parameters of a trick wherever it is used, e.g. ema:decay=0.99 (default: its own defaults)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="extra overrides for every run")
    p.add_argument("--data-dir", type=Path, default=None, help="default: $TEXTSIFT_DATA, else ../shared/datasets")
    p.add_argument("--assets-dir", type=Path, default=None,
                   help="default: $TEXTSIFT_ASSETS, else ~/.cache/textsift-assets (needs minilm-l6/)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "tricks.md",
                   help="markdown report; raw rows in the same name with .json (rewritten after every run)")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per run (default 1800)")
    p.add_argument("--keep-runs", action="store_true", help="keep the temp dir with data, configs and run dirs")
    p.add_argument("--merge", nargs="+", type=Path, default=None, metavar="RUN.json",
                   help="train nothing: combine the rows of earlier runs with the same protocol and other seeds, "
                        "datasets/models or variants (e.g. one seed, one dataset or half of the variants per core "
                        "or per day) into one report at --out")
    return p.parse_args(argv)


def _cpu(path: Path, meta: dict) -> str:
    """The CPU a run's rows were timed on: its JSON's ``cpu``, or for a file written before that was recorded,
    the ``machine`` line of the markdown report written beside it (a merged report's line names the machine
    of the merge, not of its runs, so it is not read)."""
    if meta.get("cpu"):
        return meta["cpu"]
    report = path.with_suffix(".md")
    if not meta.get("merged_from") and report.is_file():
        found = re.search(r"^- machine: [^:\n]*: (.+?), \d+ CPUs", report.read_text(encoding="utf-8"), re.M)
        if found:
            return found.group(1)
    return "unknown CPU"


# Settings two runs must share for their rows to be compared in one table.
SAME_PROTOCOL = ("limit_train", "epochs", "max_length", "limit_dev", "limit_test", "trick_params")


def _secs(row: dict) -> str:
    return f"{row['loop_s']:.0f} s" if row.get("loop_s") else "not timed"


def precisions(rows: list[dict]) -> dict[tuple[str, str], list[str]]:
    """{(dataset, model): the precisions its runs trained in} (``train.precision: auto`` picks bf16 autocast
    for MiniLM-L6 on a CPU with native bf16 matmuls and fp32 elsewhere, so the machine decides)."""
    out: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        if r.get("precision"):
            out.setdefault((r["dataset"], r["model"]), [])
            if r["precision"] not in out[(r["dataset"], r["model"])]:
                out[(r["dataset"], r["model"])].append(r["precision"])
    return out


def precision_line(rows: list[dict]) -> list[str]:
    found = precisions(rows)
    if not found:
        return []
    return ["precision (train.precision auto, as resolved on the machine): " + "; ".join(
        f"{ds} / {MODEL_LABEL[m]} {', '.join(ps)}" for (ds, m), ps in found.items())]


def merge(paths: list[Path], out: Path) -> int:
    """``--merge``: one report from several runs' JSON files with the same protocol, each holding other seeds,
    other datasets/models or other variants (a long grid run in pieces: one seed, one dataset, or some of the
    variants per run, on its own core). Every piece runs plain (the reference); a plain run that two pieces
    share must have the same result in both (same seed, same deterministic training), and each variant is
    then timed against the fastest of them: they did the same work, so any extra time is the shared machine's
    noise (timeit's rule: the minimum is the best estimate of the cost). Any other row that two files both
    hold is an error: it would count twice. A piece that did not finish is fine when other pieces fill in
    what it missed; what no piece ran is listed at the top of the report."""
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    first = runs[0]["meta"]
    for path, run in zip(paths[1:], runs[1:]):
        meta = run["meta"]
        differ = [k for k in SAME_PROTOCOL if meta.get(k) != first.get(k)]
        if differ:
            what = "; ".join(f"{k} {meta.get(k)!r} vs {first.get(k)!r}" for k in differ)
            print(f"error: --merge: {path} differs from {paths[0]} in {what}", file=sys.stderr)
            return 2
    mixed = {k: ps for k, ps in precisions([r for run in runs for r in run["rows"]]).items() if len(ps) > 1}
    if mixed:
        (ds, m), ps = next(iter(mixed.items()))
        per_file = [(p, precisions(run["rows"]).get((ds, m))) for p, run in zip(paths, runs)]
        where = "; ".join(f"{p.name}: {', '.join(found)}" for p, found in per_file if found)
        print(f"error: --merge: {ds} / {MODEL_LABEL[m]} trained in {' and '.join(ps)} in different pieces ({where}): "
              "one table compares runs of one precision; re-run a piece with the other's, e.g. "
              "--set train.precision=fp32", file=sys.stderr)
        return 2
    seen: dict[tuple, tuple[Path, dict]] = {}
    rows, plains = [], {}
    for path, run in zip(paths, runs):
        cpu = _cpu(path, run["meta"])
        for row in run["rows"]:
            row.setdefault("cpu", cpu)
            key = (row["dataset"], row["model"], row["seed"], row["variant"])
            if key in seen:
                other_path, other = seen[key]
                what = f"{row['variant']} of seed {key[2]} on {key[0]} / {MODEL_LABEL[key[1]]}"
                if row["variant"] != "plain":
                    print(f"error: --merge: {what} is in both {other_path} and {path}", file=sys.stderr)
                    return 2
                if row.get("metrics") != other.get("metrics"):
                    print(f"error: --merge: {what} differs between {other_path} ({other.get('metrics')}) and "
                          f"{path} ({row.get('metrics')}): the pieces did not train the same reference, so their "
                          "variants cannot share one table; re-run one piece on the same settings",
                          file=sys.stderr)
                    return 2
                plains.setdefault(what, [(other_path, other)]).append((path, row))
            else:
                seen[key] = (path, row)
            rows.append(row)
    names = {v for r in runs for v in r["meta"]["variants"]}
    variants = [v for v in VARIANTS if v.name in names]
    grid = sorted({k[:3] for k in seen})
    missing = []
    for ds, m, seed in grid:
        absent = [v.name for v in variants
                  if (ds, m, seed, v.name) not in seen and not (v.pretrained_only and m == "textcnn")]
        if absent:
            missing.append(f"{ds} / {MODEL_LABEL[m]} seed {seed}: {', '.join(absent)}")
    datasets = [d for d in DATASETS if any(d in r["meta"]["datasets"] for r in runs)] + \
        [d for r in runs for d in r["meta"]["datasets"] if d not in DATASETS]
    models = [m for m in MODELS if any(m in r["meta"]["models"] for r in runs)]
    first = {**first, "datasets": list(dict.fromkeys(datasets)), "models": models,
             "variants": [v.name for v in variants]}
    seeds = sorted({k[2] for k in seen})

    def piece(r: dict) -> str:
        ran = [v for v in r["meta"]["variants"] if v != "plain"]
        return (f"{', '.join(r['meta']['datasets'])}; {', '.join(MODEL_LABEL[m] for m in r['meta']['models'])}; "
                f"seeds {', '.join(map(str, r['meta']['seeds']))}"
                + ("" if len(ran) + 1 == len(variants) else f"; plain + {', '.join(ran)}")
                + ("" if r["meta"].get("complete") else "; did not finish"))

    sources = ", ".join(f"{p.name} ({piece(r)})" for p, r in zip(paths, runs))
    seeds_line = f"seeds {', '.join(map(str, seeds))} (train.seed), merged from {sources}"
    # every run's protocol lines once (each run describes its own models and datasets), the seeds line merged
    lines = list(dict.fromkeys(line for r in runs for line in r["meta"]["protocol"]
                               if not line.startswith("**INCOMPLETE")))   # a merged input's own: recomputed
    seeds_at = next(i for i, line in enumerate(lines) if line.startswith("seeds "))
    protocol = [line for line in lines if not line.startswith("seeds ")]
    protocol.insert(seeds_at, lines[seeds_at].replace(lines[seeds_at].split(" (train.seed)")[0] + " (train.seed)",
                                                      seeds_line, 1))
    cpus = list(dict.fromkeys(r["cpu"] for r in rows))

    def clock(path: Path, row: dict) -> str:
        return f"{_secs(row)} ({path.name}" + (f", {row['cpu']})" if len(cpus) > 1 else ")")

    shared = [f"{what} ran in {len(ran)} pieces with the same result; training loop "
              f"{', '.join(clock(p, r) for p, r in ran)}: the same work, so the spread is the machine's noise, "
              "and the seed's variants are timed against the fastest"
              + (" on their own CPU" if len({r["cpu"] for _, r in ran}) > 1 else "") for what, ran in plains.items()]
    notes = list(dict.fromkeys(note for r in runs for note in r["meta"]["notes"])) + shared
    if len(cpus) > 1:
        notes.append("the pieces ran on different CPUs (" + "; ".join(
            f"{p.name}: {', '.join(dict.fromkeys(row['cpu'] for row in r['rows']))}" for p, r in zip(paths, runs))
            + "): each variant's time cost is taken against a plain run of its seed on its own CPU")
    if missing:
        protocol.insert(0, f"**INCOMPLETE** — no piece ran {'; '.join(missing)}")
    blocks = [*[f"- {x}" for x in protocol + precision_line(rows) + notes], "",
              *[f"- run {p.name}: {r['meta']['date']}, `{r['meta']['command']}`, textsift {r['meta']['git']}"
                for p, r in zip(paths, runs)], "",
              "## Results", "", table(rows, first["datasets"], first["models"], variants), "",
              "Δ = per-seed difference to plain (same seed), mean ± std over seeds; time cost = Σ history.json "
              "train_seconds (the training loop only) ÷ plain's, per seed, mean ± std; wall s = the whole child "
              f"process (mean). {RULE}.", ""]
    meta = {**first, "seeds": seeds, "protocol": protocol, "notes": notes, "merged_from": [str(p) for p in paths],
            "cpu": cpus[0] if len(cpus) == 1 else "mixed"}
    write_outputs(out, rows, blocks, meta, dt.datetime.now(), final=not missing)
    print("\n".join(blocks[blocks.index("## Results"):]).rstrip())
    log(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    started = dt.datetime.now()
    datasets, models = _csv(args.datasets), _csv(args.models)
    asked = _csv(args.variants)
    try:
        seeds = [int(s) for s in _csv(args.seeds)]
        limits = _per_model(args.limit_train, DEFAULT_LIMIT, "--limit-train", allow_full=True)
        epochs = _per_model(args.epochs, DEFAULT_EPOCHS, "--epochs")
        max_len = _per_model(args.max_length, DEFAULT_MAX_LENGTH, "--max-length")
        trick_params = _trick_params(args.trick_params)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bad = [f"model '{m}'" for m in models if m not in MODELS] + [f"variant '{v}'" for v in asked if v not in VARIANT]
    if bad or not seeds or not models or not datasets:
        print(f"error: unknown {', '.join(bad) or 'nothing to run'} (models: {', '.join(MODELS)}; variants: "
              f"{', '.join(VARIANT)})", file=sys.stderr)
        return 2
    variants = [v for v in VARIANTS if v.name == "plain" or v.name in asked]
    data_dir = (args.data_dir or default_data_dir()).resolve()
    assets = (args.assets_dir or default_assets_dir()).expanduser().resolve()
    minilm = assets / "minilm-l6"
    if "minilm" in models:
        problems = missing_assets(minilm, [])
        if problems:
            print("error: " + "; ".join(problems) + f"\nfetch it with `../shared/pretrained/get-pretrained.sh "
                  f"{assets}`, or point --assets-dir / $TEXTSIFT_ASSETS at a folder that has it", file=sys.stderr)
            return 2

    work = Path(tempfile.mkdtemp(prefix="textsift-tricks-"))
    files: dict[str, dict[str, Files]] = {}
    try:
        for ds in datasets:
            files[ds] = prepare_data(ds, data_dir, work, {m: limits[m] for m in models}, args.limit_dev,
                                     args.limit_test)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        shutil.rmtree(work, ignore_errors=True)
        return 2

    tricks_known, tricks_why = registered_tricks()
    used = sorted({t for v in variants for t in v.tricks})
    protocol = protocol_lines(args, files, models, seeds, epochs, limits, max_len)
    notes = [f"data: {data_dir}" + (f"; assets: {assets}" if "minilm" in models else "")]
    if "minilm" in models and "tnews" in datasets:
        share = unk_share(minilm / "tokenizer.json", files["tnews"]["minilm"].test)
        notes.append("MiniLM-L6 (all-MiniLM-L6-v2) is an English encoder: on tnews it reads Chinese through its "
                     "BERT-uncased vocabulary" + (f" ({100 * share:.1f}% of test tokens are [UNK])" if share else ""))
    for t in used:
        if t in tricks_known:
            given = trick_params.get(t, {})
            notes.append(f"trick {t}: {json.dumps({**tricks_known[t], **given}, default=str)}"
                         + (f" (set here: {json.dumps(given)}; the rest its defaults)" if given else " (its defaults)"))
        else:
            notes.append(f"trick {t}: not registered in this textsift"
                         + (f" ({tricks_why})" if tricks_why else f" (registered: {', '.join(tricks_known) or 'none'})"))
    if "swa" in used and "swa" in tricks_known:
        start = trick_params.get("swa", {}).get("start_epoch", tricks_known["swa"].get("start_epoch"))
        if isinstance(start, int):
            for m in models:
                k = max(0, epochs[m] - start + 1)
                if k >= 2:
                    notes.append(f"swa on {MODEL_LABEL[m]}: averages the end-of-epoch weights of epochs "
                                 f"{start}-{epochs[m]} ({k} snapshots)")
                else:
                    notes.append(f"swa on {MODEL_LABEL[m]}: start_epoch {start} with {epochs[m]} epochs = "
                                 f"{k} snapshot{'s' if k != 1 else ''} to average, so this is close to plain "
                                 "training (set e.g. --trick-params swa:start_epoch=1)")
    if args.set:
        notes.append(f"extra overrides for every run: {' '.join(args.set)}")

    jobs = [(ds, m, seed, v) for ds in datasets for m in models for seed in seeds for v in variants
            if not (v.pretrained_only and m == "textcnn")]
    meta = {"git": git_state(), "datasets": datasets, "models": models, "variants": [v.name for v in variants],
            "seeds": seeds, "limit_train": limits, "epochs": epochs, "max_length": max_len,
            "limit_dev": args.limit_dev, "limit_test": args.limit_test, "trick_params": trick_params,
            "cpu": cpu_model(), "registered_tricks": tricks_known, "protocol": protocol, "notes": notes}
    print("Protocol:\n" + "\n".join(f"- {x}" for x in protocol + notes) + "\n", flush=True)
    log(f"{len(jobs)} runs, one at a time; work dir {work}")

    def blocks(rows: list[dict]) -> list[str]:
        return [*[f"- {x}" for x in protocol + precision_line(rows) + notes], "",
                "## Results", "", table(rows, datasets, models, variants), "",
                f"Δ = per-seed difference to plain (same seed), mean ± std over seeds; time cost = Σ history.json "
                f"train_seconds (the training loop only) ÷ plain's, per seed, mean ± std; wall s = the whole child "
                f"process (mean). {RULE}.", ""]

    rows: list[dict] = []
    t0 = time.perf_counter()
    final = False
    try:
        for i, (ds, m, seed, v) in enumerate(jobs, 1):
            cfg = build_config(m, v, seed, files[ds][m], epochs[m], max_len[m], minilm, trick_params)
            log(f"[{i}/{len(jobs)}] {ds} {MODEL_LABEL[m]} {v.name} seed {seed} ...")
            row = run_one(ds, m, v, seed, cfg, work, args.set, args.timeout)
            rows.append(row)
            done = time.perf_counter() - t0
            status = (f"test acc {100 * row['metrics']['accuracy']:.2f}, loop {row.get('loop_s') or 0:.1f} s"
                      if row.get("metrics") else f"n/a: {_short(row['na'], 200)}")
            log(f"    {status}; wall {row.get('wall_s', 0):.1f} s, peak {row.get('peak_mib', 0):.0f} MiB; "
                f"elapsed {done / 60:.1f} min, ~{done / i * (len(jobs) - i) / 60:.1f} min to go")
            write_outputs(args.out, rows, blocks(rows), meta, started, final=False)
        final = True
    except KeyboardInterrupt:
        log("interrupted: writing what has finished")
    finally:
        if args.keep_runs:
            log(f"data, configs and run directories kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out_blocks = blocks(rows)
    print("\n".join(out_blocks[out_blocks.index("## Results"):]).rstrip())
    write_outputs(args.out, rows, out_blocks, meta, started, final=final)
    log(f"wrote {args.out} and {args.out.with_suffix('.json')} ({(time.perf_counter() - t0) / 60:.1f} min)")
    return 0 if final else 130


if __name__ == "__main__":
    sys.exit(main())
