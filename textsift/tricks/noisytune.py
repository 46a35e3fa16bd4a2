"""NoisyTune: a little uniform noise on the pretrained weights before fine-tuning (Wu et al. 2022)."""
from __future__ import annotations

from typing import Optional

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from textsift.registry import TRICKS
from textsift.tricks.base import Trick


class NoisyTuneParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    noise_lambda: float = Field(0.15, ge=0, description="Noise intensity: each weight gets "
                                "U(-lambda/2, lambda/2) * std of its parameter tensor.")
    skip_head: bool = Field(True, description="Leave the classifier head alone (it is new, not pretrained; the "
                            "paper perturbs the pretrained weights only).")


def head_module(model: nn.Module) -> Optional[nn.Module]:
    """The classifier head: ``classifier`` of the hf model, ``head`` of the classic ones."""
    for name in ("classifier", "head"):
        module = getattr(model, name, None)
        if isinstance(module, nn.Module):
            return module
    return None


@TRICKS.register("noisytune", params=NoisyTuneParams)
class NoisyTune(Trick):
    """NoisyTune (Wu et al. 2022): uniform noise scaled by each weight tensor's std before fine-tuning.

    Paper: "NoisyTune: A Little Noise Can Help You Finetune Pretrained Language Models Better" (ACL 2022).
    Before the first step, every parameter tensor w gets ``U(-0.5, 0.5) * noise_lambda * std(w)`` added
    element-wise.

    Skipped: tensors with fewer than 2 elements or std 0 (e.g. LayerNorm weights still at 1), frozen
    tensors (they could not adapt to the noise), the head with ``skip_head``, and the padding row of
    embedding tables (it stays as it is). Applied on a fresh run only, never on resume.
    """

    name = "noisytune"
    changes_initial_weights = True

    def __init__(self, params: Optional[NoisyTuneParams] = None):
        super().__init__(params or NoisyTuneParams())

    @torch.no_grad()
    def before_training(self, model: nn.Module) -> None:
        head = head_module(model) if self.params.skip_head else None
        skip = {id(p) for p in head.parameters()} if head is not None else set()
        pad_rows = {id(m.weight): m.padding_idx for m in model.modules()
                    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.padding_idx is not None}
        for p in model.parameters():
            if id(p) in skip or not p.requires_grad or not p.is_floating_point() or p.numel() < 2:
                continue
            std = float(p.float().std())
            if not std > 0:
                continue
            pad = pad_rows.get(id(p))
            kept = p[pad].clone() if pad is not None else None
            p.add_((torch.rand_like(p) - 0.5) * (self.params.noise_lambda * std))
            if kept is not None:
                p[pad] = kept
