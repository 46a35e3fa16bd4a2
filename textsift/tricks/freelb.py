"""FreeLB: K ascent steps on the embedding outputs, training on all K losses (Zhu et al. 2020)."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from textsift.registry import TRICKS
from textsift.tricks.adversarial import adversarial_backward, embedding_layer
from textsift.tricks.base import Trick


class FreeLBParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = Field(3, ge=1, description="Ascent steps K; the gradients of all K losses (each divided by K) "
                       "are accumulated.")
    adv_lr: float = Field(0.03, gt=0, description="Step size of each ascent step on the perturbation "
                          "(per example: delta += adv_lr * g / ||g||).")
    adv_init_mag: float = Field(0.0, ge=0, description="Norm bound of the random initial perturbation (uniform on "
                                "real tokens, scaled by 1/sqrt(tokens * dim)); 0 starts from the clean embeddings.")
    max_norm: float = Field(0.0, ge=0, description="Per-example L2 bound of the perturbation; 0 = unbounded.")


@TRICKS.register("freelb", params=FreeLBParams)
class FreeLB(Trick):
    """FreeLB (Zhu et al. 2020): K ascent steps on the embedding outputs, trained on the mean of the K losses.

    Paper: "FreeLB: Enhanced Adversarial Training for Natural Language Understanding" (ICLR 2020).

    As in the paper, the perturbation delta is added to the OUTPUT of the token embedding layer (a
    forward hook; for BERT-like models the word embeddings before positions and LayerNorm, for fastText
    the bag mean), one delta per example and position; the embedding weights are never modified.
    Step t forwards with delta_t and backpropagates ``loss_t * scale / K`` (gradients accumulate in all
    parameters); between steps ``delta += adv_lr * g / ||g||`` (per-example L2), then the per-example
    ``max_norm`` projection. The trainer's clean loss is not trained on (FreeLB's K losses replace it; the
    first one equals it when adv_init_mag is 0), which costs one forward pass per batch; for the same
    reason FreeLB cannot be combined with tricks that compute their own loss (rdrop, multisample_dropout).
    """

    name = "freelb"
    owns_backward = True
    conflicts = ("rdrop", "multisample_dropout")

    def __init__(self, params: Optional[FreeLBParams] = None):
        super().__init__(params or FreeLBParams())
        self._deltas: list[torch.Tensor] = []
        self._calls = 0

    def setup(self, model: nn.Module) -> None:
        self.layer = embedding_layer(model, self.name)

    def backward(self, model: nn.Module, batch: dict, loss: torch.Tensor, loss_fn: Callable) -> None:
        # ``loss`` (the trainer's clean loss) is left alone: the K losses below replace it
        k = self.params.steps
        self._deltas = []
        handle = self.layer.register_forward_hook(self._perturb)
        try:
            for t in range(k):
                self._calls = 0
                adversarial_backward(model, batch, loss_fn, self.loss_scale / k)
                if t < k - 1:
                    self._deltas = [self._ascend(d) for d in self._deltas]
        finally:
            handle.remove()
            self._deltas = []

    def _perturb(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        """Forward hook: embedding output + this call's delta (calls are counted within one forward)."""
        if self._calls == len(self._deltas):
            self._deltas.append(self._initial(module, inputs[0], output))
        delta = self._deltas[self._calls]
        self._calls += 1
        return output + delta.to(output.dtype)

    def _initial(self, module: nn.Module, ids: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        mag = self.params.adv_init_mag
        delta = torch.zeros(output.shape, dtype=torch.float32, device=output.device)
        if mag > 0:
            # FreeLB's L2 init: uniform(-1, 1) on real tokens, times mag / sqrt(tokens * dim), so that
            # ||delta|| <= mag per example. Per-token outputs are (batch, seq, dim); a bag's (batch, dim).
            per_token = output.dim() == ids.dim() + 1
            pad = getattr(module, "padding_idx", None)
            if per_token:
                real = (ids != pad) if pad is not None else torch.ones_like(ids, dtype=torch.bool)  # (batch, seq)
                real = real.unsqueeze(-1).float()  # (batch, seq, 1)
                count = real.flatten(1).sum(1).clamp(min=1) * output.size(-1)  # (batch,)
            else:
                real = torch.ones((), device=output.device)
                count = torch.full((output.size(0),), float(output[0].numel()), device=output.device)
            scale = (mag / count.sqrt()).view(-1, *[1] * (output.dim() - 1))
            delta = delta.uniform_(-1, 1) * real * scale
        return delta.requires_grad_()

    def _ascend(self, delta: torch.Tensor) -> torch.Tensor:
        """One ascent step on ``delta`` along its gradient (per-example L2), then the max_norm projection."""
        p = self.params
        shape = (-1,) + (1,) * (delta.dim() - 1)
        new = delta.detach()
        if delta.grad is not None:
            g = delta.grad
            new = new + p.adv_lr * g / g.flatten(1).norm(dim=1).clamp(min=1e-8).view(shape)
        if p.max_norm > 0:
            norm = new.flatten(1).norm(dim=1).view(shape)
            new = torch.where(norm > p.max_norm, new * (p.max_norm / norm.clamp(min=1e-12)), new)
        return new.requires_grad_()

