"""Metrics against hand-computed cases and sklearn; report files, bad cases, PNGs and the model card."""
from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from textsift.reporting import (classification_report, confusion, environment, fingerprint, format_report,
                                git_commit, multi_label_metrics, plot_confusion, plot_training_curves,
                                single_label_metrics, tune_thresholds, write_model_card, write_split_reports)
from textsift.reporting import model_card

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LABELS = ["体育", "财经", "科技"]


def assert_png(path, min_bytes=5000):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > min_bytes


# ---------------------------------------------------------------- metrics

def test_single_label_metrics_hand_computed():
    m = single_label_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), LABELS)
    # per class F1: 体育 2/3 (P=1, R=1/2), 财经 2/3 (P=1/2, R=1), 科技 1
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["micro_f1"] == pytest.approx(0.75)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["weighted_f1"] == pytest.approx((2 * 2 / 3 + 2 / 3 + 1) / 4)
    assert m["macro_precision"] == pytest.approx(2.5 / 3)
    assert m["macro_recall"] == pytest.approx(2.5 / 3)
    assert m["n"] == 4 and type(m["n"]) is int
    assert all(type(v) is float for k, v in m.items() if k != "n")


def test_single_label_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    m = single_label_metrics(y_true, y_pred, list("abcde"))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="weighted"))
    assert m["macro_recall"] == pytest.approx(skm.recall_score(y_true, y_pred, average="macro"))


def test_multi_label_metrics_hand_computed():
    y_true = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    y_pred = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1]])
    m = multi_label_metrics(y_true, y_pred, LABELS)
    assert m["hamming_loss"] == pytest.approx(3 / 9)          # 3 wrong cells of 9
    assert m["subset_accuracy"] == pytest.approx(1 / 3)       # only row 2 exact
    assert m["accuracy"] == m["subset_accuracy"]
    assert m["example_f1"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert m["micro_precision"] == pytest.approx(3 / 4)       # tp=3, fp=1, fn=2
    assert m["micro_recall"] == pytest.approx(3 / 5)
    assert m["micro_f1"] == pytest.approx(6 / 9)
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert m["n"] == 3
    json.dumps(m)


def test_multi_label_zero_division_is_silent_zero():
    y = np.array([[1, 0], [1, 0]])  # label 1 never gold, never predicted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = multi_label_metrics(y, y, ["a", "b"])
    assert m["macro_f1"] == pytest.approx(0.5)
    assert m["micro_f1"] == pytest.approx(1.0)


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="outside 0..2"):
        single_label_metrics(np.array([0, 3]), np.array([0, 1]), LABELS)
    with pytest.raises(ValueError, match="differ in length"):
        single_label_metrics(np.array([0, 1]), np.array([0]), LABELS)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        multi_label_metrics(np.zeros((2, 2)), np.zeros((2, 2)), LABELS)


def test_classification_report_lists_every_label_and_matches_sklearn():
    y_true, y_pred = np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])  # label 2 absent
    report = classification_report(y_true, y_pred, LABELS, multi_label=False)
    assert list(report)[:3] == LABELS
    assert report["科技"] == {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
    ref = skm.classification_report(y_true, y_pred, labels=[0, 1, 2], output_dict=True, zero_division=0)
    for i, name in enumerate(LABELS):
        assert report[name]["f1-score"] == pytest.approx(ref[str(i)]["f1-score"])
    metrics = single_label_metrics(y_true, y_pred, LABELS)
    assert report["macro avg"]["f1-score"] == pytest.approx(metrics["macro_f1"])
    assert report["micro avg"]["f1-score"] == pytest.approx(metrics["micro_f1"])
    json.dumps(report)


def test_classification_report_multi_label_has_samples_average():
    y = np.array([[1, 0, 1], [0, 1, 0]])
    report = classification_report(y, y, LABELS, multi_label=True)
    assert report["samples avg"]["f1-score"] == pytest.approx(1.0)
    assert report["体育"]["support"] == 1


def test_format_report_lists_every_label_then_averages_then_metrics():
    y_true, y_pred = np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2])
    metrics = single_label_metrics(y_true, y_pred, LABELS)
    text = format_report(classification_report(y_true, y_pred, LABELS, False), metrics, "dev split")
    assert text.startswith("dev split\n")
    positions = [text.index(name) for name in LABELS + ["macro avg", "weighted avg", "accuracy  "]]
    assert positions == sorted(positions)
    assert "0.7500" in text and "0.7778" in text


def test_confusion_counts():
    assert confusion(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 4) == [
        [1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


# ---------------------------------------------------------------- thresholds

def test_tune_thresholds_separates_and_keeps_default_without_positives():
    y = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 0, 0]])
    probs = np.array([[0.20, 0.9, 0.9], [0.25, 0.8, 0.2], [0.10, 0.7, 0.8], [0.05, 0.6, 0.1]])
    t = tune_thresholds(y, probs)
    # label 0: positives at 0.20/0.25, negatives at 0.05/0.10 → any t in (0.10, 0.20]; closest to 0.5 is 0.20
    assert t[0] == pytest.approx(0.20)
    assert ((probs[:, 0] >= t[0]) == y[:, 0].astype(bool)).all()
    assert t[1] == 0.5                       # no positives
    assert t[2] == pytest.approx(0.5)        # 0.2 < t <= 0.8 all give F1=1: tie → 0.5
    assert tune_thresholds(y, probs, grid=[0.3, 0.15])[0] == pytest.approx(0.15)


