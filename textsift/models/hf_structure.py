"""Physical shrinking of a Hugging Face encoder's layers: attention heads and feed-forward neurons are
removed from the weight matrices, not masked, so a pruned model is smaller and faster.

transformers 5 has no ``prune_heads`` any more, and a config cannot say "layer 3 has 5 heads", so the
per-layer sizes are kept in the ``hf`` model's own parameters (``structure``); rebuilding a pruned run
applies the same shrinking to the encoder built from its config before its weights are loaded.

Supported layer layouts (by module names): BERT-style (BERT, RoBERTa, ELECTRA, ERNIE, XLM-R, MiniLM)
and DistilBERT.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from textsift.errors import TextsiftError

# module paths inside one encoder layer: q/k/v/o = attention projections, up/down = feed-forward,
# attn = the module holding the head count attributes
LAYOUTS = {
    "bert": {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "o": "attention.output.dense", "up": "intermediate.dense", "down": "output.dense",
             "attn": "attention.self"},
    "distilbert": {"q": "attention.q_lin", "k": "attention.k_lin", "v": "attention.v_lin",
                   "o": "attention.out_lin", "up": "ffn.lin1", "down": "ffn.lin2", "attn": "attention"},
}


def layer_layout(layer: nn.Module) -> dict:
    """The module-path table that fits ``layer``; a clear error for unsupported families."""
    names = {n for n, _ in layer.named_modules()}
    for layout in LAYOUTS.values():
        if all(path in names for path in layout.values()):
            return layout
    raise TextsiftError(f"{type(layer).__name__}: heads and feed-forward neurons can be pruned in BERT-style "
                        "encoders (BERT, RoBERTa, ELECTRA, ERNIE, XLM-R, MiniLM) and DistilBERT, not this family")


def head_size(layer: nn.Module, layout: dict) -> int:
    attn = layer.get_submodule(layout["attn"])
    size = getattr(attn, "attention_head_size", None) or getattr(attn, "head_dim", None)
    if size is None:  # DistilBERT keeps dim and n_heads
        size = attn.dim // attn.n_heads
    return int(size)


def num_heads(layer: nn.Module, layout: dict) -> int:
    return layer.get_submodule(layout["q"]).out_features // head_size(layer, layout)


def ffn_size(layer: nn.Module, layout: dict) -> int:
    return layer.get_submodule(layout["up"]).out_features


def _shrink_linear(linear: nn.Linear, out_idx: Optional[torch.Tensor] = None,
                   in_idx: Optional[torch.Tensor] = None) -> nn.Linear:
    """A new Linear keeping output rows ``out_idx`` and input columns ``in_idx`` (all when None)."""
    w = linear.weight.detach()
    if out_idx is not None:
        w = w[out_idx]
    if in_idx is not None:
        w = w[:, in_idx]
    new = nn.Linear(w.size(1), w.size(0), bias=linear.bias is not None, dtype=w.dtype, device=w.device)
    with torch.no_grad():
        new.weight.copy_(w)
        if linear.bias is not None:
            new.bias.copy_(linear.bias.detach()[out_idx] if out_idx is not None else linear.bias.detach())
    return new


def _replace(layer: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(layer.get_submodule(parent) if parent else layer, name, module)


def keep_heads(layer: nn.Module, heads: Sequence[int]) -> None:
    """Keep only attention ``heads`` (indices) of ``layer``: q/k/v lose their rows, o its columns."""
    layout = layer_layout(layer)
    if not heads:
        raise TextsiftError("pruning: every layer keeps at least one attention head (drop the layer instead)")
    size = head_size(layer, layout)
    idx = torch.cat([torch.arange(h * size, (h + 1) * size) for h in sorted(heads)])
    for key in ("q", "k", "v"):
        _replace(layer, layout[key], _shrink_linear(layer.get_submodule(layout[key]), out_idx=idx))
    _replace(layer, layout["o"], _shrink_linear(layer.get_submodule(layout["o"]), in_idx=idx))
    attn = layer.get_submodule(layout["attn"])
    for name in ("num_attention_heads", "n_heads", "num_heads"):
        if hasattr(attn, name):
            setattr(attn, name, len(heads))
    if hasattr(attn, "all_head_size"):  # BERT-style
        attn.all_head_size = len(heads) * size
    if hasattr(attn, "n_heads") and hasattr(attn, "dim"):  # DistilBERT splits `dim` into `n_heads`
        attn.dim = len(heads) * size


def keep_neurons(layer: nn.Module, neurons: Sequence[int]) -> None:
    """Keep only feed-forward ``neurons`` (indices of the inner layer) of ``layer``."""
    layout = layer_layout(layer)
    if not neurons:
        raise TextsiftError("pruning: every layer keeps at least one feed-forward neuron")
    idx = torch.as_tensor(sorted(neurons))
    _replace(layer, layout["up"], _shrink_linear(layer.get_submodule(layout["up"]), out_idx=idx))
    _replace(layer, layout["down"], _shrink_linear(layer.get_submodule(layout["down"]), in_idx=idx))


def structure_of(layers: Sequence[nn.Module]) -> dict:
    """Per-layer head and neuron counts: what ``apply_structure`` needs to rebuild the shapes."""
    out = {"heads": [], "ffn": []}
    for layer in layers:
        layout = layer_layout(layer)
        out["heads"].append(num_heads(layer, layout))
        out["ffn"].append(ffn_size(layer, layout))
    return out


def apply_structure(layers: Sequence[nn.Module], structure: dict) -> None:
    """Shrink freshly built ``layers`` to ``structure``'s sizes (the first heads/neurons; the run's
    weights are loaded afterwards)."""
    heads, ffn = structure.get("heads") or [], structure.get("ffn") or []
    if (heads and len(heads) != len(layers)) or (ffn and len(ffn) != len(layers)):
        raise TextsiftError(f"model.structure: sizes for {max(len(heads), len(ffn))} layers, the encoder has "
                            f"{len(layers)}; the run directory was modified by hand")
    for i, layer in enumerate(layers):
        layout = layer_layout(layer)
        if heads and heads[i] != num_heads(layer, layout):
            keep_heads(layer, list(range(heads[i])))
        if ffn and ffn[i] != ffn_size(layer, layout):
            keep_neurons(layer, list(range(ffn[i])))
