"""Metrics against hand-computed values, threshold tuning, and every report file of a split."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from textsift.reporting.metrics import (classification_report, format_report, multi_label_metrics,
                                        single_label_metrics, tune_thresholds)
from textsift.reporting.model_card import fingerprint, write_model_card
from textsift.reporting.plots import plot_training_curves
from textsift.reporting.reports import write_split_reports

PNG = b"\x89PNG\r\n\x1a\n"


def test_single_label_metrics_by_hand():
    m = single_label_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(0.75) and m["micro_f1"] == pytest.approx(0.75)
    # per-class F1: a = 2/3 (p 1, r .5), b = 2/3 (p .5, r 1), c = 1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["n"] == 4


def test_multi_label_metrics_by_hand():
    y = np.array([[1, 0, 1], [0, 1, 0]])
    p = np.array([[1, 0, 0], [0, 1, 1]])
    m = multi_label_metrics(y, p, ["a", "b", "c"])
    assert m["subset_accuracy"] == 0.0 and m["accuracy"] == 0.0
    assert m["hamming_loss"] == pytest.approx(2 / 6)
    # example F1: row 1 = 2*1/(1+2) = 2/3, row 2 = 2*1/(2+1) = 2/3
    assert m["example_f1"] == pytest.approx(2 / 3)
    # micro: tp 2, fp 1, fn 1 -> 2/3
    assert m["micro_f1"] == pytest.approx(2 / 3)


def test_thresholds_separate_a_separable_label_and_default_without_positives():
    y = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    probs = np.array([[0.3, 0.9], [0.25, 0.1], [0.1, 0.2], [0.05, 0.6]])
    t = tune_thresholds(y, probs)
    assert 0.1 < t[0] <= 0.25  # 0.5 would miss both positives
    assert t[1] == 0.5  # no positives: keep the default


def test_split_reports_single_label(tmp_path):
    texts = ["体育新闻", "股市大涨", "新款手机", "足球比赛"]
    y, pred = np.array([0, 1, 2, 0]), np.array([0, 2, 2, 1])
    probs = np.array([[0.9, 0.05, 0.05], [0.1, 0.3, 0.6], [0.1, 0.1, 0.8], [0.2, 0.7, 0.1]])
    labels = ["sports", "finance", "tech"]
    metrics = write_split_reports(tmp_path, "test", texts, y, pred, probs, labels, False, 10, True)
    assert metrics["accuracy"] == pytest.approx(0.5)
    bad = [json.loads(line) for line in (tmp_path / "test_badcases.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [b["text"] for b in bad] == ["足球比赛", "股市大涨"]  # exactly the mistakes, most confident first
    assert bad[0]["gold"] == "sports" and bad[0]["pred"] == "finance"
    raw = (tmp_path / "test_badcases.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens UTF-8 Chinese correctly
    rows = list(csv.DictReader((tmp_path / "test_badcases.csv").open(encoding="utf-8-sig")))
    assert rows[0]["text"] == "足球比赛"
    assert (tmp_path / "test_confusion.png").read_bytes().startswith(PNG)
    conf = json.loads((tmp_path / "test_confusion.json").read_text())
    assert conf["matrix"] == [[1, 1, 0], [0, 0, 1], [0, 0, 1]]
    text = (tmp_path / "test_report.txt").read_text(encoding="utf-8")
    assert all(label in text for label in labels)


def test_split_reports_multi_label(tmp_path):
    y = np.array([[1, 0], [0, 1], [1, 1]])
    pred = np.array([[1, 0], [1, 1], [1, 1]])
    probs = np.array([[0.9, 0.1], [0.8, 0.7], [0.9, 0.9]])
    metrics = write_split_reports(tmp_path, "dev", ["a", "b", "c"], y, pred, probs, ["x", "y"], True, 10, True)
    assert metrics["subset_accuracy"] == pytest.approx(2 / 3)
    bad = [json.loads(line) for line in (tmp_path / "dev_badcases.jsonl").read_text().splitlines()]
    assert [b["text"] for b in bad] == ["b"]
    assert not (tmp_path / "dev_confusion.png").exists()


def test_format_report_lists_every_label():
    y, p = np.array([0, 1, 2, 2]), np.array([0, 1, 1, 2])
    labels = ["体育", "finance", "tech"]
    report = classification_report(y, p, labels, multi_label=False)
    text = format_report(report, single_label_metrics(y, p, labels), "title")
    assert all(label in text for label in labels) and "macro avg" in text


def test_curves_and_model_card(tmp_path):
    history = [{"epoch": e, "step": 10 * e, "train_loss": 1 / e, "lr": 0.001, "dev_accuracy": 0.5 + e / 10,
                "dev_macro_f1": 0.4 + e / 10} for e in range(1, 4)]
    plot_training_curves(history, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG)
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "a", "label": "x"}\n', encoding="utf-8")
    fp = fingerprint(data, examples=1)
    import hashlib
    assert fp["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    write_model_card(tmp_path, {"task": "single_label", "labels": ["x", "y"],
                                "model": {"name": "textcnn", "params": {"num_filters": 8}, "num_parameters": 1234},
                                "data": {"train": fp}, "metrics": {"test": {"accuracy": 0.8765, "macro_f1": 0.8}}})
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert fp["sha256"] in card and "0.8765" in card and "textcnn" in card
