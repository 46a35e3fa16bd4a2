"""The `hf` model (pretrained Hugging Face encoders) on tiny random models of nine families."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import yaml

from conftest import make_texts, write_config, write_jsonl
from hf_tiny import FAMILIES, make_tiny_model
from textsift.engines.batching import epoch_batches, pad_batch
from textsift.precision import autocast, resolve_precision
from textsift.errors import TextsiftError

TEXTS = [r["text"] for r in make_texts(120, seed=0)] + ["国足客场不敌日本队", "央行下调存款准备金率", "新款手机发布"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """family → folder of a tiny random model + its locally built tokenizer (built once per module)."""
    root = tmp_path_factory.mktemp("hf")
    return {f: make_tiny_model(f, root / f, TEXTS) for f in FAMILIES}


def _build(folder, **params):
    from textsift.models import build_model
    from textsift.tokenizers.hf import HFTextEncoder
    from textsift.models.hf import HFParams

    p = HFParams(pretrained=str(folder), **params)
    enc = HFTextEncoder.from_params(p)
    model = build_model("hf", p, enc.vocab_size, 3, enc.pad_id)
    return model, enc


def _train(tmp_path, data, folder, **model):
    from textsift.engines.train_run import train_run
    from textsift.config.load import load_config

    cfg = write_config(tmp_path / "c.yaml", data, model_name="hf",
                       model={"pretrained": str(folder), **model},
                       train={"epochs": 2, "batch_size": 16, "lr": 2e-3, "max_length": 24, "precision": "fp32"})
    raw = yaml.safe_load(cfg.read_text())
    raw["model"].pop("embedding_dim")
    cfg.write_text(yaml.safe_dump(raw))
    run = tmp_path / "run"
    metrics = train_run(load_config(str(cfg)), run)
    return run, metrics


@pytest.mark.parametrize("family", FAMILIES)
def test_family_trains_saves_and_predicts_offline(family, tiny_models, tiny_data, tmp_path):
    """Train, then reload from the run directory alone (the source folder deleted) and evaluate."""
    from textsift.api import TextClassifier
    from textsift.data import read_examples
    from textsift.config.schema import DataConfig
    from textsift.engines.evaluation import evaluate_examples

    source = tmp_path / "source"
    shutil.copytree(tiny_models[family], source)
    run, metrics = _train(tmp_path, tiny_data, source, pooling="mean")
    shutil.rmtree(source)  # evaluate/predict must not need the original checkpoint folder
    clf = TextClassifier.load(run)
    b = clf.bundle
    dev = read_examples(tiny_data["dev"], DataConfig())
    again = evaluate_examples(b.model, b.scheme, b.encoder, dev, b.max_length, 32)
    assert again["accuracy"] == pytest.approx(metrics["dev"]["accuracy"])
    assert metrics["dev"]["accuracy"] > 0.5  # three separable topics: far above chance after 2 epochs
    assert clf.predict("football match goal team") in {"sports", "finance", "tech"}
    assert (run / "hf" / "config.json").is_file()


@pytest.mark.parametrize("family", ["roberta", "xlnet", "bert"])
def test_padding_does_not_change_logits(family, tiny_models):
    """Masks come from lengths, not from `ids != 0`: right padding with a non-zero pad id (RoBERTa 1,
    XLNet 5) leaves every text's logits unchanged, for every pooling."""
    for pooling in ("cls", "mean", "max"):
        model, enc = _build(tiny_models[family], pooling=pooling)
        model.eval()
        ids = enc.encode_batch(["football goal", "the stock market price report says today"], 24)
        alone = model(*pad_batch(ids[:1], enc.pad_id)).logits
        batched = model(*pad_batch(ids, enc.pad_id)).logits
        assert enc.pad_id == model.pad_id
        torch.testing.assert_close(batched[:1], alone, atol=1e-5, rtol=1e-4)


def test_cls_pooling_takes_the_family_cls_position(tiny_models):
    model, enc = _build(tiny_models["xlnet"])
    assert model.cls_offset == -1  # x <sep> <cls>: the last real token
    ids, mask = pad_batch(enc.encode_batch(["goal", "stock market price"], 24), enc.pad_id)
    hidden = torch.arange(ids.numel(), dtype=torch.float).view(*ids.shape, 1)
    pooled = model._pool(hidden, mask)
    last = mask.sum(1) - 1
    assert pooled[:, 0].tolist() == [hidden[i, last[i], 0].item() for i in range(2)]
    assert ids[0, last[0]].item() == enc.tokenizer.cls_token_id
    bert, _ = _build(tiny_models["bert"])
    assert bert.cls_offset == 0


