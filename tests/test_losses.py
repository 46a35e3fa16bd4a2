"""Losses against torch's reference functions, and weight computation."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from textsift.errors import ConfigError
from textsift.losses import build_loss
from textsift.losses.base import balanced_weights


def test_ce_with_label_smoothing_and_weights_matches_torch():
    torch.manual_seed(0)
    logits, y = torch.randn(8, 3), torch.tensor([0, 1, 2, 0, 0, 1, 0, 0])
    loss = build_loss("ce", {"label_smoothing": 0.1, "class_weights": [1.0, 2.0, 3.0]}, 3, y)
    ref = F.cross_entropy(logits, y, weight=torch.tensor([1.0, 2.0, 3.0]), label_smoothing=0.1)
    assert loss(logits, y).item() == pytest.approx(ref.item())


def test_balanced_class_weights_are_inverse_frequency():
    y = torch.tensor([0, 0, 0, 1])  # 3 vs 1 -> n / (k * count) = 4/6, 4/2
    assert balanced_weights(y, 2).tolist() == pytest.approx([4 / 6, 2.0])
    loss = build_loss("ce", {"class_weights": "balanced"}, 2, y)
    assert loss.weight.tolist() == pytest.approx([4 / 6, 2.0])


def test_bce_pos_weight_matches_torch():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 3), torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 0, 0]]).float()
    loss = build_loss("bce", {"pos_weight": "balanced"}, 3, y)
    pos = torch.tensor([3.0, 2.0, 1.0])
    expected_pw = (6 - pos) / pos
    assert loss.pos_weight.tolist() == pytest.approx(expected_pw.tolist())
    ref = F.binary_cross_entropy_with_logits(logits, y, pos_weight=expected_pw)
    assert loss(logits, y).item() == pytest.approx(ref.item())


def test_wrong_number_of_weights_is_a_config_error():
    with pytest.raises(ConfigError, match="loss.class_weights: expected 3 numbers"):
        build_loss("ce", {"class_weights": [1.0, 2.0]}, 3, torch.tensor([0, 1, 2]))
    with pytest.raises(ConfigError, match="loss.label_smoothing"):
        build_loss("ce", {"label_smoothing": 1.5}, 3, torch.tensor([0, 1, 2]))
    with pytest.raises(ConfigError, match="loss.gamma: unknown key"):
        build_loss("ce", {"gamma": 2.0}, 3, torch.tensor([0, 1, 2]))


# Hand-computed references: the formulas written out with python floats on tiny inputs, independent of
# the loss code (which works on tensors with log_softmax / logsumexp / logsigmoid).
LOGITS = [[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]]
LABELS = [0, 2, 1]


def _softmax(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def _sigmoid(v):
    return 1 / (1 + math.exp(-v))


def _hand_focal(gamma, alpha=(1.0, 1.0, 1.0)):
    terms = []
    for row, y in zip(LOGITS, LABELS):
        pt = _softmax(row)[y]
        terms.append(-alpha[y] * (1 - pt) ** gamma * math.log(pt))
    return sum(terms) / len(terms)


def test_focal_matches_hand_computed_value_with_alpha():
    logits, y = torch.tensor(LOGITS), torch.tensor(LABELS)
    assert build_loss("focal", {}, 3, y)(logits, y).item() == pytest.approx(_hand_focal(2.0), rel=1e-5)
    loss = build_loss("focal", {"gamma": 1.5, "alpha": [0.25, 1.0, 2.0]}, 3, y)
    assert loss(logits, y).item() == pytest.approx(_hand_focal(1.5, (0.25, 1.0, 2.0)), rel=1e-5)
    # class_weights is the same knob as alpha (one or the other)
    same = build_loss("focal", {"gamma": 1.5, "class_weights": [0.25, 1.0, 2.0]}, 3, y)
    assert same(logits, y).item() == pytest.approx(loss(logits, y).item())


def test_focal_with_gamma_zero_is_cross_entropy():
    torch.manual_seed(0)
    logits, y = torch.randn(16, 5), torch.randint(0, 5, (16,))
    loss = build_loss("focal", {"gamma": 0.0}, 5, y)
    assert loss(logits, y).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)


def test_focal_balanced_alpha_and_saturated_gradients_are_finite():
    y = torch.tensor([0, 0, 0, 1])
    assert build_loss("focal", {"alpha": "balanced"}, 2, y).alpha.tolist() == pytest.approx([4 / 6, 2.0])
    logits = torch.tensor([[100.0, -100.0], [-100.0, 100.0]], requires_grad=True)
    build_loss("focal", {"gamma": 0.5}, 2, y)(logits, torch.tensor([0, 1])).backward()
    assert torch.isfinite(logits.grad).all()


def test_poly_matches_hand_computed_value():
    logits, y = torch.tensor(LOGITS), torch.tensor(LABELS)
    eps, ls, k = 2.0, 0.1, 3
    terms = []
    for row, t in zip(LOGITS, LABELS):
        probs = _softmax(row)
        smoothed = [(1 - ls) * (j == t) + ls / k for j in range(k)]
        ce = -sum(s * math.log(p) for s, p in zip(smoothed, probs))
        pt = sum(s * p for s, p in zip(smoothed, probs))
        terms.append(ce + eps * (1 - pt))
    loss = build_loss("poly", {"epsilon": eps, "label_smoothing": ls}, 3, y)
    assert loss(logits, y).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_poly_with_epsilon_zero_is_ce_and_weights_go_to_the_ce_part():
    torch.manual_seed(0)
    logits, y = torch.randn(16, 4), torch.randint(0, 4, (16,))
    w = [1.0, 2.0, 0.5, 3.0]
    poly0 = build_loss("poly", {"epsilon": 0.0, "label_smoothing": 0.1, "class_weights": w}, 4, y)
    ce = build_loss("ce", {"label_smoothing": 0.1, "class_weights": w}, 4, y)
    assert poly0(logits, y).item() == pytest.approx(ce(logits, y).item(), rel=1e-6)
    poly1 = build_loss("poly", {"class_weights": w}, 4, y)
    pt = logits.softmax(-1)[torch.arange(16), y]
    expected = F.cross_entropy(logits, y, weight=torch.tensor(w)) + (1 - pt).mean()
    assert poly1(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)


MULTI_LOGITS = [[2.0, -1.0, 0.5, -3.0], [-0.5, 1.5, 1.0, 0.2], [0.3, -0.2, -1.0, 0.0]]
MULTI_TARGETS = [[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]  # the last example has no positive label


def test_zlpr_matches_the_explicit_formula():
    terms = []
    for row, ys in zip(MULTI_LOGITS, MULTI_TARGETS):
        neg = sum(math.exp(s) for s, t in zip(row, ys) if not t)
        pos = sum(math.exp(-s) for s, t in zip(row, ys) if t)
        terms.append(math.log(1 + neg) + math.log(1 + pos))
    y = torch.tensor(MULTI_TARGETS).float()
    loss = build_loss("zlpr", {}, 4, y)
    assert loss(torch.tensor(MULTI_LOGITS), y).item() == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_zlpr_is_near_zero_when_positives_and_negatives_are_well_separated():
    y = torch.tensor(MULTI_TARGETS).float()
    logits = (2 * y - 1) * 30  # positives at +30, negatives at -30
    value = build_loss("zlpr", {}, 4, y)(logits, y).item()
    assert 0 <= value < 1e-11
    big = (2 * y - 1) * 1e4  # and stable far beyond exp's range
    assert math.isfinite(build_loss("zlpr", {}, 4, y)(big, y).item())


def _hand_asl(gamma_pos, gamma_neg, clip, weights=(1.0, 1.0, 1.0, 1.0)):
    total = 0.0
    for row, ys in zip(MULTI_LOGITS, MULTI_TARGETS):
        for s, t, w in zip(row, ys, weights):
            p = _sigmoid(s)
            pm = max(p - clip, 0.0)
            total -= w * (t * (1 - p) ** gamma_pos * math.log(p) + (1 - t) * pm ** gamma_neg * math.log(1 - pm))
    return total / len(MULTI_LOGITS)  # summed over labels, mean over the batch


def test_asl_matches_hand_computed_value():
    y = torch.tensor(MULTI_TARGETS).float()
    logits = torch.tensor(MULTI_LOGITS)
    assert build_loss("asl", {}, 4, y)(logits, y).item() == pytest.approx(_hand_asl(0.0, 4.0, 0.05), rel=1e-5)
    w = [1.0, 2.0, 0.5, 3.0]
    loss = build_loss("asl", {"gamma_pos": 1.0, "gamma_neg": 2.0, "clip": 0.2, "class_weights": w}, 4, y)
    assert loss(logits, y).item() == pytest.approx(_hand_asl(1.0, 2.0, 0.2, w), rel=1e-5)


def test_asl_without_focusing_or_margin_is_bce_summed_over_labels():
    torch.manual_seed(0)
    logits, y = torch.randn(8, 5), (torch.rand(8, 5) > 0.6).float()
    loss = build_loss("asl", {"gamma_pos": 0.0, "gamma_neg": 0.0, "clip": 0.0}, 5, y)
    ref = F.binary_cross_entropy_with_logits(logits, y, reduction="sum") / len(logits)
    assert loss(logits, y).item() == pytest.approx(ref.item(), rel=1e-6)


def test_asl_gradients_stay_finite_when_saturated():
    y = torch.tensor([[1.0, 0.0]])
    logits = torch.tensor([[100.0, 100.0]], requires_grad=True)
    build_loss("asl", {"gamma_pos": 0.5, "gamma_neg": 0.5}, 2, y)(logits, y).backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", ["focal", "poly"])
def test_single_label_losses_reject_multi_label_tasks(name):
    with pytest.raises(ConfigError, match=f"loss.name: '{name}' is a single-label loss but this task is "
                                          "multi_label; use bce, zlpr or asl"):
        build_loss(name, {}, 3, torch.tensor([[1, 0, 1]]).float())


@pytest.mark.parametrize("name", ["zlpr", "asl"])
def test_multi_label_losses_reject_single_label_tasks(name):
    with pytest.raises(ConfigError, match=f"loss.name: '{name}' is a multi-label loss but this task is "
                                          "single_label; use ce, focal or poly"):
        build_loss(name, {}, 3, torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("name, params, message", [
    ("focal", {"gamma": -1.0}, "loss.gamma: Input should be greater than or equal to 0"),
    ("focal", {"alpha": [0.5, 0.5]}, "loss.alpha: expected 3 numbers"),
    ("focal", {"alpha": "inverse"}, "loss.alpha: expected a list of 3 numbers or 'balanced'"),
    ("focal", {"alpha": [1, 1, 1], "class_weights": [1, 1, 1]}, "loss.alpha: .*set only one"),
    ("poly", {"epsilon": -2.0}, "loss.epsilon: Input should be greater than or equal to -1"),
    ("poly", {"label_smoothing": 1.0}, "loss.label_smoothing"),
    ("poly", {"gamma": 2.0}, "loss.gamma: unknown key"),
])
def test_bad_single_label_loss_params_are_config_errors(name, params, message):
    with pytest.raises(ConfigError, match=message):
        build_loss(name, params, 3, torch.tensor([0, 1, 2]))


@pytest.mark.parametrize("name, params, message", [
    ("asl", {"gamma_neg": -1.0}, "loss.gamma_neg: Input should be greater than or equal to 0"),
    ("asl", {"clip": 1.0}, "loss.clip: Input should be less than 1"),
    ("asl", {"class_weights": [1.0]}, "loss.class_weights: expected 3 numbers"),
    ("zlpr", {"class_weights": "balanced"}, "loss.class_weights: .*zlpr has no per-label weights"),
])
def test_bad_multi_label_loss_params_are_config_errors(name, params, message):
    with pytest.raises(ConfigError, match=message):
        build_loss(name, params, 3, torch.tensor([[1, 0, 1]]).float())


@pytest.mark.parametrize("name, multi", [("focal", False), ("poly", False), ("zlpr", True), ("asl", True)])
def test_each_loss_trains_the_tiny_task(name, multi, tmp_path, tiny_data, tiny_multi):
    from conftest import write_config
    from textsift.config.load import load_config
    from textsift.engines.train_run import train_run

    cfg = write_config(tmp_path / "c.yaml", tiny_multi if multi else tiny_data, loss={"name": name},
                       train={"epochs": 2, "lr": 0.05}, report={"plots": False, "tensorboard": False})
    dev = train_run(load_config(str(cfg)), tmp_path / "run")["dev"]
    if multi:  # an untrained model with thresholds tuned on dev scores micro-F1 ~0.6 here
        assert dev["micro_f1"] > 0.8, dev
    else:
        assert dev["accuracy"] > 0.8, dev  # chance is 1/3
