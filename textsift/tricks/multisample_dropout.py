"""Multi-sample dropout: one encoder pass, several dropout samples of the head (Inoue 2019)."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from textsift.errors import TextsiftError
from textsift.registry import TRICKS
from textsift.tricks.base import Trick


class MultiSampleDropoutParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    samples: int = Field(5, ge=1, description="Dropout samples of the head per batch; the loss is their mean.")


@TRICKS.register("multisample_dropout", params=MultiSampleDropoutParams)
class MultiSampleDropout(Trick):
    """Multi-sample dropout (Inoue 2019): the loss averaged over several dropout samples of the head.

    Paper: "Multi-Sample Dropout for Accelerated Training and Better Generalization" (arXiv 1905.09788).
    The model runs once, its head (dropout + linear, ``model.classify``) ``samples`` times with its own
    dropout mask each, and the loss is the mean of the per-sample losses.

    Only the training loss changes; prediction uses the model as it is (dropout off).
    """

    name = "multisample_dropout"

    def __init__(self, params: Optional[MultiSampleDropoutParams] = None):
        super().__init__(params or MultiSampleDropoutParams())

    def setup(self, model: nn.Module) -> None:
        from textsift.models.base import TextModel

        own_classify = type(model).classify is not TextModel.classify
        if not own_classify and getattr(model, "head", None) is None:
            raise TextsiftError(f"train.tricks: 'multisample_dropout' samples the classifier head's dropout, but "
                                f"model {type(model).__name__} has no separate head; remove the trick or use a "
                                "model with a dropout + linear head (textcnn, fasttext, hf, ...)")

    def compute_loss(self, model: nn.Module, batch: dict, loss_fn: Callable) -> Optional[torch.Tensor]:
        out = model(batch["input_ids"], batch["mask"])
        losses = [loss_fn(model.classify(out.pooled).float(), batch["targets"])  # (batch, num_labels) logits
                  for _ in range(self.params.samples)]
        return torch.stack(losses).mean()
