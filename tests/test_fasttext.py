"""fastText's own start (embedding_init: fasttext) and its SGD recipe train a working model."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import write_config
from textsift.models import build_model


def test_fasttext_init_is_small_uniform_embeddings_and_a_zero_output_layer():
    torch.manual_seed(0)
    model = build_model("fasttext", {"embedding_dim": 20, "embedding_init": "fasttext"}, 300, 4)
    w = model.embedding.weight
    assert w[1:].abs().max() <= 1 / 20 and w[1:].abs().max() > 0.9 / 20  # spread over the whole ±1/dim range
    assert torch.all(w[0] == 0)  # pad row
    assert torch.all(model.head[-1].weight == 0) and torch.all(model.head[-1].bias == 0)
    normal = build_model("fasttext", {"embedding_dim": 20}, 300, 4)
    assert normal.embedding.weight.std() > 0.5  # the default stays torch's N(0, 1)
    with pytest.raises(Exception, match="embedding_init"):
        build_model("fasttext", {"embedding_init": "xavier"}, 300, 4)


def test_fasttext_recipe_sgd_with_a_large_decaying_lr_learns(tmp_path, tiny_data):
    from textsift.cli.main import main

    cfg = write_config(tmp_path / "c.yaml", tiny_data, model={"embedding_init": "fasttext", "dropout": 0.0},
                       train={"optimizer": "sgd", "momentum": 0.0, "lr": 8.0, "max_grad_norm": None,
                              "scheduler": "linear", "epochs": 5, "batch_size": 16},
                       report={"plots": False})
    assert main(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9
