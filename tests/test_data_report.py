"""``data-report``: per-file statistics, duplicates, leakage, and the text rendering."""
from __future__ import annotations

import json

import pytest

from textsift.config.schema import DataConfig
from textsift.data.report import _fallback_tokenize, build_report, format_report
from textsift.errors import DataError


def jsonl(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def files(tmp_path):
    train = jsonl(tmp_path, "train.jsonl", [
        {"text": "今天天气很好 good day", "label": "pos"},
        {"text": "bad movie", "label": "neg"},
        {"text": "bad movie", "label": "neg"},      # duplicate, same label
        {"text": "so so", "label": "pos"},
        {"text": "so so", "label": "neg"},          # duplicate, conflicting label
        {"text": "   ", "label": "pos"},            # empty text: counted, not raised
        {"text": "a b c d e f g h i j", "label": "pos"},
    ])
    dev = jsonl(tmp_path, "dev.jsonl", [
        {"text": "bad movie", "label": "neg"},      # leaks from train
        {"text": "fresh text", "label": "neutral"},  # a label train lacks
    ])
    return train, dev


def test_fallback_tokenizer_splits_chinese_per_character():
    assert _fallback_tokenize("今天 good-day 42!") == ["今", "天", "good", "-", "day", "42", "!"]


def test_report_per_file_statistics(files):
    train, dev = files
    report = build_report([train, dev], DataConfig())
    json.dumps(report)  # the CLI's --json
    t = report["files"][0]
    assert (t["examples"], t["records"], t["task"], t["num_labels"]) == (6, 7, "single_label", 2)
    assert t["labels"] == [{"label": "neg", "count": 3, "percent": 50.0},  # ties: by name
                           {"label": "pos", "count": 3, "percent": 50.0}]
    assert t["empty_texts"] == {"count": 1, "lines": [6]}
    assert t["duplicates"]["count"] == 2 and t["duplicates"]["texts"] == 2
    assert t["duplicates"]["examples"][0] == {"text": "bad movie", "copies": 2, "lines": [2, 3]}
    assert t["conflicting_duplicates"]["count"] == 1
    assert t["conflicting_duplicates"]["examples"][0]["labels"] == [{"line": 4, "labels": ["pos"]},
                                                                     {"line": 5, "labels": ["neg"]}]
    # token lengths (fallback): 2, 2, 2, 2, 2, 10, and 6 chars + 2 words = 8
    assert t["length_tokens"]["max"] == 10 and t["length_tokens"]["p50"] == 2
    assert t["length_chars"]["max"] == 19
    assert t["suggested_max_length"] == 16  # p95 of tokens (≈10) rounded up to a multiple of 8
    assert report["files"][1]["labels_not_in_first"] == ["neutral"]


def test_report_leakage_and_warnings(files):
    train, dev = files
    report = build_report([train, dev], DataConfig())
    leak = report["leakage"][0]
    assert (leak["shared"], leak["examples"]) == (1, [{"text": "bad movie", "line_a": 2, "line_b": 1}])
    warnings = "\n".join(report["warnings"])
    assert "1 empty text (first at line 6)" in warnings
    assert "copies of 1 text carry different labels" in warnings
    assert "share 1 text (leakage" in warnings
    assert "labels not in" in warnings and "neutral" in warnings


def test_format_report_renders_every_section(files):
    text = format_report(build_report(list(files), DataConfig()))
    for needle in ("train.jsonl (jsonl) ==", "pos", "50.00%", "empty texts: 1 (lines 6)",
                   "duplicate texts: 2", "duplicates with conflicting labels: 1", "length (tokens): p50 2",
                   "suggested train.max_length: 16", "== shared texts between files ==", "warnings:"):
        assert needle in text, needle


def test_report_uses_the_given_tokenizer_and_multi_label_stats(tmp_path):
    class CharTokenizer:
        def tokenize(self, text):
            return list(text.replace(" ", ""))

    p = jsonl(tmp_path, "m.jsonl", [{"text": "ab", "labels": ["x", "y"]}, {"text": "abcd", "labels": []}])
    report = build_report([p], DataConfig(), tokenizer=CharTokenizer())
    f = report["files"][0]
    assert report["tokenizer"] == "CharTokenizer" and f["task"] == "multi_label"
    assert f["length_tokens"]["max"] == 4
    assert f["labels_per_example"] == {"mean": 1.0, "max": 2, "none": 1}
    assert report["leakage"] == []


def test_report_on_a_file_of_only_empty_texts_does_not_crash(tmp_path):
    p = jsonl(tmp_path, "e.jsonl", [{"text": "", "label": "x"}])
    report = build_report([p], DataConfig())
    assert report["files"][0]["examples"] == 0 and report["files"][0]["empty_texts"]["count"] == 1
    assert "examples: 0" in format_report(report)


def test_report_still_raises_for_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        build_report([str(tmp_path / "missing.jsonl")], DataConfig())
