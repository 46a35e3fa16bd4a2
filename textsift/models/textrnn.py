"""TextRNN (Liu et al. 2016): a (bi)LSTM/GRU over the tokens, pooled into one vector, linear head.

Also holds the recurrent helpers TextRCNN reuses: ``run_rnn`` (packed, so padding never enters the
recurrent state) and ``init_lstm_forget_bias``.
"""
from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textsift.models.base import ClassifierHead, ModelOutput, ModelParams, TextModel, masked_max, masked_mean
from textsift.registry import MODELS

RNN_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


def run_rnn(rnn: nn.LSTM | nn.GRU, x: torch.Tensor, mask: torch.Tensor):
    """Run a batch-first ``rnn`` over the real tokens only.

    Args:
        rnn: a batch-first ``nn.LSTM`` or ``nn.GRU``.
        x: inputs (batch, seq, features), right-padded.
        mask: (batch, seq) bool, True at real tokens.

    Returns:
        ``(outputs, h_n, valid)``: outputs (batch, seq, dirs * hidden), zero at padded positions; the final
        hidden states (layers * dirs, batch, hidden) in batch order; and the mask actually used (an empty
        text counts as one padding token, since packing needs length >= 1).
    """
    lengths = mask.sum(1).clamp(min=1)  # (batch,)
    if not rnn.training and x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        # cast once here, not in every direction's call (and reverse half the bytes)
        return _run_rnn_padded(rnn, x.to(torch.get_autocast_dtype("cpu")), lengths)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, h_n = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))  # (batch, seq, dirs * hidden)
    if isinstance(h_n, tuple):  # LSTM returns (h_n, c_n)
        h_n = h_n[0]
    valid = torch.arange(x.size(1), device=x.device).unsqueeze(0) < lengths.unsqueeze(1)  # (batch, seq)
    return out, h_n, valid


def _run_rnn_padded(rnn: nn.LSTM | nn.GRU, x: torch.Tensor, lengths: torch.Tensor):
    """``run_rnn`` for inference under CPU autocast, with the same results (up to rounding).

    Why by hand: PyTorch's CPU LSTM/GRU reaches oneDNN's bf16 kernels only for padded input; a
    ``PackedSequence`` falls back to a generic loop that autocast does not speed up (~3x slower than
    padded bf16 for a 384-d BiLSTM at batch 32; fp32 packed and padded run alike). Padding after the real
    tokens cannot change a forward state at a real token, so each direction runs as its own padded,
    one-directional call: the forward one on the text as it is, the backward one on every text reversed
    within its own length (padding still last), its outputs reversed back. Layer by layer, because a layer's
    input is both directions of the one below.
    """
    batch, seq = x.shape[:2]
    steps = torch.arange(seq, device=x.device).unsqueeze(0)  # (1, seq)
    valid = steps < lengths.unsqueeze(1)  # (batch, seq)
    # Position t of the reversed text reads position lengths-1-t; padding positions stay where they are.
    flip = torch.where(valid, lengths.unsqueeze(1) - 1 - steps, steps)  # (batch, seq); its own inverse
    rows = torch.arange(batch, device=x.device).unsqueeze(1)  # (batch, 1): x[rows, flip] reverses each text
    last = lengths - 1  # (batch,)
    lstm = isinstance(rnn, nn.LSTM)
    run = torch.lstm if lstm else torch.gru
    directions = ["", "_reverse"] if rnn.bidirectional else [""]
    states, inp = [], x
    cast = _cast_weights(rnn, x.dtype)
    for layer in range(rnn.num_layers):
        outs = []
        for d, suffix in enumerate(directions):
            weights = [cast[f"{kind}_l{layer}{suffix}"] for kind in ("weight_ih", "weight_hh")
                       + (("bias_ih", "bias_hh") if rnn.bias else ())]
            src = inp if d == 0 else inp[rows, flip]  # (indexing copies rows: ~2x faster than gather here)
            h0 = inp.new_zeros(1, batch, rnn.hidden_size)
            out = run(src, (h0, h0) if lstm else h0, weights, rnn.bias, 1, 0.0, False, False, True)[0]
            # The final state is the output at the last real token, in the direction's own reading order.
            states.append(out[rows.squeeze(1), last])  # (batch, hidden)
            outs.append(out if d == 0 else out[rows, flip])
        inp = torch.cat(outs, dim=-1)  # (batch, seq, dirs * hidden)
    out = inp.masked_fill(~valid.unsqueeze(-1), 0.0)  # zero at padded positions, as pad_packed_sequence gives
    return out, torch.stack(states), valid


