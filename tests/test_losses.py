"""Losses against torch's reference functions, and weight computation."""
from __future__ import annotations

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