def test_multisample_dropout_averages_head_over_masks(tiny_models):
    model, enc = _build(tiny_models["bert"], multisample_dropout=4, dropout=0.5)
    ids, mask = pad_batch(enc.encode_batch(["football goal", "stock"], 24), enc.pad_id)
    model.train()
    model.encoder.eval()  # no dropout inside the encoder: only the head's masks use the RNG
    torch.manual_seed(3)
    logits = model(ids, mask).logits
    torch.manual_seed(3)
    pooled = model._pool(model._encode(ids, mask).last_hidden_state, mask)
    manual = torch.stack([model.classifier(model.dropout(pooled)) for _ in range(4)]).mean(0)
    torch.testing.assert_close(logits, manual)
    model.eval()  # evaluation: one pass without dropout
    torch.testing.assert_close(model(ids, mask).logits, model.classifier(pooled))


def test_freeze_then_unfreeze(tiny_models):
    from textsift.config.schema import TrainConfig
    from textsift.engines.trainer import build_optimizers

    model, enc = _build(tiny_models["bert"], freeze_embeddings=True, freeze_layers=1, unfreeze_after=1)
    opts = build_optimizers(model, TrainConfig(lr=0.1, weight_decay=0.1))
    model.on_epoch_start(0)
    names = dict(model.encoder.named_parameters())
    assert not names["embeddings.word_embeddings.weight"].requires_grad
    assert not names["encoder.layer.0.attention.self.query.weight"].requires_grad
    assert names["encoder.layer.1.attention.self.query.weight"].requires_grad
    before = {k: v.detach().clone() for k, v in names.items()}
    ids, mask = pad_batch(enc.encode_batch(["football goal", "stock"], 24), enc.pad_id)
    model.train()
    model(ids, mask).logits.sum().backward()
    for opt in opts:
        opt.step()
    assert torch.equal(before["embeddings.word_embeddings.weight"], names["embeddings.word_embeddings.weight"])
    assert torch.equal(before["embeddings.position_embeddings.weight"], names["embeddings.position_embeddings.weight"])
    assert torch.equal(before["encoder.layer.0.output.dense.weight"], names["encoder.layer.0.output.dense.weight"])
    assert not torch.equal(before["encoder.layer.1.output.dense.weight"], names["encoder.layer.1.output.dense.weight"])
    model.on_epoch_start(1)
    assert all(p.requires_grad for p in model.parameters())


