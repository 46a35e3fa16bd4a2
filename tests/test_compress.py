"""Structured pruning and quantization: a pruned encoder equals the original with the same heads and
neurons masked; pruned and quantized runs reload through the ordinary commands; accuracy stays within
a stated tolerance on a tiny task; bad requests are refused clearly."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
import torch

from conftest import make_texts, write_jsonl
from hf_tiny import make_tiny_model

TRAIN = {"epochs": 3, "batch_size": 16, "progress": False, "max_length": 24, "precision": "fp32", "lr": 2e-3}


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    from textsift.api import TextClassifier

    root = tmp_path_factory.mktemp("compress")
    files = {s: str(write_jsonl(root / f"{s}.jsonl", make_texts(n, seed)))
             for s, n, seed in (("train", 240, 1), ("dev", 60, 2), ("test", 60, 3))}
    texts = [json.loads(line)["text"] for line in open(files["train"], encoding="utf-8")]
    folder = make_tiny_model("bert", root / "tiny", texts)
    TextClassifier.train({"data": files, "model": {"name": "hf", "pretrained": str(folder), "pooling": "mean"},
                          "train": TRAIN}, root / "run")
    return root, files


def _masked_logits(model, ids, mask, head_keep: list[list[int]], ffn_keep: list[list[int]]):
    """The unpruned model's logits with removed heads/neurons gated to zero (hooks, no weight changes)."""
    from textsift.models.hf_structure import head_size, layer_layout, num_heads

    hooks = []
    for layer, heads, neurons in zip(model.layers(), head_keep, ffn_keep):
        layout = layer_layout(layer)
        h, size = num_heads(layer, layout), head_size(layer, layout)
        hg = torch.zeros(h)
        hg[heads] = 1
        fg = torch.zeros(layer.get_submodule(layout["up"]).out_features)
        fg[neurons] = 1
        hooks.append(layer.get_submodule(layout["o"]).register_forward_pre_hook(
            lambda _, a, g=hg, h=h, s=size: ((a[0].unflatten(-1, (h, s)) * g[:, None]).flatten(-2),)))
        hooks.append(layer.get_submodule(layout["down"]).register_forward_pre_hook(lambda _, a, g=fg: (a[0] * g,)))
    try:
        with torch.no_grad():
            return model(ids, mask).logits
    finally:
        for hook in hooks:
            hook.remove()


def test_pruned_model_equals_the_masked_original(hf_run):
    from textsift.engines.batching import pad_batch
    from textsift.models.hf_structure import keep_heads, keep_neurons
    from textsift.rundir import load_bundle

    root, _ = hf_run
    original, pruned = load_bundle(root / "run"), load_bundle(root / "run")
    for b in (original, pruned):
        b.model.amp_dtype = None
    ids, mask = pad_batch(original.encoder.encode_batch([t["text"] for t in make_texts(6, 5)], 24),
                          original.encoder.pad_id)
    heads, neurons = [[1], [0]], [[0, 3, 5, 8, 20], [2, 4, 6, 30]]
    for layer, h, n in zip(pruned.model.layers(), heads, neurons):
        keep_heads(layer, h)
        keep_neurons(layer, n)
    with torch.no_grad():
        got = pruned.model(ids, mask).logits
    torch.testing.assert_close(got, _masked_logits(original.model, ids, mask, heads, neurons), atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for p in pruned.model.parameters()) < sum(p.numel() for p in original.model.parameters())


def test_importance_ranks_a_dead_head_last(hf_run):
    from textsift.engines.prune import importance
    from textsift.models.hf_structure import head_size, layer_layout
    from textsift.rundir import load_bundle

    root, files = hf_run
    b = load_bundle(root / "run")
    b.model.amp_dtype = None
    layer = b.model.layers()[0]
    layout = layer_layout(layer)
    size = head_size(layer, layout)
    with torch.no_grad():  # head 1 of layer 0 no longer reaches the output
        layer.get_submodule(layout["o"]).weight[:, size:2 * size] = 0
    texts = make_texts(40, 1)
    heads, ffn = importance(b.model, b.scheme, b.encoder.encode_batch([t["text"] for t in texts], 24),
                            b.scheme.targets([[t["label"]] for t in texts]), b.encoder.pad_id)
    assert heads[0][1] == 0 and heads[0][0] > 0
    assert all(torch.isclose(h.norm(), torch.tensor(1.0)) for h in heads + ffn)  # normalised per layer


