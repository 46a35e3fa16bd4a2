"""Real datasets from ../shared/datasets (TEXTSIFT_DATA), through the presets users run."""
from __future__ import annotations

import json

import pytest

from conftest import DATA
from textsift.api import TextClassifier
from textsift.cli.main import main

pytestmark = pytest.mark.skipif(not (DATA / "trec6").is_dir(), reason=f"datasets not found at {DATA}")


@pytest.fixture(autouse=True)
def _data_env(monkeypatch):
    monkeypatch.setenv("TEXTSIFT_DATA", str(DATA))


def test_trec6_preset_end_to_end(tmp_path):
    run = tmp_path / "trec6"
    assert main(["train", "-c", "trec6", "--run-dir", str(run), "train.progress=false"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.85  # published classic baselines: 88-93
    clf = TextClassifier.load(run)
    assert clf.predict(["Who wrote Hamlet ?", "How far is the moon from the earth ?"]) == ["HUM", "NUM"]


def test_thucnews_subset_chinese_end_to_end(tmp_path):
    run = tmp_path / "thuc"
    assert main(["train", "-c", "thucnews_title", "--run-dir", str(run), "data.limit=30000",
                 "tokenizer.ngram_buckets=300000", "train.progress=false"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.85 and metrics["test"]["n"] == 10000
    clf = TextClassifier.load(run)
    assert clf.predict("国足客场两球不敌日本队，出线形势严峻") == "sports"


def test_goemotions_multi_label_subset(tmp_path):
    run = tmp_path / "go"
    assert main(["train", "-c", "goemotions", "--run-dir", str(run), "data.limit=8000",
                 "model.C=0.3", "train.thresholds=per_label", "train.progress=false"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["micro_f1"] > 0.35
    labels = json.loads((run / "labels.json").read_text())
    assert labels["task"] == "multi_label" and len(labels["labels"]) == 28
    assert len(set(labels["thresholds"])) > 1  # tuned per label (the preset's own choice is one global)
