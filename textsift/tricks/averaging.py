"""Shared pieces of the weight-averaging tricks (EMA, SWA): which tensors are averaged, swapping averaged
weights in and the raw ones back bit for bit, and checkpoint state by parameter name."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from textsift.errors import TextsiftError


def averaged_parameters(model: nn.Module) -> tuple[list[str], list[nn.Parameter]]:
    """Names and tensors of the floating-point parameters with ``requires_grad`` (when training starts).

    Buffers are not averaged: no model here has running statistics (no BatchNorm), so the live buffers
    are the right ones for averaged weights too, and no BatchNorm update pass is needed."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.is_floating_point()]
    return [n for n, _ in named], [p for _, p in named]


def float_copies(params: list[nn.Parameter]) -> list[torch.Tensor]:
    """float32 copies (averages are kept in float32 whatever the parameter dtype)."""
    return [p.detach().float().clone() for p in params]


class WeightSwap:
    """Loads other values into parameters and puts the originals back exactly (by copy)."""

    def __init__(self):
        self._backup: Optional[list[torch.Tensor]] = None

    @torch.no_grad()
    def swap_in(self, params: list[nn.Parameter], values: list[torch.Tensor]) -> None:
        if self._backup is not None:
            raise RuntimeError("swap_in called twice without restore")
        self._backup = [p.detach().clone() for p in params]
        for p, v in zip(params, values):
            p.copy_(v)

    @torch.no_grad()
    def restore(self, params: list[nn.Parameter]) -> None:
        if self._backup is None:
            return
        for p, v in zip(params, self._backup):
            p.copy_(v)
        self._backup = None


def by_name(names: list[str], tensors: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    return dict(zip(names, tensors))


@torch.no_grad()
def load_by_name(trick: str, names: list[str], targets: list[torch.Tensor], saved: dict) -> None:
    """Copy checkpointed tensors (by parameter name) into ``targets`` (on the model's device)."""
    missing = [n for n in names if n not in saved]
    if missing or len(saved) != len(names):
        raise TextsiftError(f"--resume: the checkpoint's '{trick}' state holds {len(saved)} averaged tensors, the "
                            f"model has {len(names)} (missing e.g. {missing[:3]}); it was written by another "
                            "model configuration")
    for name, target in zip(names, targets):
        target.copy_(saved[name])
