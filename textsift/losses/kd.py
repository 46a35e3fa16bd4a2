"""Knowledge-distillation losses: soft targets (logits), temperature and weight schedules, and the
intermediate-feature losses between two transformers.

Soft-target losses (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"):

* ``kl``: single-label; ``KL(softmax(t/T) || softmax(s/T)) * T**2`` per example, averaged. The ``T**2``
  keeps gradient magnitudes comparable across temperatures (Hinton et al.).
* ``mse``: mean squared error between the logits (Ba & Caruana 2014, "Do Deep Nets Really Need to be Deep?").
* ``bce``: multi-label; each label is its own two-class problem, so soft targets are
  ``sigmoid(t/T)`` per label (not a softmax over labels, which would make the labels compete; the
  mistake TextBrewer issue #50 describes), with binary cross-entropy, times ``T**2``.

Temperature schedules (TextBrewer's names), per example, from detached logits:

* ``flsw`` (Wen et al. 2019, arXiv:1911.07471): examples where student and teacher disagree (low
  cosine similarity of their logit vectors) get a lower temperature (sharper targets):
  ``tau = T + beta * (mean(w) - w)``, ``w = (1 - cos(s, t)) ** gamma``.
* ``cwsm``: examples the student is unsure of (low max probability) get a lower temperature:
  ``w = 1 / (max softmax(s) + 1e-3)``, ``tau = T + beta * (mean(w) - w)``.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

KD_LOSSES = ("kl", "mse", "bce")
TEMPERATURE_SCHEDULES = ("constant", "flsw", "cwsm")
WEIGHT_SCHEDULES = ("constant", "linear_decay", "linear_growth")
FEATURE_LOSSES = ("hidden_mse", "cos", "nst_mmd", "attention_mse", "attention_ce")


def temperature(schedule: str, base: float, student: torch.Tensor, teacher: torch.Tensor,
                beta: float = 1.0, gamma: float = 2.0) -> torch.Tensor:
    """Per-example temperatures ``(batch, 1)`` for logits ``(batch, labels)``; never below 0.1."""
    with torch.no_grad():
        s, t = student.detach().float(), teacher.detach().float()
        if schedule == "constant":
            tau = torch.full((s.size(0),), float(base), device=s.device)
        elif schedule == "flsw":
            w = (1 - F.cosine_similarity(s, t, dim=-1, eps=1e-4)).clamp(min=0) ** gamma  # (batch,)
            tau = base + beta * (w.mean() - w)
        elif schedule == "cwsm":
            w = 1.0 / (s.softmax(-1).max(-1).values + 1e-3)  # (batch,)
            tau = base + beta * (w.mean() - w)
        else:
            raise ValueError(f"unknown temperature schedule {schedule!r}; expected one of {TEMPERATURE_SCHEDULES}")
    return tau.clamp(min=0.1).unsqueeze(-1)  # (batch, 1)


def kd_loss(kind: Literal["kl", "mse", "bce"], student: torch.Tensor, teacher: torch.Tensor,
            tau: torch.Tensor) -> torch.Tensor:
    """Soft-target loss of ``student`` logits against ``teacher`` logits, both ``(batch, labels)``, at
    temperatures ``tau`` ``(batch, 1)``; a scalar averaged over examples."""
    s, t = student.float(), teacher.float().detach()
    if kind == "kl":
        log_p_s = F.log_softmax(s / tau, dim=-1)
        p_t = F.softmax(t / tau, dim=-1)
        per_example = (p_t * (torch.log(p_t.clamp(min=1e-12)) - log_p_s)).sum(-1)  # (batch,)
        return (per_example * tau.squeeze(-1) ** 2).mean()
    if kind == "bce":
        per_label = F.binary_cross_entropy_with_logits(s / tau, torch.sigmoid(t / tau), reduction="none")
        return (per_label.mean(-1) * tau.squeeze(-1) ** 2).mean()
    if kind == "mse":
        return F.mse_loss(s, t)
    raise ValueError(f"unknown KD loss {kind!r}; expected one of {KD_LOSSES}")


def schedule_weight(schedule: str, weight: float, progress: float) -> float:
    """``weight`` scaled by the schedule at ``progress`` in [0, 1] (fraction of training steps done)."""
    if schedule == "constant":
        return weight
    if schedule == "linear_decay":
        return weight * (1.0 - progress)
    if schedule == "linear_growth":
        return weight * progress
    raise ValueError(f"unknown weight schedule {schedule!r}; expected one of {WEIGHT_SCHEDULES}")


# ---------------------------------------------------------------- intermediate features
def _masked_token_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of per-token values ``x`` (batch, seq) over real tokens."""
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1)


