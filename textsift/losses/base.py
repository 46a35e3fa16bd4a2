"""How a loss is built from config and training data."""
from __future__ import annotations

from typing import Optional, Union

import torch
from pydantic import BaseModel, ConfigDict, Field


class LossParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    class_weights: Optional[Union[list[float], str]] = Field(
        None, description="Per-label weights in label order, or 'balanced' (inverse frequency in train).")


def balanced_weights(targets: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Inverse-frequency weights (sklearn's 'balanced': n / (k * count)), from single- or multi-label targets."""
    counts = targets.sum(0) if targets.dim() == 2 else torch.bincount(targets, minlength=num_labels).float()
    counts = counts.clamp(min=1.0)
    return counts.sum() / (num_labels * counts)


def build_loss(name: str, params: dict, num_labels: int, train_targets: torch.Tensor) -> torch.nn.Module:
    """Build a registered loss; ``train_targets`` lets losses derive class weights from frequencies."""
    from textsift.config.load import validate_params
    from textsift.errors import ConfigError
    from textsift.registry import LOSSES

    entry = LOSSES.entry(name)
    parsed, problems = validate_params(entry.params, params, "loss.")
    if problems:
        raise ConfigError(problems)
    return entry.obj(parsed, num_labels=num_labels, train_targets=train_targets)


def resolve_weights(spec, num_labels: int, train_targets: torch.Tensor, what: str) -> Optional[torch.Tensor]:
    if spec is None:
        return None
    if spec == "balanced":
        return balanced_weights(train_targets, num_labels)
    if isinstance(spec, str):
        from textsift.errors import ConfigError
        raise ConfigError([f"loss.{what}: expected a list of {num_labels} numbers or 'balanced', got {spec!r}"])
    if len(spec) != num_labels:
        from textsift.errors import ConfigError
        raise ConfigError([f"loss.{what}: expected {num_labels} numbers (one per label), got {len(spec)}"])
    return torch.tensor(spec, dtype=torch.float)
