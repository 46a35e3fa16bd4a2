"""Export: every model type to ONNX (parity-checked), the ONNX Runtime backend matching PyTorch through
every front door, TorchScript, the Triton repository layout, int8, and refusals that leave nothing behind."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import make_texts, write_config, write_jsonl
from hf_tiny import make_tiny_model

CLASSIC = ["fasttext", "textcnn", "textrnn", "textrcnn", "dpcnn", "transformer", "tfidf_linear"]
PROBE = ["stock market bank profit", "goal", "the new phone app and cloud code today says about a big robot chip",
         "", "football team score league coach player match goal stock market price shares fund"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("exportdata")
    return {split: str(write_jsonl(root / f"{split}.jsonl", make_texts(n, seed)))
            for split, n, seed in (("train", 150, 1), ("dev", 45, 2), ("test", 45, 3))}


def _train(tmp_path, data, name, **model):
    from textsift.config.load import load_config
    from textsift.engines.train_run import train_run

    # fp32 even for `hf` (whose default here is bf16 autocast), so PyTorch and ONNX compare exactly
    cfg = write_config(tmp_path / f"{name}.yaml", data, model_name=name, model=model,
                       train={"epochs": 2, "max_length": 24, "precision": "fp32"})
    raw = yaml.safe_load(cfg.read_text())
    if name in ("tfidf_linear", "hf"):
        raw["model"].pop("embedding_dim")
    cfg.write_text(yaml.safe_dump(raw))
    run = tmp_path / f"run-{name}"
    train_run(load_config(str(cfg)), run)
    return run


def _same_predictions(run, export, backend="onnx", atol=1e-5):
    from textsift.api import TextClassifier

    torch_clf = TextClassifier.load(run)
    onnx_clf = TextClassifier.load(export, backend=backend)
    expected, got = torch_clf.predict_details(PROBE, top_k=2), onnx_clf.predict_details(PROBE, top_k=2)
    for e, g in zip(expected, got):
        assert g.get("label") == e.get("label") and g.get("labels") == e.get("labels")
        np.testing.assert_allclose([g["probabilities"][k] for k in e["probabilities"]],
                                   list(e["probabilities"].values()), atol=atol)
    return onnx_clf


@pytest.mark.parametrize("name", CLASSIC)
def test_every_classic_model_exports_with_parity_and_predicts_alike(name, data, tmp_path):
    from textsift.engines.export import export_run

    run = _train(tmp_path, data, name)
    manifest = export_run(run, tmp_path / "onnx")
    assert manifest["parity"]["max_abs_diff"] <= 1e-4
    # batch sizes 1, 3, 16 at several lengths, the run's max_length among them
    assert {s[0] for s in manifest["parity"]["shapes"]} == {1, 3, 16}
    assert 24 in {s[1] for s in manifest["parity"]["shapes"]}
    assert manifest["fixed_length"] == (24 if name == "dpcnn" else None)
    _same_predictions(run, tmp_path / "onnx")


def test_onnx_graph_has_dynamic_batch_and_sequence_axes(data, tmp_path):
    import onnx

    from textsift.engines.export import export_run

    export_run(_train(tmp_path, data, "textcnn"), tmp_path / "onnx")
    graph = onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        assert [d.dim_param for d in dims] == ["batch", "seq"], value.name
        assert value.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert graph.output[0].name == "logits" and graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


@pytest.mark.parametrize("family,chunked", [("bert", False), ("roberta", False), ("xlnet", False),
                                            ("bert", True)])
def test_pretrained_encoders_export(family, chunked, data, tmp_path):
    from textsift.engines.export import export_run

    texts = [json.loads(line)["text"] for line in open(data["train"], encoding="utf-8")] + PROBE
    folder = make_tiny_model(family, tmp_path / family, texts)
    run = _train(tmp_path, data, "hf", pretrained=str(folder), **({"chunk_size": 8} if chunked else {}))
    manifest = export_run(run, tmp_path / "onnx", int8=True)
    assert manifest["fixed_length"] == (24 if chunked else None)
    assert manifest["int8_parity"]["texts"] == manifest["parity"]["texts"]
    _same_predictions(run, tmp_path / "onnx")
    import onnx

    if family != "xlnet" and not chunked:   # BERT-family: one fused Attention node per layer, int8 QAttention
        layers = json.loads((folder / "config.json").read_text())["num_hidden_layers"]
        assert manifest["fusion"]["fused"] and manifest["fusion"]["ops"]["Attention"] == layers
        ops = [n.op_type for n in onnx.load(str(tmp_path / "onnx" / "model.int8.onnx")).graph.node]
        assert ops.count("QAttention") == layers and "Attention" not in ops
        # two skip-layer-norms per layer (+ any plain layer norm), rewritten as instance norms
        assert manifest["layer_norm"]["rewritten"] == ops.count("InstanceNormalization") >= 2 * layers
        assert "SkipLayerNormalization" not in ops and "LayerNormalization" not in ops
    elif family == "xlnet":
        assert "fusion" not in manifest
        ops = [n.op_type for n in onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph.node]
        assert manifest["layer_norm"]["rewritten"] == ops.count("InstanceNormalization") > 0
        assert "LayerNormalization" not in ops
    # the export reloads without the source model folder (tokenizer and config travel with it)
    import shutil
    shutil.rmtree(folder)
    _same_predictions(run, tmp_path / "onnx")


def test_no_fuse_and_uneven_pruned_heads_keep_the_plain_graph(data, tmp_path, capsys):
    import onnx

    from textsift.engines.export import _fuse_transformer, export_run
    from textsift.engines.prune import prune_run

    texts = [json.loads(line)["text"] for line in open(data["train"], encoding="utf-8")]
    run = _train(tmp_path, data, "hf", pretrained=str(make_tiny_model("bert", tmp_path / "bert", texts)))
    manifest = export_run(run, tmp_path / "plain", fuse=False)
    assert "fusion" not in manifest and "layer_norm" not in manifest
    ops = {n.op_type for n in onnx.load(str(tmp_path / "plain" / "model.onnx")).graph.node}
    assert "Attention" not in ops and "InstanceNormalization" not in ops and "LayerNormalization" in ops
    from textsift.cli.main import main

    capsys.readouterr()
    assert main(["export", str(run), "--out", str(tmp_path / "cli")]) == 0
    rewritten = json.loads((tmp_path / "cli" / "export.json").read_text())["layer_norm"]["rewritten"]
    assert f"  {rewritten} layer norms rewritten as instance norms" in capsys.readouterr().out
    assert main(["export", str(run), "--out", str(tmp_path / "cli-plain"), "--no-fuse"]) == 0
    assert "layer norms rewritten" not in capsys.readouterr().out
    _same_predictions(run, tmp_path / "plain")
    # layers pruned to different head counts: one Attention shape per graph cannot describe them
    from textsift.engines.export import LogitsOnly
    from textsift.rundir import load_bundle

    prune_run(run, tmp_path / "uneven", heads=1)
    model = load_bundle(tmp_path / "uneven").model
    assert model.params.structure["heads"] == [1, 1]
    model.params.structure["heads"] = [1, 2]
    assert _fuse_transformer(LogitsOnly(model), tmp_path / "x.onnx", [], None, 1e-4) == {
        "fused": False, "reason": "pruned layers keep different numbers of attention heads"}
    manifest = export_run(tmp_path / "uneven", tmp_path / "pruned")   # even heads: fused, parity-checked
    assert manifest["fusion"]["fused"] and manifest["parity"]["max_abs_diff"] <= 1e-4


def test_torchscript_export_matches(data, tmp_path):
    import torch

    from textsift.engines.export import export_run
    from textsift.rundir import load_bundle

    run = _train(tmp_path, data, "textrnn")
    manifest = export_run(run, tmp_path / "ts", fmt="torchscript")
    assert manifest["file"] == "model.pt" and manifest["parity"]["max_abs_diff"] <= 1e-4
    module = torch.jit.load(str(tmp_path / "ts" / "model.pt"))
    bundle = load_bundle(run)
    ids = torch.tensor([bundle.encoder.encode("stock market bank", 24) + [bundle.encoder.pad_id] * 2])
    mask = (torch.arange(ids.size(1)) < ids.size(1) - 2).long()[None]
    with torch.no_grad():
        expected = bundle.model(ids, mask.bool()).logits
    torch.testing.assert_close(module(ids, mask), expected)


def test_int8_export_stays_accurate(data, tmp_path):
    """int8 matrix products (the transformer's); convolutions stay fp32 (slower in int8 on ORT's CPU)."""
    from textsift.api import TextClassifier
    from textsift.engines.export import export_run

    run = _train(tmp_path, data, "transformer", embedding_dim=64)
    export_run(run, tmp_path / "onnx", int8=True)
    assert (tmp_path / "onnx" / "model.int8.onnx").stat().st_size < (tmp_path / "onnx" / "model.onnx").stat().st_size
    texts = [json.loads(line)["text"] for line in open(data["test"], encoding="utf-8")]
    fp32, int8 = TextClassifier.load(run).predict(texts), TextClassifier.load(tmp_path / "onnx", backend="onnx-int8").predict(texts)
    assert np.mean([a == b for a, b in zip(fp32, int8)]) >= 0.9


def test_triton_repository_layout(data, tmp_path):
    import onnx

    from textsift.api import TextClassifier
    from textsift.engines.export import export_run

    run = _train(tmp_path, data, "textcnn")
    export_run(run, tmp_path / "repo", fmt="triton", name="news")
    model_dir = tmp_path / "repo" / "news"
    assert (model_dir / "1" / "model.onnx").is_file()
    config = (model_dir / "config.pbtxt").read_text()
    assert re.search(r'^name: "news"$', config, re.M) and 'backend: "onnxruntime"' in config
    assert "dynamic_batching {" in config and re.search(r"max_batch_size: \d+", config)
    graph = onnx.load(str(model_dir / "1" / "model.onnx")).graph
    declared = re.findall(r'name: "(\w+)"\s+data_type: (\w+)\s+dims: \[ ([-\d]+) \]', config)
    assert declared == [(i.name, "TYPE_INT64", "-1") for i in graph.input] + [("logits", "TYPE_FP32", "3")]
    labels = json.loads((tmp_path / "repo" / "textsift_assets" / "labels.json").read_text())["labels"]
    assert (model_dir / "labels.txt").read_text().split("\n")[:-1] == labels
    # Triton ignores textsift_assets/; textsift itself can serve the same repository
    assert TextClassifier.load(tmp_path / "repo", backend="onnx").predict("stock market bank") in labels


def test_failed_parity_publishes_nothing_and_existing_exports_are_kept(data, tmp_path):
    from textsift.engines.export import export_run
    from textsift.errors import TextsiftError

    run = _train(tmp_path, data, "textcnn")
    with pytest.raises(TextsiftError, match=r"parity check failed: max \|logit difference\| .* > tolerance 0"):
        export_run(run, tmp_path / "onnx", tolerance=0.0, exporter="torchscript")
    assert not (tmp_path / "onnx").exists() and not list(tmp_path.glob(".onnx.*"))
    export_run(run, tmp_path / "onnx")
    before = (tmp_path / "onnx" / "model.onnx").read_bytes()
    with pytest.raises(TextsiftError, match="exists and is not empty.*--overwrite"):
        export_run(run, tmp_path / "onnx")
    with pytest.raises(TextsiftError, match="parity check failed"):
        export_run(run, tmp_path / "onnx", tolerance=0.0, exporter="torchscript", overwrite=True)
    assert (tmp_path / "onnx" / "model.onnx").read_bytes() == before  # a failed overwrite keeps the old export


def test_bad_requests_are_clear(data, tmp_path):
    from textsift.api import TextClassifier
    from textsift.engines.export import export_run
    from textsift.errors import TextsiftError

    run = _train(tmp_path, data, "fasttext")
    with pytest.raises(TextsiftError, match="--format: expected one of onnx, torchscript, triton, got 'tflite'"):
        export_run(run, tmp_path / "x", fmt="tflite")
    with pytest.raises(TextsiftError, match="--int8: .* use --format onnx or triton"):
        export_run(run, tmp_path / "x", fmt="torchscript", int8=True)
    with pytest.raises(TextsiftError, match="no export.json here.*textsift export"):
        TextClassifier.load(run, backend="onnx")
    export_run(run, tmp_path / "onnx")
    with pytest.raises(TextsiftError, match=r"has no int8 model \(format 'onnx'\).*--int8 --out"):
        TextClassifier.load(tmp_path / "onnx", backend="onnx-int8")
    with pytest.raises(TextsiftError, match="export directory holds no PyTorch weights.*--backend onnx"):
        TextClassifier.load(tmp_path / "onnx")


def test_kfold_ensemble_is_refused_with_the_fold_to_export(data, tmp_path):
    from textsift.engines.export import export_run
    from textsift.errors import TextsiftError

    run = tmp_path / "kf"
    (run / "folds").mkdir(parents=True)
    (run / "model.json").write_text(json.dumps({"name": "ensemble", "members": []}))
    (run / "labels.json").write_text("{}")
    with pytest.raises(TextsiftError, match=r"K-fold ensemble .* export a fold instead .*folds/fold-0"):
        export_run(run, tmp_path / "out")


def test_cli_export_predict_and_evaluate_with_onnx(data, tmp_path):
    run = _train(tmp_path, data, "textcnn")
    cli = [sys.executable, "-m", "textsift"]
    out = subprocess.run(cli + ["export", str(run), "--out", str(tmp_path / "onnx"), "--int8"],
                         capture_output=True, text=True, check=True).stdout
    assert re.search(r"parity vs PyTorch: max \|logit diff\| \d\.\d\de-\d\d \(tolerance 0.0001\)", out)
    assert "dynamic batch and sequence axes" in out and "int8 vs PyTorch fp32" in out

    def predict(target, *extra):
        res = subprocess.run(cli + ["predict", str(target), "--text", "stock market", "--text", "goal team", *extra],
                             capture_output=True, text=True, check=True)
        return [json.loads(line) for line in res.stdout.splitlines()]

    torch_out, onnx_out = predict(run), predict(tmp_path / "onnx", "--backend", "onnx", "--threads", "1")
    assert [r["label"] for r in torch_out] == [r["label"] for r in onnx_out]
    assert [r["top_k"][0]["label"] for r in onnx_out] == [r["label"] for r in onnx_out]

    def evaluate(target, *extra):
        res = subprocess.run(cli + ["evaluate", str(target), "--data", data["test"], "--json", *extra],
                             capture_output=True, text=True, check=True)
        return json.loads(res.stdout)["metrics"]

    assert evaluate(run)["accuracy"] == evaluate(tmp_path / "onnx", "--backend", "onnx")["accuracy"]


def test_multi_label_export_applies_the_same_thresholds(tmp_path):
    from textsift.engines.export import export_run

    data = {split: str(write_jsonl(tmp_path / f"m{split}.jsonl", make_texts(n, seed, multi=True)))
            for split, n, seed in (("train", 150, 1), ("dev", 45, 2))}
    run = _train(tmp_path, data, "textcnn")
    export_run(run, tmp_path / "onnx")
    clf = _same_predictions(run, tmp_path / "onnx")
    assert clf.multi_label and all(isinstance(x, list) for x in clf.predict(PROBE))


def _layer_norm_graph(mean_output_used: bool = False, axis: int = -1):
    """x -> SkipLayerNormalization(x, skip, gamma, beta, bias) -> LayerNormalization -> y (hidden 6)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=6).astype(np.float32), name) for name in ("g1", "b1", "bias", "g2")]
    mean = "mean" if mean_output_used else ""
    nodes = [helper.make_node("SkipLayerNormalization", ["x", "skip", "g1", "b1", "bias"], ["h", "", "", "sum"],
                              domain="com.microsoft", epsilon=1e-5),
             helper.make_node("LayerNormalization", ["h", "g2"], ["y", mean], axis=axis, epsilon=1e-3),
             helper.make_node("Add", ["y", "sum"], ["out"])]
    outputs = [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["b", "s", 6])]
    if mean_output_used:
        outputs.append(helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["b", "s", 1]))
    graph = helper.make_graph(nodes, "ln", [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["b", "s", 6])
                                            for n in ("x", "skip")], outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _run(model, feeds):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)


def test_layer_norms_rewritten_as_instance_norms_compute_the_same():
    from textsift.engines.onnx_rewrite import layer_norms_as_instance_norm

    rng = np.random.default_rng(1)
    for shape in ((2, 5, 6), (1, 1, 6)):
        feeds = {"x": rng.normal(size=shape).astype(np.float32), "skip": 3 + rng.normal(size=shape).astype(np.float32)}
        model = _layer_norm_graph()
        expected = _run(model, feeds)
        assert layer_norms_as_instance_norm(model) == 2
        ops = [n.op_type for n in model.graph.node]
        assert "LayerNormalization" not in ops and "SkipLayerNormalization" not in ops
        assert ops.count("InstanceNormalization") == 2
        np.testing.assert_allclose(_run(model, feeds)[0], expected[0], atol=1e-5)
    # left alone: a layer norm whose mean output is read, or one over another axis
    for model in (_layer_norm_graph(mean_output_used=True), _layer_norm_graph(axis=1)):
        assert layer_norms_as_instance_norm(model) == 1
        assert [n.op_type for n in model.graph.node].count("LayerNormalization") == 1
