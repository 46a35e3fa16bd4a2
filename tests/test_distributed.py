"""DDP under torchrun (2 gloo processes on this CPU) and streaming data.

The torchrun tests start real ``torchrun --standalone --nproc_per_node 2`` subprocesses (each costs
several seconds), so there are few of them and each checks several things. Tolerance: 2 processes sum
their gradients in a different order than 1 process, so losses and weights agree to 1e-4, not bit for
bit; dev accuracy and macro-F1 must be identical.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from conftest import make_texts, write_config, write_jsonl
from textsift.cli.main import main
from textsift.config.load import load_config, validate
from textsift.errors import ConfigError, DataError

TOL = 1e-4


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _textsift(args, cwd, nproc=None):
    """``python -m textsift ARGS`` (one process) or under ``torchrun --nproc_per_node NPROC``."""
    launcher = [sys.executable] + ([] if nproc is None else
                                   ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)])
    done = subprocess.run(launcher + ["-m", "textsift", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _history(run):
    return json.loads((Path(run) / "history.json").read_text())


def _assert_same_training(a, b):
    """Two run directories trained the same steps: losses and weights within TOL, same dev metrics."""
    ha, hb = _history(a), _history(b)
    assert len(ha) == len(hb)
    for ra, rb in zip(ha, hb):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], abs=TOL)
        assert ra["dev_accuracy"] == rb["dev_accuracy"] and ra["dev_macro_f1"] == rb["dev_macro_f1"]
        assert ra["train_examples"] == rb["train_examples"]
    wa, wb = load_file(str(Path(a) / "model.safetensors")), load_file(str(Path(b) / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert float((wa[key] - wb[key]).abs().max()) < TOL, key


def _files(run):
    return sorted(str(p.relative_to(run)) for p in Path(run).rglob("*") if "tensorboard" not in p.parts)


@pytest.fixture
def data(tmp_path):
    return {split: str(write_jsonl(tmp_path / f"{split}.jsonl", make_texts(n, seed)))
            for split, n, seed in (("train", 200, 1), ("dev", 60, 2))}


def test_two_processes_train_like_one_and_only_rank0_writes(tmp_path, data):
    # batch 15 splits 8/7 over the ranks and the last batch (200 % 15 = 5) unevenly; accumulation
    # over 2 micro-batches exercises no_sync; no dropout, so both runs draw no random masks
    cfg = write_config(tmp_path / "c.yaml", data, model_name="textcnn",
                       model={"num_filters": 8, "kernel_sizes": [1, 2], "dropout": 0.0},
                       train={"epochs": 2, "batch_size": 15, "grad_accum_steps": 2}, report={"plots": False})
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    _textsift(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "one")], cwd)
    done = _textsift(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "two")], cwd, nproc=2)
    _assert_same_training(tmp_path / "one", tmp_path / "two")
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["dev"] == \
        json.loads((tmp_path / "two" / "metrics.json").read_text())["dev"]
    # rank 0 alone wrote: the same files as one process, one event file, each log line once, nothing stray
    assert _files(tmp_path / "one") == _files(tmp_path / "two")
    assert len(list((tmp_path / "two" / "tensorboard").iterdir())) == 1
    log = (tmp_path / "two" / "train.log").read_text()
    assert log.count("epoch 1:") == 1 and "distributed training: 2 processes, backend gloo" in log
    assert done.stdout.count("run directory:") == 1
    assert list(cwd.iterdir()) == []


def test_ddp_resume_with_a_multi_backward_trick(tmp_path, data):
    """FGM does two backward passes per batch (gradients averaged once before the step); a 2-process
    run stopped after epoch 1 and resumed under torchrun ends like one uninterrupted process."""
    cfg = write_config(tmp_path / "c.yaml", data, model_name="textcnn",
                       model={"num_filters": 8, "kernel_sizes": [1, 2], "dropout": 0.0},
                       train={"epochs": 2, "batch_size": 16, "scheduler": "constant",
                              "early_stopping": {"patience": None}, "tricks": [{"name": "fgm", "epsilon": 0.5}]},
                       report={"plots": False, "tensorboard": False})
    _textsift(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "one")], tmp_path)
    _textsift(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "two"), "train.epochs=1"], tmp_path, nproc=2)
    assert len(_history(tmp_path / "two")) == 1
    _textsift(["train", "--resume", str(tmp_path / "two"), "train.epochs=2"], tmp_path, nproc=2)
    _assert_same_training(tmp_path / "one", tmp_path / "two")


def test_kfold_and_distillation_under_ddp_equal_one_process(tmp_path, data):
    cfg = write_config(tmp_path / "c.yaml", data, model_name="fasttext", model={"dropout": 0.0},
                       train={"epochs": 1, "kfold": 2}, report={"plots": False, "tensorboard": False})
    _textsift(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "one")], tmp_path)
    _textsift(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "two")], tmp_path, nproc=2)
    one, two = (json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("one", "two"))
    assert [f["accuracy"] for f in one["folds"]] == [f["accuracy"] for f in two["folds"]]
    assert one["oof"]["accuracy"] == two["oof"]["accuracy"] and one["dev"] == two["dev"]
    for i in range(2):
        _assert_same_training(tmp_path / "one" / "folds" / f"fold-{i}", tmp_path / "two" / "folds" / f"fold-{i}")
    assert _files(tmp_path / "one") == _files(tmp_path / "two")

    # a fold model (a complete run directory) as the teacher of a fastText student
    student = write_config(tmp_path / "d.yaml", data, model_name="fasttext", model={"dropout": 0.0},
                           train={"epochs": 2, "lr": 0.05}, report={"plots": False, "tensorboard": False},
                           distill={"teacher": str(tmp_path / "one" / "folds" / "fold-0"), "cache": False})
    _textsift(["distill", "-c", str(student), "--run-dir", str(tmp_path / "d1")], tmp_path)
    _textsift(["distill", "-c", str(student), "--run-dir", str(tmp_path / "d2")], tmp_path, nproc=2)
    _assert_same_training(tmp_path / "d1", tmp_path / "d2")
    assert _files(tmp_path / "d1") == _files(tmp_path / "d2")


# ------------------------------------------------------------------------------------ streaming

def test_streaming_scan_gives_the_in_memory_vocabulary_labels_and_task(tmp_path, tiny_multi):
    from textsift.data import load_split
    from textsift.data.labels import LabelScheme
    from textsift.data.streaming import StreamingExamples
    from textsift.tokenizers import TextEncoder

    for path, tok in ((tiny_multi["train"], {"name": "word", "min_freq": 2}), (tiny_multi["train"], {"name": "char"})):
        cfg = validate({"data": {"train": path, "streaming": True, "dev": tiny_multi["dev"]},
                           "model": {"name": "fasttext"}, "tokenizer": tok})
        examples, task = load_split(path, cfg.data)
        memory = TextEncoder.fit(cfg.tokenizer, [ex.text for ex in examples])
        stream = StreamingExamples(path, cfg.data, seed=0)
        streamed = TextEncoder.fit(cfg.tokenizer, stream.scan())
        assert streamed.vocab.tokens == memory.vocab.tokens
        assert (stream.task, stream.labels, len(stream)) == (task, LabelScheme.from_examples(task, examples).labels,
                                                             len(examples))
        assert [ex.labels for ex in stream.records()] == [ex.labels for ex in examples]


def test_shuffle_buffer_is_seeded_per_epoch_and_keeps_every_example(tmp_path, tiny_data):
    from textsift.data.streaming import StreamingExamples

    cfg = validate({"data": {"train": tiny_data["train"], "dev": tiny_data["dev"], "streaming": True,
                                "shuffle_buffer": 50}, "model": {"name": "fasttext"}})
    stream = StreamingExamples(tiny_data["train"], cfg.data, seed=3, task="single_label")
    lines = []
    for epoch in (0, 0, 1):
        stream.set_epoch(epoch)
        lines.append([ex.line for ex in stream])
    assert lines[0] == lines[1] != lines[2]
    assert sorted(lines[0]) == sorted(lines[2]) == list(range(1, 241))
    assert lines[0] != sorted(lines[0])


def test_streaming_run_trains_with_the_in_memory_vocabulary(tmp_path, tiny_data):
    cfg = write_config(tmp_path / "c.yaml", {**tiny_data, "streaming": True, "shuffle_buffer": 64},
                       model_name="fasttext", train={"epochs": 3, "lr": 0.05}, report={"plots": False, "tensorboard": False})
    assert main(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.8
    assert _history(tmp_path / "run")[0]["train_examples"] == 240
    memory = load_config(str(cfg), ["data.streaming=false"])
    from textsift.engines.train_run import train_run

    train_run(memory, tmp_path / "memory")  # same file in memory: same vocabulary file
    assert (tmp_path / "run" / "tokenizer.json").read_text() == (tmp_path / "memory" / "tokenizer.json").read_text()


@pytest.mark.parametrize("override, match", [
    ("data.dev=null", r"data\.streaming: expected a data\.dev file"),
    ("loss.class_weights=balanced", r"loss\.class_weights: 'balanced'.*data\.streaming"),
    ("train.kfold=3", r"train\.kfold: K-fold needs the whole training set"),
    ("model.name=tfidf_linear", r"model\.name: tfidf_linear is fitted in one pass"),
])
def test_streaming_rejects_what_needs_the_whole_corpus(tmp_path, tiny_data, override, match):
    cfg = write_config(tmp_path / "c.yaml", {**tiny_data, "streaming": True}, model_name="fasttext")
    with pytest.raises(ConfigError, match=match):
        load_config(str(cfg), [override] + (["model.embedding_dim=null"] if "tfidf" in override else []))


def test_streaming_errors_name_file_and_line(tmp_path, tiny_data):
    from textsift.data.streaming import StreamingExamples

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a b", "label": "x"}\n{"text": "c", "lable": "y"}\n', encoding="utf-8")
    cfg = validate({"data": {"train": str(bad), "dev": tiny_data["dev"], "streaming": True},
                       "model": {"name": "fasttext"}})
    with pytest.raises(DataError, match=r'bad\.jsonl:2: expected a "label" or "labels" field'):
        list(StreamingExamples(bad, cfg.data, seed=0).scan())


def test_predict_file_equals_predict_on_texts(tmp_path, tiny_data):
    from textsift.api import TextClassifier

    cfg = write_config(tmp_path / "c.yaml", tiny_data, model_name="fasttext", train={"epochs": 1},
                       report={"plots": False, "tensorboard": False})
    assert main(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "run")]) == 0
    out = tmp_path / "pred.jsonl"
    assert main(["predict", str(tmp_path / "run"), "--input", tiny_data["test"], "--output", str(out),
                 "--batch-size", "7"]) == 0
    streamed = [json.loads(line) for line in out.read_text().splitlines()]
    texts = [json.loads(line)["text"] for line in Path(tiny_data["test"]).read_text().splitlines()]
    direct = TextClassifier.load(tmp_path / "run").predict_details(texts, 3)
    assert [r["line"] for r in streamed] == list(range(1, len(texts) + 1))
    assert [r["label"] for r in streamed] == [r["label"] for r in direct]
    assert np.allclose([r["probability"] for r in streamed], [r["probability"] for r in direct], atol=1e-6)
    assert not list(tmp_path.glob(".pred.jsonl*"))  # the temporary file was renamed
