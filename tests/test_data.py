"""Data layer: readers, task inference, dev split, label checks — and every error message, pinned."""
from __future__ import annotations

import json
import logging

import pytest

from textsift.config.schema import DataConfig
from textsift.data import (
    Example, check_known_labels, check_train_labels, iter_texts, load_split, read_examples, stratified_split,
)
from textsift.errors import DataError, TextsiftError


def jsonl(tmp_path, rows, name="train.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return str(path)


def text_file(tmp_path, name, content, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return str(path)


CFG = DataConfig()


# ------------------------------------------------------------------------------------------ reading

def test_jsonl_single_label_strips_and_converts_ints(tmp_path):
    p = jsonl(tmp_path, [{"text": "  hello ", "label": 1}, {"text": "世界", "label": "0"}, "", "  "])
    examples, task = load_split(p, CFG)
    assert task == "single_label"
    assert examples == [Example("hello", ["1"], 1, p), Example("世界", ["0"], 2, p)]


def test_bom_and_crlf_are_accepted(tmp_path):
    p = text_file(tmp_path, "a.jsonl", '\ufeff{"text": "a", "label": "x"}\r\n{"text": "b", "label": "y"}\r\n')
    assert [(e.text, e.labels) for e in read_examples(p, CFG)] == [("a", ["x"]), ("b", ["y"])]
    c = text_file(tmp_path, "a.csv", "\ufefftext,label\r\na,x\r\n")
    assert read_examples(c, CFG)[0].labels == ["x"]


def test_csv_quoted_multiline_record_reports_its_start_line(tmp_path):
    p = text_file(tmp_path, "d.csv", 'label,text\npos,"one, with comma"\nneg,"two\nlines"\npos,three\n')
    examples = read_examples(p, CFG)
    assert [(e.text, e.line) for e in examples] == [("one, with comma", 2), ("two\nlines", 3), ("three", 5)]


def test_tsv_keeps_quotes_as_text(tmp_path):
    p = text_file(tmp_path, "d.tsv", 'text\tlabel\nhe said "hi\tpos\nok\tneg\n')
    assert [e.text for e in read_examples(p, CFG)] == ['he said "hi', "ok"]


def test_format_override_and_several_text_fields(tmp_path):
    p = text_file(tmp_path, "data.txt", "title,body,y\nT1,B1,a\nT2,,b\n")
    cfg = DataConfig(format="csv", text_field=["title", "body"], text_joiner=" | ", label_field="y")
    assert [e.text for e in read_examples(p, cfg)] == ["T1 | B1", "T2"]


def test_limit_keeps_first_examples(tmp_path):
    p = jsonl(tmp_path, [{"text": f"t{i}", "label": str(i % 2)} for i in range(10)])
    assert [e.text for e in read_examples(p, CFG, limit=3)] == ["t0", "t1", "t2"]


def test_unlabelled_records_when_labels_not_required(tmp_path):
    p = jsonl(tmp_path, [{"text": "a"}, {"text": "b", "label": "x"}])
    assert [e.labels for e in read_examples(p, CFG, task="single_label", require_labels=False)] == [[], ["x"]]


def test_iter_texts_streams_jsonl_csv_and_txt(tmp_path):
    p = jsonl(tmp_path, [{"text": " a "}, {"text": ""}, {"text": "c", "label": "x"}])
    assert list(iter_texts(p, CFG)) == [(1, "a"), (2, ""), (3, "c")]
    t = text_file(tmp_path, "in.txt", "first\n\n second \n")
    assert list(iter_texts(t, CFG)) == [(1, "first"), (3, "second")]
    c = text_file(tmp_path, "in.csv", "id,text\n1,hello\n")
    assert list(iter_texts(c, CFG)) == [(2, "hello")]


# ------------------------------------------------------------------------------------------ tasks

def test_list_labels_infer_multi_label(tmp_path):
    p = jsonl(tmp_path, [{"text": "a", "labels": ["x", "y", "x"]}, {"text": "b", "labels": []},
                         {"text": "c", "labels": "y,z"}])
    examples, task = load_split(p, CFG)
    assert task == "multi_label"
    assert [e.labels for e in examples] == [["x", "y"], [], ["y", "z"]]


def test_paths_with_ancestors_infer_hierarchical_and_fill_ancestors(tmp_path):
    p = jsonl(tmp_path, [{"text": "a", "labels": ["A", "A/B"]}, {"text": "b", "labels": ["A/B/C"]},
                         {"text": "c", "labels": ["D"]}])
    examples, task = load_split(p, CFG)
    assert task == "hierarchical"
    assert examples[1].labels == ["A", "A/B", "A/B/C"]


def test_paths_without_ancestors_stay_multi_label_unless_task_given(tmp_path, caplog):
    p = jsonl(tmp_path, [{"text": "a", "labels": ["A/B"]}, {"text": "b", "labels": ["C/D"]}])
    with caplog.at_level(logging.WARNING, logger="textsift"):
        assert load_split(p, CFG)[1] == "multi_label"
    assert "set task: hierarchical" in caplog.text
    assert read_examples(p, CFG, task="hierarchical")[0].labels == ["A", "A/B"]


def test_string_labels_split_under_explicit_multi_label(tmp_path):
    p = text_file(tmp_path, "m.csv", 'text,labels\nhi,"a, b"\nyo,\n')
    assert [e.labels for e in read_examples(p, CFG, task="multi_label")] == [["a", "b"], []]
    assert load_split(p, CFG.model_copy(update={"empty_text": "skip"}), "hierarchical")[0][0].labels == ["a", "b"]


# ------------------------------------------------------------------------------------------ errors

def test_missing_file_suggests_close_name(tmp_path):
    jsonl(tmp_path, [{"text": "a", "label": "x"}], name="train.jsonl")
    with pytest.raises(DataError, match=r"trian\.jsonl: file not found; did you mean 'train\.jsonl'\?; check the path"):
        read_examples(str(tmp_path / "trian.jsonl"), CFG)
    with pytest.raises(TextsiftError, match=r"file not found; directory .* does not exist"):
        read_examples(str(tmp_path / "nope" / "train.jsonl"), CFG)


def test_directory_instead_of_file(tmp_path):
    jsonl(tmp_path, [{"text": "a", "label": "x"}])
    with pytest.raises(DataError, match=r"expected a data file, found a directory containing train\.jsonl"):
        read_examples(str(tmp_path), CFG)


def test_unknown_extension_lists_supported_formats(tmp_path):
    p = text_file(tmp_path, "data.xlsx", "x")
    with pytest.raises(DataError, match=r"found '\.xlsx'; rename the file or set data\.format to jsonl, csv or tsv"):
        read_examples(p, CFG)
    t = text_file(tmp_path, "data.txt", "x")
    with pytest.raises(DataError, match=r"a \.txt file has no labels"):
        read_examples(t, CFG)


@pytest.mark.parametrize("name,content,found", [
    ("e.jsonl", "", r"an empty file \(0 records\)"),
    ("e.jsonl", "\n  \n", r"an empty file \(0 records\)"),
    ("e.csv", "text,label\n", "only a header row"),
])
def test_empty_file(tmp_path, name, content, found):
    with pytest.raises(DataError, match=rf"expected labelled records, found {found}; check that the right file"):
        read_examples(text_file(tmp_path, name, content), CFG)


def test_malformed_json_line(tmp_path):
    p = jsonl(tmp_path, [{"text": "a", "label": "x"}, '{"text": "b", "label": "y"', {"text": "c", "label": "z"}])
    with pytest.raises(DataError, match=r"train\.jsonl:2: invalid JSON \(Expecting ',' delimiter at column \d+\); "
                                        r"expected one JSON object per line; fix or remove this line"):
        read_examples(p, CFG)
    trailing = jsonl(tmp_path, ['{"text": "a", "label": "x"} x'], name="t.jsonl")
    with pytest.raises(DataError, match=r"t\.jsonl:1: invalid JSON \(Extra data"):
        read_examples(trailing, CFG)


def test_json_line_not_an_object(tmp_path):
    p = jsonl(tmp_path, [{"text": "a", "label": "x"}, '["b", "y"]'])
    with pytest.raises(DataError, match=r':2: expected a JSON object like \{"text": \.\.\., "label": \.\.\.\}, '
                                        r"found a list; write one object per line"):
        read_examples(p, CFG)


def test_json_array_file_gets_a_jq_hint(tmp_path):
    p = text_file(tmp_path, "d.json", '[\n{"text": "a", "label": "x"}\n]\n')
    with pytest.raises(DataError, match=r"d\.json:1: invalid JSON .*looks like a JSON array.*jq -c"):
        read_examples(p, CFG)


def test_missing_text_field_names_fields_and_config_key(tmp_path):
    p = jsonl(tmp_path, [{"txt": "a", "label": "x"}])
    with pytest.raises(DataError, match=r'train\.jsonl:1: expected a "text" field, found keys \["txt", "label"\]; '
                                        r"did you mean 'txt'\?; set data\.text_field"):
        read_examples(p, CFG)


def test_missing_label_field_names_fields_and_config_key(tmp_path):
    p = jsonl(tmp_path, [{"text": "a", "label": "x"}, {"text": "b", "lable": "y"}])
    with pytest.raises(DataError, match=r'train\.jsonl:2: expected a "label" or "labels" field, found keys '
                                        r"\[\"text\", \"lable\"\]; did you mean 'lable'\?; set data\.label_field"):
        read_examples(p, CFG)
    with pytest.raises(DataError, match=r'expected a "y" field'):
        read_examples(p, DataConfig(label_field="y"))


def test_csv_missing_column_is_reported_at_the_header(tmp_path):
    p = text_file(tmp_path, "d.csv", "\nsentence,label\na,x\n")
    with pytest.raises(DataError, match=r'd\.csv:2: expected a "text" field, found keys \["sentence", "label"\]'):
        read_examples(p, CFG)


def test_empty_text_is_an_error_by_default(tmp_path):
    p = jsonl(tmp_path, [{"text": "a", "label": "x"}, {"text": "  ", "label": "x"}, {"text": None, "label": "y"}])
    with pytest.raises(DataError, match=r"train\.jsonl:2: expected a non-empty text, found an empty one "
                                        r"\(2 of 3 records have an empty text, the first on this line\); "
                                        r"remove them or set data\.empty_text=skip"):
        read_examples(p, CFG)


def test_empty_text_skip_drops_and_warns(tmp_path, caplog):
    p = jsonl(tmp_path, [{"text": "a", "label": "x"}, {"text": "", "label": "x"}, {"text": "c", "label": "y"}])
    with caplog.at_level(logging.WARNING, logger="textsift"):
        examples = read_examples(p, DataConfig(empty_text="skip"))
    assert [e.line for e in examples] == [1, 3]
    assert "train.jsonl: skipped 1 record with an empty text (first at line 2; data.empty_text=skip)" in caplog.text
    only_empty = jsonl(tmp_path, [{"text": "", "label": "x"}], name="e.jsonl")
    with pytest.raises(DataError, match="found only empty ones"):
        read_examples(only_empty, DataConfig(empty_text="skip"))


def test_bytes_that_are_not_utf8(tmp_path):
    content = '{"text": "ok", "label": "x"}\n'.encode() + '{"text": "中文", "label": "y"}\n'.encode("gbk")
    p = text_file(tmp_path, "gbk.jsonl", content)
    with pytest.raises(DataError, match=r"gbk\.jsonl:2: expected UTF-8 text, found byte 0xd6 \(byte 11 of the line\), "
                                        r"which is not valid UTF-8; .*iconv -f GBK -t UTF-8 in > out"):
        read_examples(p, CFG)
    utf16 = text_file(tmp_path, "u16.csv", "text,label\n", encoding="utf-16")
    with pytest.raises(DataError, match=r"u16\.csv:1: .*UTF-16 file; convert it"):
        read_examples(utf16, CFG)


def test_csv_wrong_number_of_columns(tmp_path):
    p = text_file(tmp_path, "d.csv", "text,label\nfine,x\nnot, fine,y\n")
    with pytest.raises(DataError, match=r"d\.csv:3: expected 2 columns as in the header \(text, label\), found 3; "
                                        r"quote fields that contain commas"):
        read_examples(p, CFG)


def test_csv_unclosed_quote_points_at_its_line(tmp_path):
    p = text_file(tmp_path, "d.csv", 'text,label\nok,x\n"never closed,y\nmore,z\n')
    with pytest.raises(DataError, match=r"d\.csv:3: expected 2 columns .* found 1 \(a quote opened on this line "
                                        r"is never closed\)"):
        read_examples(p, CFG)


@pytest.mark.parametrize("row", [{"text": "b", "label": ""}, {"text": "b", "label": None}, {"text": "b", "label": []}])
def test_empty_label(tmp_path, row):
    p = jsonl(tmp_path, [{"text": "a", "label": "x"}, row])
    with pytest.raises(DataError, match=r"train\.jsonl:2: expected a label, found .* \(an empty label\); fill in"):
        read_examples(p, CFG, task="single_label")


def test_several_labels_under_single_label_suggest_multi_label(tmp_path):
    p = jsonl(tmp_path, [{"text": "a", "labels": ["x", "y"]}])
    with pytest.raises(DataError, match=r":1: expected one label for task single_label, found 2 \(x, y\); "
                                        r"set task: multi_label"):
        read_examples(p, CFG, task="single_label")


def test_bad_label_types_and_paths(tmp_path):
    p = jsonl(tmp_path, [{"text": "a", "label": {"x": 1}}])
    with pytest.raises(DataError, match=r":1: expected the label to be a string, a number or a list, found an object"):
        read_examples(p, CFG)
    q = jsonl(tmp_path, [{"text": "a", "labels": ["A//B"]}], name="q.jsonl")
    with pytest.raises(DataError, match=r"q\.jsonl:1: expected a label path like 'A/B', found 'A//B'"):
        read_examples(q, CFG, task="hierarchical")


def test_text_that_is_not_a_string(tmp_path):
    p = jsonl(tmp_path, [{"text": ["a"], "label": "x"}])
    with pytest.raises(DataError, match=r':1: expected "text" to be a string, found a list'):
        read_examples(p, CFG)


# ------------------------------------------------------------------------------------------ split & checks

def _examples(labels):
    return [Example(f"t{i}", [lab] if isinstance(lab, str) else lab, i + 1, "mem") for i, lab in enumerate(labels)]


def test_stratified_split_is_seeded_stratified_and_ordered():
    data = _examples(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    train, dev = stratified_split(data, 0.2, seed=1)
    assert len(dev) == 20 and len(train) == 80
    assert sorted(e.labels[0] for e in dev).count("a") == 10
    assert [e.line for e in dev] == sorted(e.line for e in dev)
    assert stratified_split(data, 0.2, seed=1) == (train, dev)
    assert stratified_split(data, 0.2, seed=2)[1] != dev


def test_stratified_split_keeps_singletons_in_train_and_never_leaves_dev_labels_unseen():
    data = _examples(["a"] * 5 + ["b"] * 5 + ["rare"] + [["a", "only_here"]] * 2)
    for seed in range(5):
        train, dev = stratified_split(data, 0.3, seed=seed)
        seen = {lab for e in train for lab in e.labels}
        assert "rare" in seen and dev and all(set(e.labels) <= seen for e in dev)
        assert len(train) + len(dev) == len(data)
    tiny = _examples(["a", "b", "a"])  # more classes than dev slots: plain seeded split
    assert len(stratified_split(tiny, 0.1, seed=0)[1]) == 1


def test_stratified_split_needs_two_examples():
    with pytest.raises(DataError, match="expected at least 2 examples to hold out a dev set, found 1; .*data.dev"):
        stratified_split(_examples(["a"]), 0.1, 0)


def test_only_one_class_in_train():
    check_train_labels(_examples(["a", "b"]), "train.jsonl")
    with pytest.raises(DataError, match=r"train\.jsonl: expected at least 2 classes in the training labels, "
                                        r"found only 1 class \('a'\) in 3 examples"):
        check_train_labels(_examples(["a"] * 3), "train.jsonl")


def test_dev_label_unknown_to_train():
    known = [f"label{i}" for i in range(30)] + ["sports"]
    check_known_labels(_examples(["sports"]), known, "dev", "dev.jsonl")
    dev = _examples(["sports", "sprots", "newlabel", "sprots"])
    with pytest.raises(DataError, match=r"dev\.jsonl:2: expected dev labels that occur in train, found 'sprots'; "
                                        r"did you mean 'sports'\? \(3 dev records have labels train never had; "
                                        r"other unseen labels: newlabel\); known labels: label0, .*\(\+11 more\); "
                                        r"fix the label"):
        check_known_labels(dev, known, "dev", "dev.jsonl")


# ------------------------------------------------------------------------------------------ real data (if present)

REAL = "/work/shared/datasets"


@pytest.mark.parametrize("name,task", [("trec_hier", "hierarchical"), ("goemotions", "multi_label"),
                                       ("sst2_sentence", "single_label")])
def test_real_datasets_infer_their_task(name, task):
    import os

    path = f"{REAL}/{name}/test.jsonl"
    if not os.path.exists(path):
        pytest.skip("shared datasets not available")
    examples, inferred = load_split(path, CFG)
    assert inferred == task and examples


def test_split_seed_fixes_the_dev_split_whatever_the_train_seed(tiny_data, tmp_path):
    from conftest import write_config
    from textsift.config.load import load_config
    from textsift.engines.train_run import load_datasets

    cfg = write_config(tmp_path / "c.yaml", {"train": tiny_data["train"]})

    def dev_texts(*overrides):
        _, train, dev, _ = load_datasets(load_config(str(cfg), list(overrides)))
        assert len(train) + len(dev) == 240 and not {e.text for e in dev} & {e.text for e in train}
        return sorted(e.text for e in dev)

    assert dev_texts("train.seed=1") != dev_texts("train.seed=2")  # by default the split follows train.seed
    assert dev_texts("train.seed=1", "data.split_seed=7") == dev_texts("train.seed=2", "data.split_seed=7")
    assert dev_texts("train.seed=7") == dev_texts("train.seed=1", "data.split_seed=7")
