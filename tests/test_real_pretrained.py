"""Real pretrained weights: MiniLM-L6 and the Chinese BERT vocabulary (fetched by `make assets` into
TEXTSIFT_ASSETS) and the Tencent character vectors (always in ../shared/pretrained).

Tests that need a fetched asset skip, naming the command that fetches it; `.ci/run` fetches them."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import DATA, REPO, write_jsonl
from textsift.api import TextClassifier
from textsift.cli.main import main

ASSETS = Path(os.environ.get("TEXTSIFT_ASSETS", Path.home() / ".cache" / "textsift-assets"))
PRETRAINED = Path(os.environ.get("TEXTSIFT_PRETRAINED", REPO.parent / "shared" / "pretrained"))
MINILM, ZH_VOCAB = ASSETS / "minilm-l6", ASSETS / "bert-chinese-vocab" / "vocab.txt"
FETCH = "fetch it with `make assets` (../shared/pretrained/get-pretrained.sh)"

pytestmark = pytest.mark.skipif(not (DATA / "trec6").is_dir(), reason=f"datasets not found at {DATA}")


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("TEXTSIFT_DATA", str(DATA))
    monkeypatch.setenv("TEXTSIFT_ASSETS", str(ASSETS))
    monkeypatch.setenv("TEXTSIFT_PRETRAINED", str(PRETRAINED))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.skipif(not (MINILM / "model.safetensors").is_file(), reason=f"MiniLM-L6 not in {ASSETS}; {FETCH}")
def test_minilm_fine_tunes_on_trec6_subset(tmp_path):
    """The preset with the real encoder, on 800 questions for one epoch: far above chance (6 classes)."""
    run = tmp_path / "minilm"
    assert main(["train", "-c", "trec6_minilm", "--run-dir", str(run), "data.limit=800", "train.epochs=2",
                 "train.max_length=32", "train.lr=1e-4", "train.progress=false", "report.plots=false"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.6
    assert "bf16" in (run / "train.log").read_text() or "fp32" in (run / "train.log").read_text()
    clf = TextClassifier.load(run)
    assert clf.predict("How many feet are in a mile ?") == "NUM"


@pytest.mark.skipif(not ZH_VOCAB.is_file(), reason=f"Chinese BERT vocab not in {ASSETS}; {FETCH}")
def test_random_chinese_bert_on_the_real_vocab(tmp_path):
    """No Chinese encoder can be had here: a tiny random BERT with the real 21,128-entry WordPiece vocab
    goes through training, saving and prediction on THUCNews titles."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path / "zh-bert"
    tok = BertTokenizer(vocab=str(ZH_VOCAB))  # transformers 5: `vocab` takes the vocab.txt path
    tok.save_pretrained(str(folder))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(str(folder))
    ids = tok("国足客场两球不敌日本队", add_special_tokens=False)["input_ids"]
    assert len(ids) == 11 and tok.unk_token_id not in ids  # one token per character, all known
    rows = [json.loads(line) for line in (DATA / "thucnews_title" / "train.jsonl").open(encoding="utf-8")][:1500]
    data = {"train": str(write_jsonl(tmp_path / "train.jsonl", rows[:1200])),
            "dev": str(write_jsonl(tmp_path / "dev.jsonl", rows[1200:]))}
    config = tmp_path / "zh.yaml"
    config.write_text(json.dumps({"data": data, "model": {"name": "hf", "pretrained": str(folder), "pooling": "mean"},
                                  "train": {"epochs": 2, "batch_size": 32, "lr": 2e-3, "max_length": 48,
                                            "progress": False}}), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "-c", str(config), "--run-dir", str(run)]) == 0
    labels = {r["label"] for r in rows}
    assert TextClassifier.load(run).predict("央行宣布下调存款准备金率") in labels


def test_tencent_char_vectors_cover_thucnews(tmp_path):
    vectors = PRETRAINED / "tencent-zh-char-200d" / "vectors.txt"
    if not vectors.is_file():
        pytest.skip(f"{vectors} not found")
    run = tmp_path / "textcnn"
    assert main(["train", "-c", "thucnews_title_textcnn_vectors", "--run-dir", str(run), "data.limit=4000",
                 "train.epochs=1", "train.progress=false", "report.plots=false"]) == 0
    meta = json.loads((run / "model.json").read_text())
    cov = meta["vectors_coverage"]
    assert meta["params"]["embedding_dim"] == 200
    # the vocabulary also holds Latin words and numbers the character file lacks; running text is covered
    assert cov["vocab_coverage"] > 0.5 and cov["token_coverage"] > 0.9
    assert json.loads((run / "metrics.json").read_text())["test"]["accuracy"] > 0.5