def test_prune_command_writes_a_smaller_run_that_reloads_and_exports(hf_run, tmp_path):
    from textsift.api import TextClassifier
    from textsift.engines.export import export_run

    root, files = hf_run
    cli = [sys.executable, "-m", "textsift"]
    out = subprocess.run(cli + ["prune", str(root / "run"), "--run-dir", str(tmp_path / "p"), "--width", "0.5",
                                "--layers", "1", "--retrain-epochs", "1", "--set", "train.progress=false"],
                         capture_output=True, text=True, check=True).stdout
    assert "| after / before |" in out and "test_accuracy" in out
    report = json.loads((tmp_path / "p" / "prune_report.json").read_text())
    assert report["kept"]["layers"] == [1] and report["kept"]["heads_per_layer"] == [1]
    assert report["rows"]["after"]["parameters"] < report["rows"]["before"]["parameters"]
    clf = TextClassifier.load(tmp_path / "p")
    assert clf.bundle.model.num_layers == 1
    assert clf.bundle.model.params.structure == {"heads": [1], "ffn": [clf.bundle.model.params.structure["ffn"][0]]}
    metrics = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.6 and "distill" in metrics  # re-trained from the unpruned run
    # hidden states matched to the teacher layer each kept layer came from (layer 1 = hidden state 2)
    config = yaml.safe_load((tmp_path / "p" / "config.yaml").read_text())
    assert config["distill"]["intermediate"] == [{"teacher_layer": 2, "student_layer": 1, "loss": "hidden_mse",
                                                  "feature": "hidden", "weight": 1.0}]
    manifest = export_run(tmp_path / "p", tmp_path / "onnx")
    assert manifest["parity"]["max_abs_diff"] < 1e-4
    evaluated = subprocess.run(cli + ["evaluate", str(tmp_path / "p"), "--data", files["test"], "--json"],
                               capture_output=True, text=True, check=True).stdout
    assert json.loads(evaluated)["metrics"]["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def test_dynamic_int8_run_is_smaller_reloads_and_stays_accurate(hf_run, tmp_path):
    from textsift.api import TextClassifier
    from textsift.engines.quantize import quantize_run

    root, files = hf_run
    report = quantize_run(root / "run", tmp_path / "q")
    assert (tmp_path / "q" / "model.safetensors").stat().st_size < 0.7 * (root / "run" / "model.safetensors").stat().st_size
    before, after = report["rows"]["before"], report["rows"]["after"]
    assert after["parameters"] == before["parameters"]
    assert after["test_accuracy"] >= before["test_accuracy"] - 0.05  # the stated tolerance: 5 points on 60 texts
    clf = TextClassifier.load(tmp_path / "q")
    assert type(clf.bundle.model.layers()[0].get_submodule("attention.self.query")).__name__ == "Linear" and \
        clf.bundle.model.layers()[0].get_submodule("attention.self.query").__module__.startswith("torch.ao")
    texts = [t["text"] for t in make_texts(30, 8)]
    fp32 = TextClassifier.load(root / "run").predict(texts)
    assert np.mean([a == b for a, b in zip(fp32, clf.predict(texts))]) >= 0.9


def test_onnx_static_int8(hf_run, tmp_path):
    from textsift.api import TextClassifier
    from textsift.engines.quantize import quantize_run

    root, files = hf_run
    report = quantize_run(root / "run", tmp_path / "s", method="onnx-static", calibration=files["dev"])
    manifest = json.loads((tmp_path / "s" / "export.json").read_text())
    assert manifest["int8_method"] == "static" and manifest["int8_parity"]["calibration_texts"] == 60
    assert manifest["int8_parity"]["top1_agreement_vs_onnx_fp32"] >= 0.9
    assert report["rows"]["after"]["test_accuracy"] >= report["rows"]["before"]["test_accuracy"] - 0.05
    assert TextClassifier.load(tmp_path / "s", backend="onnx-int8").predict("stock market") in ("finance", "sports", "tech")


def test_bad_compression_requests(hf_run, tmp_path):
    from textsift.api import TextClassifier
    from textsift.engines.prune import prune_run
    from textsift.engines.quantize import quantize_run
    from textsift.errors import TextsiftError

    root, files = hf_run
    with pytest.raises(TextsiftError, match="nothing to remove"):
        prune_run(root / "run", tmp_path / "a")
    with pytest.raises(TextsiftError, match=r"--layers: expected indices from 0 to 1, got \[5\]"):
        prune_run(root / "run", tmp_path / "a", layers=[5])
    with pytest.raises(TextsiftError, match="--heads: expected 1 to 2 per layer, got 3"):
        prune_run(root / "run", tmp_path / "a", heads=3)
    with pytest.raises(TextsiftError, match="--width: expected a fraction"):
        prune_run(root / "run", tmp_path / "a", width=1.5)
    classic = tmp_path / "classic"
    TextClassifier.train({"data": files, "model": {"name": "fasttext", "embedding_dim": 8},
                          "tokenizer": {"name": "word"}, "train": {**TRAIN, "epochs": 1}}, classic)
    with pytest.raises(TextsiftError, match="structured pruning applies to pretrained-encoder"):
        prune_run(classic, tmp_path / "a", width=0.5)
    with pytest.raises(TextsiftError, match="--method: expected one of dynamic, onnx-dynamic, onnx-static"):
        quantize_run(classic, tmp_path / "a", method="fp8")
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("kind", ["hf", "fasttext_ngrams", "tfidf_linear"])
def test_vocabulary_pruning_keeps_logits_on_covered_text(hf_run, tmp_path, kind):
    from textsift.api import TextClassifier
    from textsift.engines.prune import prune_run

    root, files = hf_run
    run = root / "run"
    if kind != "hf":
        run = tmp_path / "classic"
        model = {"name": "fasttext", "embedding_dim": 8} if kind == "fasttext_ngrams" else {"name": "tfidf_linear"}
        TextClassifier.train({"data": files, "model": model, "train": {**TRAIN, "epochs": 2, "lr": 0.05},
                              "tokenizer": {"name": "word", "ngrams": 2 if kind == "fasttext_ngrams" else 1,
                                            "ngram_buckets": 1000}}, run)
    corpus = tmp_path / "corpus.txt"
    covered = [t["text"] for t in make_texts(20, 11)]
    corpus.write_text("\n".join(covered) + "\n")
    report = prune_run(run, tmp_path / "v", vocab_from=str(corpus))
    assert report["kept"]["vocab"]["after"] < report["kept"]["vocab"]["before"]
    before, after = TextClassifier.load(run), TextClassifier.load(tmp_path / "v")
    assert after.bundle.model.vocab_size == report["kept"]["vocab"]["after"]
    # covered texts (and any reordering of their words) give the same probabilities
    probe = covered + [" ".join(reversed(t.split())) for t in covered[:5]]
    np.testing.assert_allclose(after.scores(probe)[0], before.scores(probe)[0], atol=1e-5)
    # an uncovered word is now unknown, not an error
    assert after.predict("zebra quantum stock") in ("finance", "sports", "tech")
