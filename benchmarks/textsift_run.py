"""Run ``textsift train`` on a shipped preset as one benchmark row, or say why it cannot run yet.

    textsift train -c textsift/presets/<dataset>.yaml --run-dir <tmp>/<dataset>-<model> \
        train.progress=false [overrides...]

then read ``<run-dir>/metrics.json`` = ``{"dev": {...}, "test": {...}, "train_seconds": ...}`` with
``accuracy``, ``macro_f1`` and ``micro_f1`` in each split. ``train_seconds`` (textsift's own clock:
data loading, training with per-epoch dev evaluation, threshold tuning and the final dev/test
evaluation and reports; not interpreter start-up) is the "train s" of a textsift row; without it,
the row shows only the subprocess wall time. textsift reports no separate prediction time.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from bench_data import REPO_ROOT, Splits
from runner import run_child


@dataclass(frozen=True)
class TextsiftSpec:
    """One textsift run: a dataset's preset (or another preset of that dataset) plus ``key=value`` overrides."""

    dataset: str
    overrides: tuple[str, ...] = field(default_factory=tuple)
    preset: str | None = None  # default: the preset named like the dataset


def split_overrides(text: str) -> list[str]:
    """Split ``a=1,b=[3,4,5]`` on the commas that are outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{("
        depth -= ch in "]})"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def parse_specs(items: list[str], datasets: list[str],
                defaults: dict[str, list[str]] | None = None) -> dict[str, list[TextsiftSpec]]:
    """``--textsift-configs`` → the textsift runs of each dataset.

    Each item is ``DATASET:key=value[,key=value...]`` (``*`` for every dataset; ``DATASET:`` alone
    is the preset as shipped; ``DATASET@PRESET:`` runs another preset on that dataset's splits, e.g.
    ``thucnews_title@thucnews_title_fasttext:``). A dataset named by no item runs the presets listed
    for it in ``defaults`` (else its own preset) as shipped; one named by items runs exactly those.

    Raises:
        ValueError: an item without ``:``, or naming a dataset that is not being benchmarked.
    """
    runs: dict[str, list[TextsiftSpec]] = {}
    for item in items:
        name, sep, rest = item.partition(":")
        name, _, preset = name.partition("@")
        if not sep:
            raise ValueError(f"--textsift-configs '{item}': expected DATASET:key=value[,key=value], "
                             f"e.g. thucnews_title:model.name=fasttext")
        bad = [o for o in split_overrides(rest) if "=" not in o]
        if bad:
            raise ValueError(f"--textsift-configs '{item}': override {bad[0]!r} is not key=value")
        targets = datasets if name == "*" else [name]
        if name != "*" and name not in datasets:
            raise ValueError(f"--textsift-configs '{item}': dataset '{name}' is not in --datasets "
                             f"({', '.join(datasets)})")
        for ds in targets:
            runs.setdefault(ds, []).append(TextsiftSpec(ds, tuple(split_overrides(rest)), preset or None))
    defaults = defaults or {}
    return {ds: runs.get(ds) or [TextsiftSpec(ds, (), None if p == ds else p) for p in defaults.get(ds, [ds])]
            for ds in datasets}


def find_cli() -> Path | None:
    """``<repo>/.venv/bin/textsift``, else the one beside this Python, else on PATH."""
    for cand in (REPO_ROOT / ".venv" / "bin" / "textsift", Path(sys.executable).parent / "textsift"):
        if cand.is_file():
            return cand
    found = shutil.which("textsift")
    return Path(found) if found else None


@lru_cache(maxsize=None)
def cli_problem() -> str | None:
    """Why the textsift CLI cannot train yet (missing, or ``textsift train --help`` fails), or None."""
    cli = find_cli()
    if cli is None:
        return "textsift CLI not installed (pip install -e . in the repo venv)"
    res = run_child([str(cli), "train", "--help"], cwd=REPO_ROOT, timeout_s=300)
    if res.returncode != 0:
        return f"`textsift train --help` failed: {res.error_tail()}"
    return None


def preset_path(dataset: str) -> Path:
    return REPO_ROOT / "textsift" / "presets" / f"{dataset}.yaml"


def spec_preset(spec: TextsiftSpec) -> Path:
    return preset_path(spec.preset or spec.dataset)


def model_name(spec: TextsiftSpec) -> str:
    """``model.name`` from the overrides, else from the preset YAML, else ``preset``."""
    for o in spec.overrides:
        key, _, value = o.partition("=")
        if key.strip() == "model.name":
            return value.strip()
    try:
        import yaml

        raw = yaml.safe_load(spec_preset(spec).read_text(encoding="utf-8"))
        return str(raw["model"]["name"])
    except Exception:   # an unreadable preset is reported by textsift itself
        return "preset"


def label(spec: TextsiftSpec) -> str:
    """``textsift textcnn (train.epochs=5)``: the model and any other overrides."""
    extra = [o for o in spec.overrides if not o.startswith("model.name=")]
    extra = ([f"preset {spec.preset}"] if spec.preset else []) + extra
    return f"textsift {model_name(spec)}" + (f" ({', '.join(extra)})" if extra else "")


def _scale(block: dict) -> dict[str, float]:
    """Metric values as fractions (accepts percentages too)."""
    out = {}
    for k in ("accuracy", "macro_f1", "micro_f1"):
        v = block.get(k)
        if isinstance(v, (int, float)):
            out[k] = float(v) / 100 if v > 1.0 else float(v)
    return out


def run_textsift(spec: TextsiftSpec, splits: Splits, task: str, data_dir: Path, work_dir: Path,
                 timeout_s: float) -> dict:
    """Train one textsift configuration; returns a result row (``na`` set when it could not run)."""
    row = {"dataset": spec.dataset, "system": "textsift", "label": label(spec), "task": task,
           "eval_split": splits.eval_split, "overrides": list(spec.overrides), "metrics": None, "na": None}
    preset = spec_preset(spec)
    if not preset.is_file():
        return {**row, "na": f"no preset {preset.relative_to(REPO_ROOT)}"}
    problem = cli_problem()
    if problem:
        return {**row, "na": problem}
    extra = [o for o in spec.overrides if not o.startswith("model.name=")]
    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "_", "-".join([spec.preset or spec.dataset, model_name(spec), *extra]))[:120]
    run_dir, n = work_dir / slug, 1
    while run_dir.exists():   # the same model twice with different overrides
        n += 1
        run_dir = work_dir / f"{slug}-{n}"
    cmd = [str(find_cli()), "train", "-c", str(preset.relative_to(REPO_ROOT)), "--run-dir", str(run_dir),
           "train.progress=false", *spec.overrides]
    env = {**os.environ, "TEXTSIFT_DATA": str(data_dir.resolve())}
    res = run_child(cmd, cwd=REPO_ROOT, env=env, timeout_s=timeout_s)
    shown = [str(Path(c).relative_to(REPO_ROOT)) if c.startswith(str(REPO_ROOT)) else c for c in cmd]
    row.update(command=" ".join(shown), wall_s=res.wall_s, peak_mib=res.peak_mib)
    if res.timed_out:
        return {**row, "na": f"timed out after {timeout_s:.0f} s"}
    if res.returncode != 0:
        return {**row, "na": f"textsift train exited {res.returncode}: {res.error_tail()}"}
    row = _read_metrics(row, run_dir / "metrics.json", splits)
    mismatch = split_mismatch(run_dir / "config.yaml", splits)
    if mismatch and row.get("metrics"):
        row["eval_split"] += f" ({mismatch})"
    return row


def split_mismatch(config_path: Path, splits: Splits) -> str | None:
    """How the resolved config's data differs from the peers' files (other files, ``data.limit``)."""
    try:
        import yaml

        data = (yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}).get("data") or {}
    except (OSError, ImportError, ValueError, AttributeError):
        return None
    problems = [f"data.limit={data['limit']}"] if data.get("limit") else []
    for split in ("train", "dev", "test"):
        ours, theirs = getattr(splits, split), data.get(split)
        if theirs and (ours is None or (REPO_ROOT / theirs).resolve() != ours.resolve()):
            problems.append(f"{split} = {theirs}")
        elif ours and not theirs:
            problems.append(f"no data.{split}")
    return ", ".join(problems) or None


def _read_metrics(row: dict, path: Path, splits: Splits) -> dict:
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return {**row, "na": f"no readable {path.name} in the run dir ({e.__class__.__name__})"}
    block = metrics.get(splits.eval_split)
    if not block and splits.eval_split == "test" and metrics.get("dev"):
        # The preset has no data.test: fall back to dev, flagged in the eval column.
        block, row["eval_split"] = metrics["dev"], "dev (no test metrics)"
    scores = _scale(block or {})
    if not scores:
        return {**row, "na": f"{path.name} has no {splits.eval_split} metrics (keys: {sorted(metrics)})"}
    seconds = metrics.get("train_seconds")
    row.update(train_s=float(seconds) if isinstance(seconds, (int, float)) else None, predict_s=None)
    return {**row, "metrics": scores}
