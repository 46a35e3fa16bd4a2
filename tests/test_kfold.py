"""train.kfold: fold runs, out-of-fold predictions, suspect labels and the averaged-logit ensemble."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import make_texts, write_config, write_jsonl
from textsift.config.load import load_config
from textsift.engines.kfold import fold_indices, suspect_order
from textsift.engines.train_run import train_run


def _run(tmp_path, data, k=3, **train):
    cfg = write_config(tmp_path / "k.yaml", data, train={"kfold": k, "epochs": 4, **train})
    run = tmp_path / "run"
    return run, train_run(load_config(str(cfg)), run)


def test_fold_indices_hold_out_each_example_once():
    from textsift.data.readers import Example

    examples = [Example(f"t{i}", [("a", "b", "c")[i % 3]], i + 1, "x") for i in range(30)]
    folds = fold_indices(examples, 3, seed=0, multi_label=False)
    held = np.concatenate([ho for _, ho in folds])
    assert sorted(held.tolist()) == list(range(30))
    for tr, ho in folds:
        assert not set(tr) & set(ho)
        counts = [sum(examples[i].labels[0] == c for i in ho) for c in "abc"]
        assert set(counts) <= {3, 4} and sum(counts) == len(ho)  # stratified: each label 10/3 per fold
    assert [ho.tolist() for _, ho in fold_indices(examples, 3, 0, False)] == [ho.tolist() for _, ho in folds]


def test_kfold_run_oof_suspects_and_ensemble_fusion(tmp_path):
    from textsift.api import TextClassifier
    from textsift.engines.batching import predict_logits

    rows = make_texts(180, seed=1)
    flipped = [5, 40, 77, 120, 151]
    names = sorted({r["label"] for r in rows})
    for i in flipped:  # wrong labels that out-of-fold models should find
        rows[i]["label"] = names[(names.index(rows[i]["label"]) + 1) % 3]
    data = {"train": str(write_jsonl(tmp_path / "train.jsonl", rows)),
            "test": str(write_jsonl(tmp_path / "test.jsonl", make_texts(60, seed=3)))}
    run, metrics = _run(tmp_path, data, epochs=10, lr=0.03)
    assert [m["fold"] for m in metrics["folds"]] == [0, 1, 2]
    assert sum(m["n_held_out"] for m in metrics["folds"]) == 180
    assert metrics["oof"]["accuracy"] > 0.8 and metrics["test"]["accuracy"] > 0.8
    oof = [json.loads(line) for line in (run / "oof.jsonl").read_text().splitlines()]
    assert sorted(r["line"] for r in oof) == list(range(1, 181))
    suspects = [json.loads(line) for line in (run / "suspect_labels.jsonl").read_text().splitlines()]
    top = {s["line"] - 1 for s in suspects[:10]}
    assert len(top & set(flipped)) >= 4, suspects[:10]
    assert (run / "suspect_labels.csv").read_text(encoding="utf-8-sig").startswith("rank,line,text")
    assert (run / "reports" / "oof_report.txt").is_file() and (run / "reports" / "test_report.txt").is_file()

    # fusion: the ensemble's probabilities are the softmax of the mean of the folds' own logits
    clf = TextClassifier.load(run)
    texts = ["football goal match", "stock market bank", "software chip"]
    logits = []
    for i in range(3):
        fold = TextClassifier.load(run / "folds" / f"fold-{i}").bundle
        logits.append(predict_logits(fold.model, fold.encoder.encode_batch(texts, fold.max_length), 8,
                                     fold.encoder.pad_id))
    expected = torch.softmax(torch.from_numpy(np.mean(logits, 0)), -1).numpy()
    got = np.array([[p[label] for label in clf.labels] for p in clf.predict_proba(texts)])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert clf.predict(texts) == ["sports", "finance", "tech"]


def test_kfold_multi_label_and_resume_of_a_missing_fold(tmp_path, tiny_multi):
    data = {"train": tiny_multi["train"], "test": tiny_multi["test"]}
    run, metrics = _run(tmp_path, data, k=2)
    assert "micro_f1" in metrics["oof"] and metrics["oof"]["micro_f1"] > 0.5
    labels = json.loads((run / "labels.json").read_text())
    assert len(labels["thresholds"]) == 3
    shutil.rmtree(run / "folds" / "fold-1")  # as if the run had stopped before the second fold
    cfg = load_config(str(tmp_path / "k.yaml"))
    again = train_run(cfg, run, resume=True)
    assert again["oof"] == metrics["oof"] and again["test"] == metrics["test"]  # the fold retrains identically


def test_suspect_order():
    gold = np.array([0, 1, 1])
    oof = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]], dtype=np.float32)
    order, scores = suspect_order(False, gold, oof)
    assert order.tolist() == [1, 2, 0] and scores.tolist() == pytest.approx([0.9, 0.2, 0.7])
    order, _ = suspect_order(True, np.array([[1, 0], [0, 1]]), np.array([[0.9, 0.1], [0.9, 0.2]], dtype=np.float32))
    assert order.tolist() == [1, 0]


def test_kfold_needs_enough_examples(tmp_path):
    from textsift.errors import TextsiftError

    data = {"train": str(write_jsonl(tmp_path / "t.jsonl", make_texts(6, seed=1)))}
    with pytest.raises(TextsiftError, match="need at least 10 training examples"):
        _run(tmp_path, data, k=5)
