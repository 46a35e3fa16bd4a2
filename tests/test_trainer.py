"""The training loop: schedules, accumulation, early stopping, sparse updates, trick hooks."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import write_config
from textsift.cli.main import main
from textsift.config.schema import TrainConfig
from textsift.engines.trainer import Trainer, build_optimizers, build_scheduler
from textsift.errors import TextsiftError
from textsift.models import build_model
from textsift.tricks import Trick


def _lrs(cfg: TrainConfig, total: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, total)
    out = []
    for _ in range(total):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def test_warmup_then_linear_decay():
    lrs = _lrs(TrainConfig(lr=1.0, warmup_steps=4, scheduler="linear"), 20)
    assert lrs[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert lrs[4] == pytest.approx(1.0) and lrs[-1] == pytest.approx(1 / 16)
    assert all(a > b for a, b in zip(lrs[4:], lrs[5:]))


def test_cosine_and_constant_and_warmup_ratio():
    cos = _lrs(TrainConfig(lr=1.0, scheduler="cosine"), 10)
    assert cos[0] == pytest.approx(1.0) and cos[5] == pytest.approx(0.5) and cos[-1] < 0.05
    assert set(_lrs(TrainConfig(lr=0.5, scheduler="constant"), 5)) == {0.5}
    ratio = _lrs(TrainConfig(lr=1.0, warmup_ratio=0.5, scheduler="constant"), 10)
    assert ratio[:5] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]) and ratio[5:] == [1.0] * 5


def _trainer(tmp_path, ids, targets, **train):
    cfg = TrainConfig(progress=False, **train)
    model = build_model("fasttext", {"embedding_dim": 8, "dropout": 0.0, "sparse": False}, 20, 2)
    return Trainer(model, torch.nn.CrossEntropyLoss(), ids, targets, cfg, lambda m: {"accuracy": 0.5},
                   "accuracy", tmp_path, pad_id=0, tensorboard=False)


def test_gradient_accumulation_equals_a_big_batch(tmp_path):
    torch.manual_seed(0)
    ids = [[int(t) for t in torch.randint(2, 20, (int(n),))] for n in torch.randint(1, 6, (16,))]
    targets = torch.randint(0, 2, (16,))
    common = dict(epochs=1, optimizer="sgd", momentum=0.0, lr=0.5, max_grad_norm=None, seed=3)
    torch.manual_seed(1)
    big = _trainer(tmp_path / "a", ids, targets, batch_size=16, **common)
    torch.manual_seed(1)
    small = _trainer(tmp_path / "b", ids, targets, batch_size=8, grad_accum_steps=2, **common)
    big.fit()
    small.fit()
    assert big.step == small.step == 1
    for (name, a), b in zip(big.model.state_dict().items(), small.model.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_early_stopping_stops_and_keeps_the_best(tmp_path, tiny_data):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, train={"epochs": 30, "lr": 0.05,
                                                             "early_stopping": {"patience": 2}},
                       report={"plots": False, "tensorboard": False})
    assert main(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "r")]) == 0
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert len(history) < 30
    scores = [row["dev_accuracy"] for row in history]
    assert metrics["best_epoch"] == scores.index(max(scores)) + 1
    assert len(history) - metrics["best_epoch"] == 2  # stopped after `patience` epochs without improvement
    assert metrics["dev"]["accuracy"] == pytest.approx(max(scores))


def test_sparse_embeddings_get_sparse_adam():
    model = build_model("fasttext", {"embedding_dim": 8}, 50, 3)
    opts = build_optimizers(model, TrainConfig())
    assert [type(o).__name__ for o in opts] == ["AdamW", "SparseAdam"]
    assert opts[1].param_groups[0]["params"][0] is model.embedding.weight
    dense = build_model("fasttext", {"embedding_dim": 8, "sparse": False}, 50, 3)
    assert [type(o).__name__ for o in build_optimizers(dense, TrainConfig())] == ["AdamW"]
    assert [type(o).__name__ for o in build_optimizers(model, TrainConfig(optimizer="sgd"))] == ["SGD"]


def test_weight_decay_skips_biases():
    model = build_model("textcnn", {"embedding_dim": 8, "num_filters": 4}, 30, 2)
    (opt,) = build_optimizers(model, TrainConfig(weight_decay=0.1))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert all((id(p) in decayed) == (p.dim() >= 2) for p in model.parameters())


class DoubleLoss(Trick):
    name = "double"

    def __init__(self):
        self.steps = 0

    def compute_loss(self, model, batch, loss_fn):
        return 2 * loss_fn(model(batch["input_ids"], batch["mask"]).logits, batch["targets"])

    def after_step(self, model, step):
        self.steps = step


class OwnsBackward(Trick):
    owns_backward = True

    def __init__(self, name):
        self.name = name

    def backward(self, model, batch, loss, loss_fn):
        loss.backward()


def test_trick_hooks_are_called(tmp_path):
    ids, targets = [[2, 3], [4, 5, 6], [7]], torch.tensor([0, 1, 0])
    trainer = _trainer(tmp_path, ids, targets, epochs=2, batch_size=2)
    trick = DoubleLoss()
    trainer.tricks = [trick]
    batch = trainer._batch(torch.arange(3).numpy())
    plain = trainer.loss_fn(trainer.model(batch["input_ids"], batch["mask"]).logits, batch["targets"])
    assert trainer.compute_loss(batch).item() == pytest.approx(2 * plain.item())
    trainer.fit()
    assert trick.steps == trainer.step == 4


def test_two_backward_owners_are_rejected(tmp_path):
    model = build_model("fasttext", {"embedding_dim": 4}, 10, 2)
    with pytest.raises(TextsiftError, match="fgm and pgd both take over the backward pass"):
        Trainer(model, torch.nn.CrossEntropyLoss(), [[1]], torch.tensor([0]), TrainConfig(), lambda m: {},
                "accuracy", tmp_path, 0, tricks=[OwnsBackward("fgm"), OwnsBackward("pgd")])


def test_unknown_selection_metric_is_rejected(tmp_path, tiny_data, capsys):
    cfg = write_config(tmp_path / "c.yaml", tiny_data, train={"early_stopping": {"metric": "macro_f2"}})
    assert main(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "r")]) == 2
    assert "did you mean 'macro_f1'" in capsys.readouterr().err