def test_tune_thresholds_is_optimal_on_random_data():
    rng = np.random.default_rng(1)
    y = (rng.random((60, 3)) < 0.3).astype(int)
    probs = np.clip(y * 0.3 + rng.random((60, 3)) * 0.7, 0, 1)
    t = tune_thresholds(y, probs)
    for j in range(3):
        best = max(skm.f1_score(y[:, j], probs[:, j] >= c, zero_division=0) for c in np.unique(probs[:, j]))
        assert skm.f1_score(y[:, j], probs[:, j] >= t[j]) == pytest.approx(best)


# ---------------------------------------------------------------- split reports

def test_write_split_reports_single_label(tmp_path):
    texts = ["北京队夺冠", 'a "quoted", text\nwith newline', "股市大涨", "新手机发布", "足球比赛"]
    y_true = np.array([0, 1, 1, 2, 0])
    y_pred = np.array([0, 0, 2, 2, 1])  # rows 1, 2, 4 wrong
    probs = np.array([[.8, .1, .1], [.6, .3, .1], [.1, .2, .7], [.1, .1, .8], [.3, .5, .2]])
    metrics = write_split_reports(tmp_path, "dev", texts, y_true, y_pred, probs, LABELS,
                                  multi_label=False, bad_cases=10, plots=True)
    assert metrics == single_label_metrics(y_true, y_pred, LABELS)
    for name in ("report.txt", "report.json", "badcases.csv", "badcases.jsonl", "confusion.json", "confusion.png"):
        assert (tmp_path / f"dev_{name}").is_file(), name
    assert json.loads((tmp_path / "dev_report.json").read_text("utf-8"))["metrics"] == metrics
    assert json.loads((tmp_path / "dev_confusion.json").read_text("utf-8"))["matrix"] == confusion(y_true, y_pred, 3)
    assert "科技" in (tmp_path / "dev_report.txt").read_text("utf-8")
    assert_png(tmp_path / "dev_confusion.png")

    rows = [json.loads(line) for line in (tmp_path / "dev_badcases.jsonl").read_text("utf-8").splitlines()]
    assert [r["index"] for r in rows] == [2, 1, 4]  # confidence 0.7, 0.6, 0.5: most confident first
    assert rows[0] == {"index": 2, "text": "股市大涨", "gold": "财经", "pred": "科技", "pred_prob": 0.7, "gold_prob": 0.2}

    raw = (tmp_path / "dev_badcases.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    with open(tmp_path / "dev_badcases.csv", encoding="utf-8-sig", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["text"] for r in table] == [texts[2], texts[1], texts[4]]
    assert table[0]["gold"] == "财经" and float(table[0]["pred_prob"]) == 0.7


def test_write_split_reports_limits_bad_cases_and_skips_plots(tmp_path):
    y_true, y_pred = np.array([0, 1, 2, 0]), np.array([1, 2, 0, 0])
    probs = np.array([[.2, .5, .3], [.1, .2, .7], [.9, .05, .05], [1, 0, 0]])
    write_split_reports(tmp_path, "test", list("abcd"), y_true, y_pred, probs, LABELS, False, 2, plots=False)
    rows = (tmp_path / "test_badcases.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(r)["index"] for r in rows] == [2, 1]
    assert not (tmp_path / "test_confusion.png").exists()


def test_write_split_reports_multi_label(tmp_path):
    y_true = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    y_pred = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 1]])
    probs = np.array([[.9, .1, .4], [.2, .8, .1], [.7, .45, .95]])
    metrics = write_split_reports(tmp_path, "dev", ["一", "二", "三"], y_true, y_pred, probs, LABELS,
                                  multi_label=True, bad_cases=10, plots=True)
    assert metrics == multi_label_metrics(y_true, y_pred, LABELS)
    rows = [json.loads(line) for line in (tmp_path / "dev_badcases.jsonl").read_text("utf-8").splitlines()]
    assert [r["index"] for r in rows] == [2, 0]  # row 2: extra 科技 at 0.95; row 0: missed 科技 at 0.4 → 0.6
    assert rows[0]["gold"] == ["体育", "财经"] and rows[0]["pred"] == ["体育", "科技"]
    assert rows[0]["missing"] == ["财经"] and rows[0]["extra"] == ["科技"]
    assert rows[0]["confidence"] == 0.95 and rows[1]["confidence"] == 0.6
    assert rows[0]["gold_probs"] == {"体育": 0.7, "财经": 0.45}
    with open(tmp_path / "dev_badcases.csv", encoding="utf-8-sig", newline="") as f:
        first = next(csv.DictReader(f))
    assert first["gold"] == "体育|财经" and first["text"] == "三"
    assert not (tmp_path / "dev_confusion.json").exists()