def _cast_weights(rnn: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The recurrent weights in ``dtype``, cast once and kept on the module until one of them changes.

    Autocast would cast every weight again on every call (its own cache lives only as long as one
    ``autocast`` block, and prediction opens one per batch): a quarter of a BiLSTM's bf16 inference time at
    batch 32. A weight changed in place (``load_state_dict``, an optimizer step) bumps its version counter,
    a new tensor its address; either makes the next call cast afresh.
    """
    params = list(rnn.named_parameters())
    key = (dtype, tuple((p.data_ptr(), p._version) for _, p in params))
    cached = rnn.__dict__.get("_textsift_cast")
    if cached is None or cached[0] != key:
        cached = (key, {name: p.detach().to(dtype) for name, p in params})
        rnn.__dict__["_textsift_cast"] = cached   # a plain attribute: never in state_dict or parameters()
    return cached[1]


def last_states(out: torch.Tensor, valid: torch.Tensor, hidden: int, bidirectional: bool) -> torch.Tensor:
    """Final states of a packed run from its outputs ``out`` (batch, seq, dirs * hidden): the forward
    direction's at the last real token, the backward one's at position 0. Returns (batch, dirs * hidden)."""
    last = (valid.sum(1) - 1).clamp(min=0)  # (batch,)
    forward = out[torch.arange(out.size(0), device=out.device), last, :hidden]  # (batch, hidden)
    return torch.cat([forward, out[:, 0, hidden:]], dim=-1) if bidirectional else forward


def init_lstm_forget_bias(rnn: nn.Module) -> None:
    """Zero LSTM biases but set the forget gate's to 1, so early gradients flow through long texts."""
    if not isinstance(rnn, nn.LSTM):
        return
    with torch.no_grad():
        for name, p in rnn.named_parameters():
            if name.startswith("bias"):
                p.zero_()
                if name.startswith("bias_ih"):  # gates are ordered (input, forget, cell, output)
                    p[rnn.hidden_size:2 * rnn.hidden_size].fill_(1.0)


class RecurrentModel(TextModel):
    """Base of models with an ``self.rnn``: after the generic init, LSTM forget-gate biases start at 1."""

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.params.init != "default":
            init_lstm_forget_bias(self.rnn)


class AttentionPooling(nn.Module):
    """Zhou et al. 2016: ``alpha = softmax(w . tanh(H))`` over real tokens, ``r = tanh(sum_t alpha_t H_t)``."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1, bias=False)  # the vector w, as a Linear so the model's init applies

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(torch.tanh(h)).squeeze(-1)  # (batch, seq)
        alpha = scores.masked_fill(~mask, float("-inf")).softmax(-1)  # (batch, seq); padding gets weight 0
        return torch.tanh(torch.einsum("bs,bsh->bh", alpha, h))  # (batch, hidden)


class TextRNNParams(ModelParams):
    cell: Literal["lstm", "gru"] = Field("lstm", description="Recurrent cell.")
    hidden_size: int = Field(128, ge=1, description="Hidden units per direction.")
    num_layers: int = Field(1, ge=1, description="Stacked recurrent layers.")
    bidirectional: bool = Field(True, description="Read the text in both directions.")
    pooling: Literal["last", "mean", "max", "attention"] = Field(
        "last", description="How token states become one vector: final states (paper), masked mean/max, "
                            "or attention (Zhou et al. 2016, TextRNN_Att).")


@MODELS.register("textrnn", params=TextRNNParams)
class TextRNN(RecurrentModel):
    """TextRNN (Liu et al. 2016): (bi)LSTM/GRU with last/mean/max/attention pooling."""

    def __init__(self, params: TextRNNParams, vocab_size: int, num_labels: int, pad_id: int = 0):
        super().__init__(params, vocab_size, num_labels, pad_id)
        self.embedding = nn.Embedding(vocab_size, params.embedding_dim, padding_idx=pad_id)
        self.rnn = RNN_CELLS[params.cell](
            params.embedding_dim, params.hidden_size, num_layers=params.num_layers,
            bidirectional=params.bidirectional, batch_first=True)
        features = params.hidden_size * (2 if params.bidirectional else 1)
        self.attention = AttentionPooling(features) if params.pooling == "attention" else None
        self.head = ClassifierHead(features, num_labels, params.dropout)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        x = self.embedding(input_ids)  # (batch, seq, emb)
        out, h_n, valid = run_rnn(self.rnn, x, mask)  # (batch, seq, dirs * hidden), (layers * dirs, batch, hidden)
        pooling = self.params.pooling
        if pooling == "last":
            # Top layer's final state of each direction: the forward one saw the whole text left to right,
            # the backward one right to left (packing makes "final" mean the last real token).
            # Read off the top layer's outputs (the same values as h_n, which ONNX export cannot unsort).
            pooled = last_states(out, valid, self.params.hidden_size, self.params.bidirectional)
        elif pooling == "mean":
            pooled = masked_mean(out, valid)
        elif pooling == "max":
            pooled = masked_max(out, valid)
        else:
            pooled = self.attention(out, valid)
        return ModelOutput(logits=self.head(pooled), pooled=pooled, hidden_states=(out,), mask=mask)