def test_layerwise_lr_decay_head_lr_and_no_decay_on_biases_and_norms(tiny_models):
    from textsift.config.schema import TrainConfig
    from textsift.engines.trainer import build_optimizers

    model, _ = _build(tiny_models["bert"], layer_lr_decay=0.5, head_lr=0.01)
    opts = build_optimizers(model, TrainConfig(lr=1e-3, weight_decay=0.01))
    assert [type(o).__name__ for o in opts] == ["AdamW", "SparseAdam"]  # sparse word-embedding updates
    lr_of = {id(p): g["lr"] for o in opts for g in o.param_groups for p in g["params"]}
    wd_of = {id(p): g.get("weight_decay", 0.0) for o in opts for g in o.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert lr_of[id(named["classifier.weight"])] == pytest.approx(0.01)
    assert lr_of[id(named["encoder.encoder.layer.1.output.dense.weight"])] == pytest.approx(1e-3)
    assert lr_of[id(named["encoder.encoder.layer.0.output.dense.weight"])] == pytest.approx(5e-4)
    assert lr_of[id(named["encoder.embeddings.word_embeddings.weight"])] == pytest.approx(2.5e-4)
    assert len(lr_of) == len(named)  # every parameter in exactly one group
    for name, p in named.items():  # SparseAdam (the sparse word embedding) has no weight decay
        expected = 0.0 if (p.dim() < 2 or "word_embeddings" in name) else 0.01
        assert wd_of[id(p)] == expected, name
    assert wd_of[id(named["encoder.embeddings.LayerNorm.weight"])] == 0.0


def test_precision_resolution_and_bf16_autocast(tiny_models):
    model, enc = _build(tiny_models["bert"])
    assert resolve_precision("fp32", model, "cpu") is None
    assert resolve_precision("bf16", model, "cpu") is torch.bfloat16
    with pytest.raises(TextsiftError, match="fp16 autocast needs a CUDA GPU"):
        resolve_precision("fp16", model, "cpu")
    from textsift.precision import bf16_fast_on_cpu
    assert resolve_precision("auto", model, "cpu") is (torch.bfloat16 if bf16_fast_on_cpu() else None)
    from textsift.models import build_model
    classic = build_model("textcnn", {}, 50, 3)
    assert resolve_precision("auto", classic, "cpu") is None  # classic models stay fp32 unless asked
    model.amp_dtype = torch.bfloat16
    ids, mask = pad_batch(enc.encode_batch(["football goal"], 24), enc.pad_id)
    with autocast(model, "cpu"):
        assert model(ids, mask).logits.dtype == torch.bfloat16


def test_gradient_checkpointing_gives_the_same_gradients(tiny_models):
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)  # the same head initialisation both times
        model, enc = _build(tiny_models["bert"], gradient_checkpointing=ckpt, dropout=0.0)
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        model.train()
        ids, mask = pad_batch(enc.encode_batch(["football goal", "stock market"], 24), enc.pad_id)
        model(ids, mask).logits.pow(2).sum().backward()
        grads.append(model.encoder.embeddings.position_embeddings.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_truncation_strategies(tiny_models):
    from textsift.tokenizers.hf import truncate

    ids = list(range(10))
    assert truncate(ids, 4, "head", None) == [0, 1, 2, 3]
    assert truncate(ids, 4, "tail", None) == [6, 7, 8, 9]
    assert truncate(ids, 4, "head_tail", 1) == [0, 7, 8, 9]
    assert truncate(ids, 8, "head_tail", None) == [0, 1, 4, 5, 6, 7, 8, 9]  # a quarter from the head
    assert truncate(ids, 20, "tail", None) == ids
    _, enc = _build(tiny_models["bert"], truncation="tail")
    text = " ".join(["football"] * 30 + ["stock"])
    out = enc.encode(text, 8)
    assert len(out) == 8 and out[0] == enc.tokenizer.cls_token_id and out[-1] == enc.tokenizer.sep_token_id
    assert out[-2] == enc.tokenizer.convert_tokens_to_ids("stock")  # the tail is kept
    with pytest.raises(TextsiftError, match="leaves no room for text"):
        enc.encode("goal", 2)


@pytest.mark.parametrize("family,aggregate", [("bert", "mean"), ("xlnet", "max"), ("roberta", "mean")])
def test_chunking_aggregates_window_logits(family, aggregate, tiny_models):
    """Windows cover the whole text with the family's special tokens; the result equals running each
    window on its own (as a separately encoded text) and aggregating."""
    model, enc = _build(tiny_models[family], chunk_size=8, chunk_stride=3, chunk_aggregate=aggregate)
    model.eval()
    words = "football goal stock market chip cloud team price phone code".split()
    text = " ".join(words * 2)
    content = enc.encode(text, 64)  # chunked: content ids, no special tokens
    assert len(content) == len(enc.tokenize_ids([text])[0])
    short = enc.encode("goal", 64)
    ids, mask = pad_batch([content, short], enc.pad_id)
    logits = model(ids, mask).logits
    body = 8 - len(enc.prefix) - len(enc.suffix)
    starts = [0] + [s for s in range(3, len(content), 3) if len(content) > s + body - 3]
    windows = [enc.prefix + content[s:s + body] + enc.suffix for s in starts]
    assert sorted({t for s in starts for t in range(s, min(s + body, len(content)))}) == list(range(len(content)))
    model.params.chunk_size = None
    each = model(*pad_batch(windows, enc.pad_id)).logits
    expected = each.mean(0) if aggregate == "mean" else each.max(0).values
    torch.testing.assert_close(logits[0], expected, atol=1e-5, rtol=1e-4)
    alone = model(*pad_batch([enc.prefix + short + enc.suffix], enc.pad_id)).logits[0]
    torch.testing.assert_close(logits[1], alone, atol=1e-5, rtol=1e-4)


def test_chunked_model_trains_and_predicts_end_to_end(tiny_models, tmp_path):
    from textsift.api import TextClassifier

    rows = make_texts(90, seed=4)
    for r in rows:  # long texts: the topic words sit at the end, beyond one window
        r["text"] = "the a today new big report says about " * 3 + r["text"]
    data = {"train": str(write_jsonl(tmp_path / "tr.jsonl", rows)),
            "dev": str(write_jsonl(tmp_path / "dv.jsonl", make_texts(30, seed=5)))}
    run, metrics = _train(tmp_path, data, tiny_models["bert"], chunk_size=16, chunk_aggregate="max")
    assert json_params(run)["chunk_size"] == 16
    clf = TextClassifier.load(run)
    assert len(clf.predict_proba(rows[0]["text"])) == 3


def json_params(run):
    import json
    return json.loads((run / "model.json").read_text())["params"]


def test_length_bucketed_batches():
    lengths = np.random.default_rng(0).integers(1, 100, size=1000).tolist()
    plain = epoch_batches(lengths, 16, seed=1, epoch=0, bucket=False)
    bucketed = epoch_batches(lengths, 16, seed=1, epoch=0, bucket=True)
    for batches in (plain, bucketed):
        assert sorted(np.concatenate(batches).tolist()) == list(range(1000))  # each example once
    assert len(plain) == len(bucketed) == 63

    def padded(batches):
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padded(bucketed) < 0.6 * padded(plain)
    again = epoch_batches(lengths, 16, seed=1, epoch=0, bucket=True)
    assert all(np.array_equal(a, b) for a, b in zip(bucketed, again))  # a function of (seed, epoch)
    other = epoch_batches(lengths, 16, seed=1, epoch=1, bucket=True)
    assert not all(np.array_equal(a, b) for a, b in zip(bucketed, other))


def test_errors_are_clear(tiny_models, tmp_path, tiny_data):
    from textsift.config.load import load_config

    with pytest.raises(TextsiftError, match="cannot load a tokenizer from"):
        _build(tmp_path / "missing")
    with pytest.raises(TextsiftError, match="more than the encoder's 2 layers"):
        _build(tiny_models["bert"], freeze_layers=3)
    with pytest.raises(TextsiftError, match="shares one set of weights"):
        _build(tiny_models["albert"], freeze_layers=1)
    model, _ = _build(tiny_models["bert"])
    with pytest.raises(TextsiftError, match="do not fit this encoder's 128 positions"):
        model.check_max_length(512)
    cfg = write_config(tmp_path / "bad.yaml", tiny_data, model_name="hf",
                       model={"pretrained": "x", "chunk_stride": 4})
    raw = yaml.safe_load(cfg.read_text())
    raw["model"].pop("embedding_dim")
    cfg.write_text(yaml.safe_dump(raw))
    with pytest.raises(TextsiftError, match="chunk_stride needs chunk_size"):
        load_config(str(cfg))


@pytest.mark.parametrize("bad", [{"pooling": "first"}, {"multisample_dropout": 0}, {"truncation": "middle"},
                                 {"chunk_size": 2}, {"layer_lr_decay": 0}, {"layer_lr_decay": 1.5},
                                 {"unfreeze_after": 1}, {"embedding_dim": 16}, {"dropout": 1.0}])
def test_invalid_params_rejected(bad):
    from pydantic import ValidationError
    from textsift.models.hf import HFParams

    with pytest.raises(ValidationError):
        HFParams(pretrained="x", **bad)


def test_gradients_reach_the_head_and_every_encoder_layer(tiny_models):
    model, enc = _build(tiny_models["roberta"], pooling="mean")
    model.train()
    ids, mask = pad_batch(enc.encode_batch(["football goal", "stock market price"], 24), enc.pad_id)
    model(ids, mask).logits.pow(2).sum().backward()
    for name, p in model.named_parameters():
        if "pooler" in name:  # the checkpoint's own pooler is not used by textsift's pooling
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_fast_dropout_keeps_the_rate_and_scale():
    from textsift.models.base import FastDropout, use_fast_dropout

    torch.manual_seed(0)
    drop = FastDropout(0.1).train()
    out = drop(torch.ones(400_000))
    kept = (out != 0).float().mean().item()
    assert kept == pytest.approx(0.9, abs=0.003)
    assert out[out != 0].unique().tolist() == pytest.approx([1 / 0.9])
    assert torch.equal(drop.eval()(torch.ones(5)), torch.ones(5))
    net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Sequential(torch.nn.Dropout(0.3)))
    assert use_fast_dropout(net) == 2 and all(type(m) is FastDropout for m in (net[0], net[1][0]))
    assert net[1][0].p == 0.3


