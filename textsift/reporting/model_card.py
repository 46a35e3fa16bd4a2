"""``README.md`` model card of a run directory: what was trained, on which exact data, how well, how to use.

``info`` is plain data assembled by the caller (every key optional)::

    {"title": "thucnews_title textcnn",
     "task": "single_label",
     "labels": ["体育", "财经", ...],
     "model": {"name": "textcnn", "params": {...}, "num_parameters": 1234567},
     "data": {"train": fingerprint("train.jsonl", examples=9000), "dev": ..., "test": ...},
     "config": {...resolved config...},
     "metrics": {"dev": {...}, "test": {...}},
     "training_time": 812.4,                      # seconds
     "environment": environment(),                # default: computed now
     "git_commit": git_commit(),                  # default: computed now, from the working dir
     "created": "2024-05-01T12:00:00+00:00"}      # default: now (UTC)
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import yaml

from textsift.reporting.metrics import HEADLINE

CARD_METRICS = tuple(k for k in HEADLINE if k not in ("macro_precision", "macro_recall",
                                                      "micro_precision", "micro_recall"))
CHUNK = 1 << 20

# The command lines the card shows; {run} is the run directory.
USAGE = """\
```bash
# predict: one text, or a file of texts (.txt one per line, .jsonl, .csv, .tsv)
textsift predict {run} --text "..."
textsift predict {run} --input texts.txt --output predictions.jsonl
# evaluate on a labelled file; --report-dir also writes bad cases and the confusion matrix
textsift evaluate {run} --data test.jsonl --report-dir {run}/eval{task}
```

```python
from textsift import TextClassifier

clf = TextClassifier.load("{run}")
clf.predict("...")          # a str gives one result, a list gives a list
```
"""


def fingerprint(path, examples: int | None = None) -> dict:
    """``{"path", "bytes", "sha256", "examples"}`` of a data file; sha256 over the file bytes, in 1 MiB chunks.

    Args:
        path: the data file.
        examples: number of examples the reader found (not derivable from bytes for CSV); ``None`` if unknown.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return {"path": str(path), "bytes": os.path.getsize(path), "sha256": digest.hexdigest(), "examples": examples}


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    """Versions and machine facts worth recording with a model (reads package metadata; imports no torch)."""
    from textsift import __version__

    return {"python": platform.python_version(), "torch": _version("torch"), "numpy": _version("numpy"),
            "scikit-learn": _version("scikit-learn"), "textsift": __version__,
            "platform": platform.platform(), "machine": platform.machine(), "cpu_count": os.cpu_count()}


def git_commit(path=".") -> str | None:
    """``git rev-parse HEAD`` of the repository holding ``path``; ``None`` when unavailable (never raises)."""
    try:
        done = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _duration(seconds) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(float(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _labels_section(labels: list[str]) -> list[str]:
    shown = ", ".join(f"`{label}`" for label in labels)
    if len(labels) <= 30:
        return [f"## Labels ({len(labels)})", "", shown, ""]
    return [f"## Labels ({len(labels)})", "", "<details><summary>show all</summary>", "", shown, "",
            "</details>", ""]


def _model_section(model: dict) -> list[str]:
    count = model.get("num_parameters")
    size = f"{count:,} ({count / 1e6:.2f}M)" if isinstance(count, int) else "—"
    lines = ["## Model", "", f"- name: `{model.get('name', '—')}`", f"- parameters: {size}"]
    params = model.get("params") or {}
    if params:
        lines.append("- hyperparameters: " + ", ".join(f"`{k}={json.dumps(v, ensure_ascii=False)}`"
                                                       for k, v in params.items()))
    return lines + [""]


def _data_section(data: dict) -> list[str]:
    rows = []
    for split, entry in data.items():
        entry = fingerprint(entry) if isinstance(entry, (str, os.PathLike)) else entry
        rows.append([split, f"`{entry.get('path')}`", entry.get("examples"), entry.get("bytes"),
                     f"`{entry.get('sha256')}`"])
    return ["## Data", ""] + _table(["split", "file", "examples", "bytes", "sha256"], rows) + [""]


def _metrics_section(metrics: dict) -> list[str]:
    present = {k for values in metrics.values() for k in values}
    columns = [k for k in CARD_METRICS if k in present]
    rows = [[split] + [values.get(k) for k in columns] for split, values in metrics.items()]
    # a multi-task student: each task's own row under the mean over tasks ("<task>/<metric>" keys)
    tasks = list(dict.fromkeys(k.split("/", 1)[0] for values in metrics.values() for k in values if "/" in k))
    rows += [[f"{split} {task}"] + [values.get(f"{task}/{k}") for k in columns]
             for split, values in metrics.items() for task in tasks if f"{task}/n" in values]
    return ["## Metrics", ""] + _table(["split"] + columns, rows) + [""]


def _config_section(config: dict) -> list[str]:
    plain = json.loads(json.dumps(config, default=str))  # Paths, enums → strings, safe for YAML
    text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True).rstrip()
    return ["## Resolved config", "", "```yaml", text, "```", ""]


def _environment_section(env: dict, commit: str | None, created: str, seconds) -> list[str]:
    lines = ["## Environment", "", f"- created: {created}", f"- training time: {_duration(seconds)}",
             f"- git commit: {f'`{commit}`' if commit else '— (not in a git repository)'}"]
    return lines + [f"- {key}: {_cell(value)}" for key, value in env.items()] + [""]


def write_model_card(run_dir: Path, info: dict) -> None:
    """Write ``run_dir/README.md`` from ``info`` (layout in the module docstring); missing parts are skipped."""
    run_dir = Path(run_dir)
    created = info.get("created") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    env = info.get("environment") or environment()
    commit = info["git_commit"] if "git_commit" in info else git_commit()
    lines = [f"# {info.get('title') or 'textsift model'}", "",
             f"Task: **{info.get('task', '—')}**. Trained with textsift {env.get('textsift', '')}.", ""]
    if info.get("metrics"):
        lines += _metrics_section(info["metrics"])
    if info.get("labels"):
        lines += _labels_section(list(info["labels"]))
    if info.get("model"):
        lines += _model_section(info["model"])
    if info.get("data"):
        lines += _data_section(info["data"])
    lines += ["## How to use", "", USAGE.format(run=run_dir.as_posix(), task=" --task NAME  # NAME: the file's task"
                                               if info.get("task") == "multi_task" else "")]
    if info.get("config"):
        lines += _config_section(info["config"])
    lines += _environment_section(env, commit, created, info.get("training_time"))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "README.md").write_text("\n".join(lines), encoding="utf-8")
