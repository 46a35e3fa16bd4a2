"""Shared pieces of the adversarial tricks (FGM, PGD, FreeLB, AWP): gradient bookkeeping, bit-exact
backups of the weight rows an attack changes, and the adversarial forward/backward pass.

Embedding tables may have sparse gradients (``sparse=True``: fastText, the ``hf`` word embeddings); a
sparse COO gradient holds only the rows the batch looked up, so an attack perturbs (and backs up)
those rows alone.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from textsift.errors import TextsiftError


def embedding_layer(model: nn.Module, trick: str) -> nn.Module:
    """The model's token embedding module, or a clear error for models without one."""
    layer = model.embedding_layer() if hasattr(model, "embedding_layer") else None
    if layer is None or not isinstance(getattr(layer, "weight", None), torch.Tensor):
        raise TextsiftError(f"train.tricks: '{trick}' perturbs the token embeddings, but model "
                            f"{type(model).__name__} has no token embedding layer; use it with an embedding "
                            "model (textcnn, fasttext, hf, ...) or use awp, which perturbs the weights")
    return layer


def embedding_weight(model: nn.Module, trick: str) -> nn.Parameter:
    """The embedding table that FGM/PGD move along its gradient (it must get one)."""
    weight = embedding_layer(model, trick).weight
    if not weight.requires_grad:
        raise TextsiftError(f"train.tricks: '{trick}' moves the embedding table along its gradient, but the "
                            "table is frozen (model.freeze_embeddings) and gets none; unfreeze it or use "
                            "freelb, which perturbs the embedding outputs")
    return weight


def trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def take_grads(params: Sequence[nn.Parameter]) -> list[Optional[torch.Tensor]]:
    """Remove and return each parameter's ``.grad`` (left None), so that the next backward gives this
    micro-batch's gradients alone, not the sum with earlier micro-batches of a gradient accumulation."""
    grads = [p.grad for p in params]
    for p in params:
        p.grad = None
    return grads


def put_grads(params: Sequence[nn.Parameter], grads: Sequence[Optional[torch.Tensor]]) -> None:
    for p, g in zip(params, grads):
        p.grad = g


def add_grads(params: Sequence[nn.Parameter], earlier: Sequence[Optional[torch.Tensor]]) -> None:
    """Give back gradients removed by ``take_grads``: ``grad = earlier + grad`` (autograd's own order)."""
    for p, old in zip(params, earlier):
        if old is None:
            continue
        if p.grad is None:
            p.grad = old
        elif old.is_sparse or p.grad.is_sparse:
            p.grad = old + p.grad
        else:
            p.grad = old.add_(p.grad)


def grad_rows(grad: torch.Tensor) -> tuple[Optional[torch.Tensor], torch.Tensor]:
    """``(rows, values)`` of a gradient: a sparse COO one gives its touched rows (coalesced, so a row
    looked up twice appears once with the summed gradient) and their values, shape (rows, dim); a dense
    one gives ``(None, grad)``, meaning the whole table."""
    if grad.is_sparse:
        grad = grad.coalesce()
        return grad.indices()[0], grad.values()
    return None, grad


def unit(values: torch.Tensor) -> Optional[torch.Tensor]:
    """``values / ||values||`` (L2 over all elements), or None for a zero or non-finite gradient."""
    norm = float(values.norm())
    return values / norm if norm > 0 and math.isfinite(norm) else None


class RowBackup:
    """Copies of the rows of a weight that an attack changes, put back bit for bit by ``restore``
    (by copying, never by subtracting the perturbation, which would leave rounding errors).

    ``rows=None`` stands for the whole weight (dense gradients); otherwise only the given rows are
    copied, and rows seen for the first time in a later step are added to the copy.
    """

    def __init__(self, weight: torch.Tensor):
        self.weight = weight
        self.rows: Optional[torch.Tensor] = None  # (n,) row ids, or None with ``saved`` the whole weight
        self.saved: Optional[torch.Tensor] = None

    def save(self, rows: Optional[torch.Tensor]) -> None:
        w = self.weight.detach()
        if self.saved is None:
            self.rows, self.saved = rows, (w if rows is None else w[rows]).clone()
        elif self.rows is None:
            return  # the whole weight is saved already
        elif rows is None:
            whole = w.clone()
            whole[self.rows] = self.saved
            self.rows, self.saved = None, whole
        else:
            new = rows[~torch.isin(rows, self.rows)]
            if len(new):
                self.rows = torch.cat([self.rows, new])
                self.saved = torch.cat([self.saved, w[new].clone()])

    def current(self) -> torch.Tensor:
        """The saved rows' current values (same order as ``saved``)."""
        w = self.weight.detach()
        return w if self.rows is None else w[self.rows]

    @torch.no_grad()
    def write(self, values: torch.Tensor) -> None:
        """Set the saved rows to ``values`` (same order as ``saved``)."""
        if self.rows is None:
            self.weight.copy_(values)
        else:
            self.weight.index_copy_(0, self.rows, values.to(self.weight.dtype))

    @torch.no_grad()
    def add(self, rows: Optional[torch.Tensor], delta: torch.Tensor) -> None:
        """Save ``rows`` if new, then add ``delta`` (rows, dim) to them (the whole weight for ``rows=None``)."""
        self.save(rows)
        if rows is None:
            self.weight.add_(delta.to(self.weight.dtype))
        else:
            self.weight.index_add_(0, rows, delta.to(self.weight.dtype))

    @torch.no_grad()
    def project(self, epsilon: float) -> None:
        """Pull the total perturbation back onto the L2 ball of radius ``epsilon`` around the saved rows."""
        if self.saved is None:
            return
        r = self.current().float() - self.saved.float()
        norm = float(r.norm())
        if norm > epsilon:
            self.write(self.saved + r * (epsilon / norm))

    @torch.no_grad()
    def restore(self) -> None:
        if self.saved is not None:
            self.write(self.saved)
        self.rows, self.saved = None, None


def adversarial_backward(model: nn.Module, batch: dict, loss_fn: Callable, scale: float) -> torch.Tensor:
    """Forward the batch again (under the model's autocast, as the trainer does) and backpropagate
    ``loss_fn(logits, targets) * scale``; gradients add to the ones already there. Returns the loss."""
    from textsift.precision import autocast  # the trainer's own autocast rule (bf16 models stay bf16)

    with autocast(model, batch["input_ids"].device):
        logits = model(batch["input_ids"], batch["mask"]).logits  # (batch, num_labels)
        loss = loss_fn(logits.float(), batch["targets"]) * scale
    loss.backward()
    return loss.detach()