def test_sparse_embedding_updates_only_touch_the_batch_rows(tiny_models):
    from textsift.config.schema import TrainConfig
    from textsift.engines.trainer import build_optimizers

    model, enc = _build(tiny_models["bert"])
    word = model.encoder.get_input_embeddings()
    assert word.sparse
    opts = build_optimizers(model, TrainConfig(lr=0.1))
    ids, mask = pad_batch(enc.encode_batch(["football goal"], 24), enc.pad_id)
    before = word.weight.detach().clone()
    model.train()
    model(ids, mask).logits.sum().backward()
    for opt in opts:
        opt.step()
    changed = (word.weight.detach() != before).any(1).nonzero().flatten().tolist()
    assert changed == sorted(set(ids.flatten().tolist()))
    dense, _ = _build(tiny_models["bert"], sparse_embeddings=False)
    assert not dense.encoder.get_input_embeddings().sparse


def test_validate_reports_missing_pretrained_folder_and_vectors(tmp_path, tiny_data):
    from textsift.config.load import validate
    from textsift.errors import ConfigError

    raw = {"data": tiny_data, "model": {"name": "hf", "pretrained": str(tmp_path / "nope")}}
    with pytest.raises(ConfigError, match="model.pretrained: folder not found"):
        validate(raw)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no config.json"):
        validate({**raw, "model": {"name": "hf", "pretrained": str(tmp_path / "empty")}})
    with pytest.raises(ConfigError, match="model.vectors: file not found"):
        validate({"data": tiny_data, "model": {"name": "textcnn", "vectors": str(tmp_path / "v.txt")}})
    validate({"data": tiny_data, "model": {"name": "hf", "pretrained": "bert-base-uncased"}})  # a hub name: not checked here
