"""The hook interface between the trainer and training tricks (AllenNLP TrainerCallback style).

A trick overrides only the hooks it needs. It never reaches into private trainer state: it gets the
model, the batch and the loss function through the hook arguments.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn


class Trick:
    """Base class of training tricks (R-Drop, FGM, EMA, ... register subclasses in ``TRICKS``)."""

    name = "trick"
    owns_backward = False  # two tricks that both own backward cannot be combined

    def compute_loss(self, model: nn.Module, batch: dict, loss_fn: Callable) -> Optional[torch.Tensor]:
        """Return a loss to replace the default one, or None to keep the default."""
        return None

    def backward(self, model: nn.Module, batch: dict, loss: torch.Tensor, loss_fn: Callable) -> None:
        """Only called on the (single) trick with ``owns_backward``; must call ``backward()`` itself."""
        raise NotImplementedError

    def after_step(self, model: nn.Module, step: int) -> None:
        """Called after every optimizer step."""

    def swap_in(self, model: nn.Module) -> None:
        """Called before evaluation/saving (e.g. load averaged weights)."""

    def restore(self, model: nn.Module) -> None:
        """Called after evaluation/saving; must undo ``swap_in`` exactly."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
