"""Shared by the benchmark harness and its child processes: data splits, tokenising, metrics.

Kept free of heavy imports (no fastText, no scikit-learn at module level) so that the parent
process of ``classic.py`` stays small and its own memory never counts against a system.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

REPO_ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
# Chinese: every character is a token, Latin/digit runs stay whole words (as textsift's `char` tokenizer).
ZH_TOKEN = re.compile(r"[a-z0-9]+|\S")
# English: word runs and single punctuation marks (keeps "?" for TREC and "!" for sentiment).
EN_TOKEN = re.compile(r"\w+|[^\w\s]")


def default_data_dir() -> Path:
    """``$TEXTSIFT_DATA``, else ``../shared/datasets`` relative to the repo root."""
    env = os.environ.get("TEXTSIFT_DATA")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "datasets")


@dataclass(frozen=True)
class Splits:
    """The files one dataset offers and how the benchmark uses them.

    ``tune`` is the dev file used for light tuning (C, threshold) and is None when dev is also the
    evaluation split (no test file, e.g. tnews): tuning on the split we report would be cheating.
    """

    name: str
    train: Path
    dev: Optional[Path]
    test: Optional[Path]

    @property
    def eval_split(self) -> str:
        return "test" if self.test else "dev"

    @property
    def eval(self) -> Path:
        return self.test or self.dev

    @property
    def tune(self) -> Optional[Path]:
        return self.dev if self.test else None


def find_splits(data_dir: Path, name: str) -> Splits:
    """Locate ``<data_dir>/<name>/{train,dev,test}.jsonl``.

    Raises:
        FileNotFoundError: no train file, or neither a dev nor a test file to evaluate on.
    """
    folder = data_dir / name
    paths = {s: folder / f"{s}.jsonl" for s in ("train", "dev", "test")}
    found = {s: (p if p.is_file() else None) for s, p in paths.items()}
    if found["train"] is None:
        known = sorted(p.name for p in data_dir.iterdir() if p.is_dir()) if data_dir.is_dir() else []
        raise FileNotFoundError(f"{paths['train']}: not found; expected a dataset folder with train.jsonl "
                                f"under {data_dir} (found: {', '.join(known) or 'nothing'}); "
                                f"set --data-dir or $TEXTSIFT_DATA")
    if found["dev"] is None and found["test"] is None:
        raise FileNotFoundError(f"{folder}: has train.jsonl but neither dev.jsonl nor test.jsonl to evaluate on")
    return Splits(name, found["train"], found["dev"], found["test"])


def read_jsonl(path: Path) -> tuple[list[str], list]:
    """Texts and labels; a label is a string, or a list of strings for multi-label (``labels``)."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "label" in row:
                labels.append(str(row["label"]))
            elif "labels" in row:
                labels.append([str(x) for x in row["labels"]])
            else:
                raise ValueError(f"{path}:{lineno}: expected a \"label\" or \"labels\" field, found keys {sorted(row)}")
            texts.append(str(row["text"]))
    return texts, labels


def detect_language(texts: list[str]) -> str:
    """``zh`` when CJK characters are at least a fifth of the non-space characters of a sample."""
    sample = "".join(texts[:500])
    chars = sum(not c.isspace() for c in sample) or 1
    return "zh" if len(CJK.findall(sample)) / chars >= 0.2 else "en"


def tokenize(text: str, lang: str) -> list[str]:
    """Lowercased tokens: characters (+ Latin runs) for Chinese, words and punctuation for English."""
    return (ZH_TOKEN if lang == "zh" else EN_TOKEN).findall(text.lower())


def is_multi_label(labels: list) -> bool:
    return bool(labels) and isinstance(labels[0], list)


def score(gold: list, pred: list, classes: list[str]) -> dict[str, float]:
    """accuracy + macro-F1 (single-label) or micro-F1 + macro-F1 (multi-label), as fractions.

    ``classes`` are all labels of the train and evaluation files, so that a class never predicted
    still counts as F1 = 0 in the macro average (zero_division=0).
    """
    from sklearn.metrics import accuracy_score, f1_score

    if is_multi_label(gold):
        from sklearn.preprocessing import MultiLabelBinarizer

        mlb = MultiLabelBinarizer(classes=classes)
        y, p = mlb.fit_transform(gold), mlb.transform(pred)
        return {"micro_f1": float(f1_score(y, p, average="micro", zero_division=0)),
                "macro_f1": float(f1_score(y, p, average="macro", zero_division=0))}
    return {"accuracy": float(accuracy_score(gold, pred)),
            "macro_f1": float(f1_score(gold, pred, labels=classes, average="macro", zero_division=0))}


def all_classes(*label_lists: list) -> list[str]:
    seen: set[str] = set()
    for labels in label_lists:
        for lab in labels:
            seen.update(lab if isinstance(lab, list) else [lab])
    return sorted(seen)


def task_of(splits: Splits) -> str:
    """``multi_label`` when the first train record has a ``labels`` list, else ``single_label``."""
    with open(splits.train, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                return "multi_label" if "label" not in row and "labels" in row else "single_label"
    return "single_label"


def primary_metric(task: str) -> str:
    """The metric that decides "textsift ≥ the better peer": accuracy, or micro-F1 for multi-label."""
    return "micro_f1" if task == "multi_label" else "accuracy"
