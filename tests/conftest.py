"""Shared fixtures: tiny synthetic datasets written to tmp files, and a quick config writer."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import torch
import yaml

# Tiny tensors are much faster on one thread, and the machine is shared: pin tests (and the CLI
# subprocesses they start, through OMP_NUM_THREADS) to one thread.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TEXTSIFT_DATA", REPO.parent / "shared" / "datasets"))

# Three well-separated topics, so a tiny model learns them in a few epochs.
TOPICS = {
    "sports": ["football", "goal", "match", "team", "score", "league", "coach", "player"],
    "finance": ["stock", "market", "bank", "price", "shares", "profit", "trade", "fund"],
    "tech": ["software", "chip", "computer", "phone", "app", "cloud", "robot", "code"],
}


def make_texts(n: int, seed: int = 0, multi: bool = False) -> list[dict]:
    rng = random.Random(seed)
    filler = ["the", "a", "today", "new", "big", "report", "says", "about"]
    rows = []
    names = sorted(TOPICS)
    for i in range(n):
        if multi:
            labels = sorted(rng.sample(names, rng.choice([1, 1, 2])))
        else:
            labels = [names[i % len(names)]]
        words = [w for lab in labels for w in rng.sample(TOPICS[lab], 3)] + rng.sample(filler, 3)
        rng.shuffle(words)
        text = " ".join(words)
        rows.append({"text": text, "labels": labels} if multi else {"text": text, "label": labels[0]})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def tiny_data(tmp_path):
    """train/dev/test JSONL files of a 3-class task."""
    return {split: str(write_jsonl(tmp_path / f"{split}.jsonl", make_texts(n, seed)))
            for split, n, seed in (("train", 240, 1), ("dev", 60, 2), ("test", 60, 3))}


@pytest.fixture
def tiny_multi(tmp_path):
    return {split: str(write_jsonl(tmp_path / f"m{split}.jsonl", make_texts(n, seed, multi=True)))
            for split, n, seed in (("train", 300, 1), ("dev", 80, 2), ("test", 80, 3))}


def write_config(path: Path, data: dict, model_name: str = "fasttext", **sections) -> Path:
    """A small fast config; each keyword updates one section (``train={"epochs": 2}``)."""
    cfg = {"data": data, "model": {"name": model_name, "embedding_dim": 16},
           "tokenizer": {"name": "word"},
           "train": {"epochs": 3, "batch_size": 16, "lr": 0.01, "progress": False, "max_length": 32}}
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value) if isinstance(value, dict) else cfg.__setitem__(key, value)
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path