# ---------------------------------------------------------------- plots

def test_plot_training_curves_png(tmp_path):
    history = [{"epoch": e, "step": 10 * e, "train_loss": 1 / e, "lr": 1e-3 / e,
                "dev_accuracy": 0.5 + e / 10, "dev_macro_f1": 0.4 + e / 10} for e in range(1, 4)]
    history[0].pop("dev_macro_f1")  # rows may miss keys
    plot_training_curves(history, tmp_path / "curves.png")
    assert_png(tmp_path / "curves.png")
    plot_training_curves([], tmp_path / "empty.png")
    assert_png(tmp_path / "empty.png", min_bytes=1000)


def test_plot_confusion_many_classes_and_unnormalised(tmp_path):
    n = 40  # above the annotation limit
    matrix = np.eye(n, dtype=int) * 5 + 1
    matrix[3] = 0  # a class absent from the split must not give NaNs
    plot_confusion(matrix, [f"class_{i}" for i in range(n)], tmp_path / "big.png")
    plot_confusion([[3, 1], [0, 2]], ["正面", "负面"], tmp_path / "counts.png", normalize=False)
    assert_png(tmp_path / "big.png")
    assert_png(tmp_path / "counts.png")
    with pytest.raises(ValueError, match=r"expected shape \(3, 3\)"):
        plot_confusion([[1, 0], [0, 1]], LABELS, tmp_path / "bad.png")


# ---------------------------------------------------------------- model card

def test_fingerprint_hashes_file_bytes_in_chunks(tmp_path, monkeypatch):
    path = tmp_path / "train.jsonl"
    path.write_bytes(('{"text": "你好", "label": "a"}\n' * 50).encode("utf-8"))
    monkeypatch.setattr(model_card, "CHUNK", 7)  # force many chunks
    fp = fingerprint(path, examples=50)
    assert fp == {"path": str(path), "bytes": path.stat().st_size,
                  "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "examples": 50}


def test_model_card_contents(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "x", "label": "体育"}\n', encoding="utf-8")
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    info = {"title": "demo run", "task": "single_label", "labels": LABELS,
            "model": {"name": "textcnn", "params": {"kernel_sizes": [2, 3]}, "num_parameters": 1234567},
            "data": {"train": fingerprint(data, examples=1), "dev": str(data)},
            "config": {"model": {"name": "textcnn"}, "train": {"lr": 0.001}},
            "metrics": {"dev": {"accuracy": 0.8125, "macro_f1": 0.75, "n": 16}, "test": {"accuracy": 0.5}},
            "training_time": 3725.0}
    run = tmp_path / "run"
    write_model_card(run, info)
    card = (run / "README.md").read_text("utf-8")
    assert card.startswith("# demo run")
    assert card.count(sha) == 2 and "0.8125" in card and "0.7500" in card
    assert "| dev | 0.8125 | 0.7500 | 16 |" in card
    assert "1,234,567" in card and "`textcnn`" in card and "`体育`" in card
    assert "```yaml\nmodel:\n  name: textcnn" in card
    assert "1h 02m 05s" in card and "textsift predict" in card and "TextClassifier.load" in card
    assert environment()["python"] in card


def test_git_commit(tmp_path):
    assert git_commit(tmp_path) is None            # not a repository
    assert git_commit(tmp_path / "missing") is None
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(git + ["init", "-q"], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run(git + ["add", "f"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "m"], check=True)
    commit = git_commit(tmp_path)
    assert commit is not None and len(commit) == 40


def test_environment_keys():
    env = environment()
    assert {"python", "torch", "textsift", "platform", "cpu_count"} <= set(env)
    json.dumps(env)


def test_global_threshold_maximises_micro_f1():
    from textsift.reporting.metrics import tune_global_threshold

    y = np.array([[1, 0], [0, 1], [0, 0], [1, 1]])
    probs = np.array([[0.35, 0.1], [0.2, 0.4], [0.3, 0.05], [0.9, 0.38]])
    t = tune_global_threshold(y, probs)
    assert 0.30 < t <= 0.35  # every positive is >= 0.35, the best negative is 0.30
    assert tune_global_threshold(np.zeros((2, 2)), probs[:2]) == 0.5


def test_bad_case_csv_does_not_let_texts_run_as_formulas(tmp_path):
    texts = ["=HYPERLINK(\"http://x\")", "normal text"]
    write_split_reports(tmp_path, "dev", texts, np.array([0, 0]), np.array([1, 1]),
                        np.array([[0.2, 0.8], [0.3, 0.7]]), ["a", "b"], False, 10, False)
    rows = list(csv.DictReader((tmp_path / "dev_badcases.csv").open(encoding="utf-8-sig")))
    assert rows[0]["text"] == "'=HYPERLINK(\"http://x\")" and rows[1]["text"] == "normal text"
    raw = [json.loads(line) for line in (tmp_path / "dev_badcases.jsonl").read_text().splitlines()]
    assert raw[0]["text"] == texts[0]  # the JSON Lines copy is untouched