def feature_loss(kind: str, student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Loss between one student and one teacher feature map over real tokens.

    Hidden states are ``(batch, seq, dim)`` (the student's already projected to the teacher's width);
    attentions are ``(batch, heads, seq, seq)`` probabilities (heads averaged first when the counts differ).
    """
    s, t = student.float(), teacher.float().detach()
    if kind == "hidden_mse":
        return _masked_token_mean((s - t).pow(2).mean(-1), mask)
    if kind == "cos":
        return _masked_token_mean(1 - F.cosine_similarity(s, t, dim=-1), mask)
    if kind == "nst_mmd":
        return _nst_mmd(s, t, mask)
    if s.size(1) != t.size(1):  # attention maps with different head counts: compare the head average
        s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    keys = mask[:, None, None, :]  # (batch, 1, 1, seq): real key positions
    queries = mask[:, None, :].expand(-1, s.size(1), -1)  # (batch, heads, seq)
    if kind == "attention_mse":
        return _masked_token_mean(((s - t).pow(2) * keys).sum(-1) / keys.sum(-1).clamp(min=1), queries)
    if kind == "attention_ce":
        return _masked_token_mean(-(t * torch.log(s.clamp(min=1e-12)) * keys).sum(-1), queries)
    raise ValueError(f"unknown feature loss {kind!r}; expected one of {FEATURE_LOSSES}")


def pooled_loss(kind: Literal["cos", "mse"], student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Loss between pooled vectors ``(batch, dim)`` (the student's already projected to the teacher's width):
    ``cos`` = mean of 1 - cosine similarity, ``mse`` = mean squared error over rows and dimensions."""
    s, t = student.float(), teacher.float().detach()
    if kind == "cos":
        return (1 - F.cosine_similarity(s, t, dim=-1)).mean()
    if kind == "mse":
        return F.mse_loss(s, t)
    raise ValueError(f"unknown pooled loss {kind!r}; expected cos or mse")


def _nst_mmd(s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Neuron selectivity transfer (Huang & Wang 2017): squared MMD with the polynomial kernel
    ``k(x, y) = (x . y)**2`` between the sets of neurons' activation patterns over the tokens."""
    m = mask.unsqueeze(-1).to(s.dtype)  # (batch, seq, 1)
    fs = F.normalize((s * m).transpose(1, 2), dim=-1)  # (batch, dim_s, seq): each neuron over positions
    ft = F.normalize((t * m).transpose(1, 2), dim=-1)  # (batch, dim_t, seq)
    k_ss = (fs @ fs.transpose(1, 2)).pow(2).mean((1, 2))
    k_tt = (ft @ ft.transpose(1, 2)).pow(2).mean((1, 2))
    k_st = (fs @ ft.transpose(1, 2)).pow(2).mean((1, 2))
    return (k_ss + k_tt - 2 * k_st).mean()


class Projections(nn.Module):
    """Learned linear maps from student to teacher hidden widths, one per hidden-state match whose
    widths differ (TinyBERT's W_h); identity where they are equal."""

    def __init__(self, pairs: list[tuple[int, int]]):
        super().__init__()
        self.maps = nn.ModuleList(nn.Linear(s, t) if s != t else nn.Identity() for s, t in pairs)

    def forward(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return self.maps[i](x)
