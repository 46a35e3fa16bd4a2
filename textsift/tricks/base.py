"""The hook interface between the trainer and training tricks (AllenNLP TrainerCallback style).

A trick overrides only the hooks it needs. It never reaches into private trainer state: it gets the
model, the batch and the loss function through the hook arguments.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn


class Trick:
    """Base class of training tricks (R-Drop, FGM, EMA, ... register subclasses in ``TRICKS``).

    Args:
        params: the trick's validated parameter object (its registry entry's ``params`` class), or None.
    """

    name = "trick"
    owns_backward = False  # two tricks that both own backward cannot be combined
    conflicts: tuple[str, ...] = ()  # names of tricks this one cannot be combined with
    # True for tricks whose ``before_training`` changes the starting weights (NoisyTune): build_tricks
    # runs them first, so that averaging tricks (EMA) start from the weights training starts from.
    changes_initial_weights = False
    # The factor the trainer applied to the loss it passes to ``backward`` (1 / train.grad_accum_steps,
    # times the fp16 loss scale); a trick owning backward multiplies its extra losses by it so they
    # weigh like the given one. The trainer sets it before calling ``backward``; 1.0 otherwise.
    loss_scale = 1.0

    def sync_grads(self, params) -> None:
        """Make ``params``' gradients the whole global batch's before a trick reads them (an adversarial
        direction must follow the same gradient as in one process). Under DDP the trainer replaces this
        with an average over the processes; alone it does nothing."""

    def __init__(self, params=None):
        self.params = params

    def setup(self, model: nn.Module) -> None:
        """Called once when the trainer is built (before a resume restores ``state_dict``)."""

    def before_training(self, model: nn.Module) -> None:
        """Called once before the first step of a fresh run (not on resume), e.g. NoisyTune."""

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


def build_tricks(specs) -> list[Trick]:
    """Tricks from ``train.tricks`` items (``{name, **params}`` dicts or ``TrickConfig`` objects)."""
    from textsift.config.load import validate_params
    from textsift.errors import ConfigError
    from textsift.registry import TRICKS

    tricks = []
    for i, spec in enumerate(specs):
        spec = spec if isinstance(spec, dict) else spec.model_dump()
        entry = TRICKS.entry(spec["name"])
        params, problems = validate_params(entry.params, {k: v for k, v in spec.items() if k != "name"},
                                           f"train.tricks[{i}].")
        if problems:
            raise ConfigError(problems)
        trick = entry.obj(params)
        trick.name = entry.name
        tricks.append(trick)
    clashes = [f"train.tricks: '{b.name}' cannot be combined with '{a.name}'; keep one of them"
               for i, a in enumerate(tricks) for b in tricks[i + 1:] if a.name in b.conflicts or b.name in a.conflicts]
    if clashes:
        raise ConfigError(clashes)
    # Stable: the configured order is kept otherwise (it decides which compute_loss wins).
    tricks.sort(key=lambda t: not t.changes_initial_weights)
    return tricks
