"""Pretrained Hugging Face encoders (BERT, RoBERTa, ALBERT, ELECTRA, XLNet, DeBERTa-v2/v3, MiniLM,
DistilBERT, XLM-R, ERNIE, ...) as one registered model, ``hf``.

``AutoModel`` gives the encoder (its own weights and config), the head is ours: pooling (the
``cls`` token wherever the family puts it, or ``mean`` / ``max`` over real tokens) → dropout →
linear layer, with optional multi-sample dropout (Inoue 2019: the head is applied to several
dropout masks of the pooled vector and the logits averaged, in training only).

Long texts: with ``chunk_size``, the ids from the encoder (no special tokens, up to
``train.max_length`` of them) are cut into windows of ``chunk_size`` positions (special tokens
included) starting every ``chunk_stride`` tokens; each window gets the family's special tokens,
goes through the encoder, and the windows' logits are aggregated (mean or max) into one row per
text. This happens inside ``forward``, so training, evaluation, prediction and export all see it.

Fine-tuning controls (``param_groups``, ``on_epoch_start``): layer-wise learning-rate decay
(Howard & Ruder 2018; Clark et al. 2020), a separate head learning rate, and freezing the
embeddings and the lower N layers for the first K epochs.
"""
from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Literal, Optional

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from textsift.errors import TextsiftError
from textsift.models.base import ModelOutput, TextModel, masked_max, masked_mean, use_fast_dropout
from textsift.registry import MODELS

log = logging.getLogger("textsift")
# Parameter names of the encoder's layer stacks across families: encoder.layer.N (BERT, RoBERTa,
# ELECTRA, DeBERTa, ERNIE, XLM-R), transformer.layer.N (DistilBERT), layer.N (XLNet), h.N / layers.N.
_LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block)\.(\d+)\.")
_EMBEDDING = re.compile(r"embed|mask_emb|word_embedding", re.IGNORECASE)


class HFParams(BaseModel):
    """Parameters of the ``hf`` model."""

    model_config = ConfigDict(extra="forbid")
    pretrained: str = Field(..., description="A local folder written by save_pretrained, or a Hugging Face hub "
                                             "name (needs network the first time).")
    pooling: Literal["cls", "mean", "max"] = Field(
        "cls", description="Sentence vector: the CLS token (first, or last for XLNet), or mean / max over tokens.")
    dropout: Optional[float] = Field(None, ge=0, lt=1, description="Dropout before the head; default: the "
                                                                   "checkpoint's hidden dropout (0.1 for most).")
    multisample_dropout: int = Field(1, ge=1, description="Dropout masks averaged by the head in training "
                                                          "(multi-sample dropout); 1 = plain dropout.")
    truncation: Literal["head", "tail", "head_tail"] = Field(
        "head", description="Which tokens of a long text are kept: the start, the end, or both ends.")
    head_tokens: Optional[int] = Field(None, ge=0, description="head_tail: tokens kept from the start "
                                                               "(default a quarter of train.max_length).")
    chunk_size: Optional[int] = Field(None, ge=4, description="Cut texts into windows of this many positions "
                                      "(special tokens included) and aggregate their logits; train.max_length "
                                      "is then the total number of tokens kept per text. null = no chunking.")
    chunk_stride: Optional[int] = Field(None, ge=1, description="Tokens between window starts; default: half "
                                                                "a window's text tokens (50% overlap).")
    chunk_aggregate: Literal["mean", "max"] = Field("mean", description="How window logits are combined.")
    freeze_embeddings: bool = Field(False, description="Freeze the embedding layer (see unfreeze_after).")
    freeze_layers: int = Field(0, ge=0, description="Freeze the lowest N encoder layers (see unfreeze_after).")
    unfreeze_after: Optional[int] = Field(None, ge=1, description="Unfreeze what freeze_* froze after this many "
                                                                  "epochs; null = keep frozen.")
    layer_lr_decay: float = Field(1.0, gt=0, le=1, description="Layer-wise LR decay: the top layer trains at "
                                  "train.lr, each layer below at this factor times the one above, embeddings last.")
    head_lr: Optional[float] = Field(None, gt=0, description="Learning rate of the pooling head; default train.lr.")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass: "
                                                            "less memory, about 30% slower.")
    sparse_embeddings: bool = Field(True, description="Update only the word-embedding rows of the batch's tokens "
                                    "(lazy Adam): ~10% faster steps on CPU; false = dense AdamW on the whole table.")
    fast_dropout: bool = Field(True, description="Cheaper dropout masks on CPU (same dropout rate): ~5% faster "
                                                 "steps; false = torch's own dropout.")
    structure: Optional[dict] = Field(None, description="Written by `textsift prune`: attention heads and "
                                      "feed-forward neurons kept per layer (`{heads: [...], ffn: [...]}`).")

    @model_validator(mode="after")
    def _check(self):
        if self.chunk_stride is not None and self.chunk_size is None:
            raise ValueError("chunk_stride needs chunk_size (chunking is off without it)")
        if self.unfreeze_after is not None and not (self.freeze_embeddings or self.freeze_layers):
            raise ValueError("unfreeze_after needs freeze_embeddings or freeze_layers (nothing is frozen)")
        return self


def load_encoder_model(source: str, weights: bool = True) -> nn.Module:
    """``AutoModel`` from a folder or hub name, in float32; ``weights=False`` builds it from its config only
    (a run directory holds the config, and its own weights are loaded afterwards)."""
    from textsift.tokenizers.hf import _first_line, quiet_transformers

    quiet_transformers()
    from transformers import AutoConfig, AutoModel

    try:
        if weights:
            return AutoModel.from_pretrained(source, dtype=torch.float32)
        return AutoModel.from_config(AutoConfig.from_pretrained(source), dtype=torch.float32)
    except Exception as err:
        raise TextsiftError(f"model.pretrained: cannot load an encoder from '{source}' ({_first_line(err)}). "
                            "Expected a local folder with config.json and weights (model.safetensors), or, with "
                            "network access, a Hugging Face hub name such as bert-base-uncased") from None


@MODELS.register("hf", params=HFParams)
class HFClassifier(TextModel):
    """Pretrained Hugging Face encoder (AutoModel) + pooling + linear head."""

    pretrained_tokenizer = True  # the encoder brings its tokenizer: the `tokenizer` config section is unused
    prefers_bf16 = True  # transformer matmuls: bf16 autocast by default where the hardware has it

    @property
    def export_dynamic_length(self) -> bool:
        """Windowing (``chunk_size``) computes its window count from the length: exported at a fixed one."""
        return self.params.chunk_size is None

    def __init__(self, params: HFParams, vocab_size: int, num_labels: int, pad_id: int = 0,
                 pretrained_weights: bool = True):
        super().__init__(params, vocab_size, num_labels, pad_id)
        from textsift.tokenizers.hf import load_hf_tokenizer, pad_token_id, special_layout

        self.encoder = load_encoder_model(params.pretrained, weights=pretrained_weights)
        config = self.encoder.config
        tok = load_hf_tokenizer(params.pretrained)
        prefix, suffix = special_layout(tok)
        self.pad_id = pad_token_id(tok)
        self.register_buffer("prefix_ids", torch.tensor(prefix, dtype=torch.long), persistent=False)
        self.register_buffer("suffix_ids", torch.tensor(suffix, dtype=torch.long), persistent=False)
        cls_id = tok.cls_token_id if tok.cls_token_id is not None else tok.bos_token_id
        # Where the pooled "cls" token sits: an index into the prefix (>= 0), or counted back from the
        # end of the real tokens (< 0: XLNet's `x <sep> <cls>` puts it last).
        if cls_id in prefix:
            self.cls_offset = prefix.index(cls_id)
        elif cls_id in suffix:
            self.cls_offset = suffix.index(cls_id) - len(suffix)
        else:
            self.cls_offset = 0
        hidden = getattr(config, "hidden_size", None) or getattr(config, "d_model", None) or config.dim
        drop = params.dropout
        if drop is None:
            drop = next((getattr(config, k) for k in ("hidden_dropout_prob", "dropout", "hidden_dropout")
                         if isinstance(getattr(config, k, None), float)), 0.1)
        self.dropout = nn.Dropout(drop)
        if params.fast_dropout:
            use_fast_dropout(self)
        if params.sparse_embeddings:
            word = self.encoder.get_input_embeddings()
            if isinstance(word, nn.Embedding):
                word.sparse = True  # the trainer gives sparse tables to SparseAdam (see build_optimizers)
        self.classifier = nn.Linear(hidden, num_labels)
        self.initializer_range = getattr(config, "initializer_range", 0.02)
        self.max_positions = getattr(config, "max_position_embeddings", None)
        if params.gradient_checkpointing:
            if not getattr(self.encoder, "supports_gradient_checkpointing", False):
                raise TextsiftError(f"model.gradient_checkpointing: {type(self.encoder).__name__} does not "
                                    "support gradient checkpointing; set it to false")
            kwargs = {"use_reentrant": False}
            if hasattr(self.encoder, "activation_checkpointing_enable"):  # the transformers 5 name
                self.encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
            else:
                self.encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        if params.structure:  # a pruned run: shrink the layers to the saved sizes before its weights load
            from textsift.models.hf_structure import apply_structure
            apply_structure(self.layers(), params.structure)
        self._layer_of = self._map_layers()
        if params.freeze_layers and params.freeze_layers > self.num_layers:
            raise TextsiftError(f"model.freeze_layers: {params.freeze_layers} is more than the encoder's "
                                f"{self.num_layers} layers")
        if params.freeze_layers and not any(d is not None and d >= 1 for d in self._layer_of.values()):
            raise TextsiftError(f"model.freeze_layers: {type(self.encoder).__name__} shares one set of weights "
                                "across its layers (ALBERT), so lower layers cannot be frozen on their own; "
                                "use freeze_embeddings")

    # ---------------------------------------------------------------- structure
    @property
    def num_layers(self) -> int:
        c = self.encoder.config
        return int(getattr(c, "num_hidden_layers", None) or getattr(c, "n_layer", None) or getattr(c, "n_layers", 0))

    def _map_layers(self) -> dict[str, Optional[int]]:
        """Encoder parameter name → depth: 0 = embeddings, i + 1 = layer i, None = above the layers
        (pooler, final norms, shared layers such as ALBERT's)."""
        depth = {}
        for name, _ in self.encoder.named_parameters():
            m = _LAYER.search(name)
            if m:
                depth[name] = int(m.group(1)) + 1
            elif _EMBEDDING.search(name) and "rel_embeddings" not in name:
                depth[name] = 0
            else:
                depth[name] = None
        return depth

    def reset_parameters(self) -> None:
        """Only the head is new; the encoder keeps its pretrained weights."""
        nn.init.normal_(self.classifier.weight, std=self.initializer_range)
        nn.init.zeros_(self.classifier.bias)

    def embedding_layer(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))

    def keep_layers(self, indices: list[int]) -> None:
        """Keep only the encoder layers ``indices`` (0-based, in that order), e.g. to build a shallower
        student from a teacher (DistilBERT / TinyBERT-style initialisation). The config's depth is
        updated, so the run directory's config.json rebuilds the smaller encoder."""
        stack = self._layer_stack()
        if stack is None:
            raise TextsiftError(f"{type(self.encoder).__name__}: no per-layer weights to select from (ALBERT "
                                "shares one layer); use another encoder family")
        n = len(stack)
        bad = [i for i in indices if not 0 <= i < n]
        if bad:
            raise TextsiftError(f"distill.student_layers: {bad} out of range; the teacher has layers 0..{n - 1}")
        kept = nn.ModuleList(stack[i] for i in indices)
        parent_name, _, attr = self._stack_name.rpartition(".")
        setattr(self.encoder.get_submodule(parent_name) if parent_name else self.encoder, attr, kept)
        config = self.encoder.config
        for key in ("num_hidden_layers", "n_layer", "n_layers"):
            if hasattr(config, key):
                setattr(config, key, len(indices))
        for i, layer in enumerate(kept):  # layers that know their index (e.g. for caches) get the new one
            if hasattr(layer, "layer_idx"):
                layer.layer_idx = i
        self._layer_of = self._map_layers()

    def layers(self) -> nn.ModuleList:
        """The encoder's layers; a clear error for encoders that share one layer (ALBERT)."""
        stack = self._layer_stack()
        if stack is None:
            raise TextsiftError(f"{type(self.encoder).__name__}: no per-layer weights (ALBERT shares one layer)")
        return stack

    def _layer_stack(self):
        """The encoder's ModuleList of layers (one entry per layer), or None (shared layers)."""
        for name, module in self.encoder.named_modules():
            if isinstance(module, nn.ModuleList) and len(module) == self.num_layers and \
                    name.rsplit(".", 1)[-1] in ("layer", "layers", "h", "block"):
                self._stack_name = name
                return module
        return None

    # ---------------------------------------------------------------- fine-tuning controls
    def param_groups(self, lr: float) -> list[dict]:
        """Head at ``head_lr`` (or ``lr``); the top layer and everything above the layers at ``lr``; layer
        i at ``lr * decay ** (L - 1 - i)``; embeddings at ``lr * decay ** L``."""
        p, top = self.params, self.num_layers
        groups: dict[float, list] = {}
        for name, param in self.encoder.named_parameters():
            depth = self._layer_of[name]
            scale = 1.0 if depth is None else p.layer_lr_decay ** (top - depth)
            groups.setdefault(lr * min(1.0, scale), []).append(param)
        head = [param for name, param in self.named_parameters() if not name.startswith("encoder.")]
        groups.setdefault(p.head_lr or lr, []).extend(head)
        return [{"params": params, "lr": group_lr} for group_lr, params in sorted(groups.items(), reverse=True)]

    def on_epoch_start(self, epoch: int) -> None:
        """Freeze embeddings / the lowest layers for the first ``unfreeze_after`` epochs (0-based ``epoch``)."""
        p = self.params
        if not (p.freeze_embeddings or p.freeze_layers):
            return
        frozen = p.unfreeze_after is None or epoch < p.unfreeze_after
        for name, param in self.encoder.named_parameters():
            depth = self._layer_of[name]
            in_scope = depth is not None and ((depth == 0 and p.freeze_embeddings) or 1 <= depth <= p.freeze_layers)
            if in_scope:
                param.requires_grad_(not frozen)
        if epoch == 0 or (p.unfreeze_after is not None and epoch == p.unfreeze_after):
            log.info("epoch %d: embeddings%s %s", epoch + 1,
                     f" and the lowest {p.freeze_layers} layers" if p.freeze_layers else "",
                     "frozen" if frozen else "unfrozen")

    # ---------------------------------------------------------------- forward
    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        pooling = self.params.pooling
        if pooling == "mean":
            return masked_mean(hidden, mask)
        if pooling == "max":
            return masked_max(hidden, mask)
        if self.cls_offset >= 0:
            return hidden[:, self.cls_offset]
        index = mask.sum(1) + self.cls_offset  # (batch,) position of the CLS token near the end
        return hidden[torch.arange(hidden.size(0), device=hidden.device), index.clamp(min=0)]

    def _logits(self, pooled: torch.Tensor) -> torch.Tensor:
        n = self.params.multisample_dropout
        if self.training and n > 1:
            return torch.stack([self.classifier(self.dropout(pooled)) for _ in range(n)]).mean(0)
        return self.classifier(self.dropout(pooled))

    features: tuple[bool, bool] = (False, False)  # (hidden states, attentions) in ModelOutput (distillation)

    def output_features(self, hidden: bool, attentions: bool) -> None:
        """Return every layer's hidden states and/or attention maps in ``ModelOutput`` (for intermediate
        distillation). Attention maps need the eager attention kernel (fused ones do not expose them)."""
        if attentions and hasattr(self.encoder, "set_attn_implementation"):
            self.encoder.set_attn_implementation("eager")
        self.features = (hidden, attentions)

    def _encode(self, input_ids: torch.Tensor, mask: torch.Tensor):
        """The encoder's output: ``last_hidden_state`` (batch, seq, hidden), plus ``hidden_states`` and
        ``attentions`` when ``output_features`` asked for them."""
        hidden, attentions = self.features
        return self.encoder(input_ids=input_ids, attention_mask=mask.long(), output_hidden_states=hidden or None,
                            output_attentions=attentions or None)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        if self.params.chunk_size is not None:
            return self._forward_chunks(input_ids, mask)
        out = self._encode(input_ids, mask)
        pooled = self._pool(out.last_hidden_state, mask)  # (batch, hidden)
        return ModelOutput(logits=self._logits(pooled), pooled=pooled, mask=mask,
                           hidden_states=getattr(out, "hidden_states", None), attentions=getattr(out, "attentions", None))

    def _windows(self, input_ids: torch.Tensor, mask: torch.Tensor):
        """Cut content ids (batch, seq) into windows with special tokens: ids and mask of shape
        (batch, windows, chunk_size) and which windows hold any text (batch, windows)."""
        prefix, suffix = self.prefix_ids, self.suffix_ids
        size = self.params.chunk_size
        content = size - len(prefix) - len(suffix)
        if content < 1:
            raise TextsiftError(f"model.chunk_size: {size} leaves no room for text after the "
                                f"{len(prefix) + len(suffix)} special tokens; use a larger chunk_size")
        stride = min(content, self.params.chunk_stride or max(1, content // 2))
        seq = input_ids.size(1)
        lengths = mask.sum(1)  # (batch,)
        n_windows = 1 if seq <= content else math.ceil((seq - content) / stride) + 1
        starts = torch.arange(n_windows, device=input_ids.device) * stride  # (windows,)
        pos = starts[:, None] + torch.arange(content, device=input_ids.device)[None, :]  # (windows, content)
        win_ids = input_ids[:, pos.clamp(max=seq - 1)]  # (batch, windows, content)
        win_len = (lengths[:, None] - starts[None, :]).clamp(0, content)  # (batch, windows)
        # a window that starts inside the previous one's tail adds no new tokens: keep the first only
        valid = (win_len > 0) & ((starts[None, :] == 0) | (lengths[:, None] > starts[None, :] + content - stride))
        valid[:, 0] = True
        n_pre = len(prefix)
        # built from tensors, never from Python batch sizes, so a traced export keeps the batch dynamic
        body = torch.arange(content, device=input_ids.device)[None, None, :] < win_len[..., None]
        ids = torch.where(body, win_ids, torch.full_like(win_ids, self.pad_id))  # (batch, windows, content)
        ids = nn.functional.pad(ids, (n_pre, len(suffix)), value=self.pad_id)  # (batch, windows, chunk)
        col = torch.arange(size, device=input_ids.device)  # (chunk,)
        ids = torch.where(col < n_pre, nn.functional.pad(prefix, (0, size - n_pre)), ids)
        for j in range(len(suffix)):
            ids = torch.where(col == (n_pre + win_len + j)[..., None], suffix[j], ids)
        win_mask = col[None, None, :] < (n_pre + win_len + len(suffix))[..., None]  # (batch, windows, chunk)
        return ids, win_mask, valid

    def _forward_chunks(self, input_ids: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        ids, win_mask, valid = self._windows(input_ids, mask)
        # drop columns that are padding in every window (not when tracing for export: a Python int
        # would be frozen into the graph; the extra columns are masked, so logits are the same)
        width = ids.size(-1) if torch.jit.is_tracing() else int(win_mask[valid].sum(1).max())
        flat_ids, flat_mask = ids[valid][:, :width], win_mask[valid][:, :width]  # (n_valid, width)
        hidden = self._encode(flat_ids, flat_mask).last_hidden_state  # (n_valid, width, hidden)
        pooled = self._pool(hidden, flat_mask)  # (n_valid, hidden)
        logits = self._logits(pooled)  # (n_valid, labels)
        full = logits.new_zeros(valid.shape + logits.shape[-1:])  # (batch, windows, labels)
        full[valid] = logits
        full_pooled = pooled.new_zeros(valid.shape + pooled.shape[-1:])  # (batch, windows, hidden)
        full_pooled[valid] = pooled
        weight = valid.unsqueeze(-1)
        if self.params.chunk_aggregate == "max":
            agg = masked_max(full, valid)
        else:
            agg = (full * weight).sum(1) / weight.sum(1).clamp(min=1)
        return ModelOutput(logits=agg, pooled=masked_mean(full_pooled, valid), mask=mask)

    # ---------------------------------------------------------------- run-directory files
    def save_assets(self, folder: Path) -> None:
        """The encoder's config.json, so the run directory rebuilds the model offline."""
        self.encoder.config.save_pretrained(str(folder))

    def check_max_length(self, max_length: int) -> None:
        """Raise when texts of ``max_length`` tokens cannot fit the encoder's position table."""
        limit = self.max_positions
        size = self.params.chunk_size or max_length
        if limit and limit > 0 and size > limit - (2 if self.encoder.config.model_type in ("roberta", "xlm-roberta") else 0):
            what = "model.chunk_size" if self.params.chunk_size else "train.max_length"
            raise TextsiftError(f"{what}: {size} tokens do not fit this encoder's {limit} positions; lower it"
                                + ("" if self.params.chunk_size else
                                   ", or keep longer texts with model.chunk_size (windows) and train.max_length "
                                   "as the total"))
