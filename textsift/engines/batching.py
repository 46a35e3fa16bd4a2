"""Turning encoded texts into padded tensor batches, and the autocast precision of forward passes."""
from __future__ import annotations

import contextlib
import logging
from typing import Iterator, Optional, Sequence

import numpy as np
import torch


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int, min_length: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence (at least ``min_length``). Returns ids and a True-at-tokens mask."""
    width = max(min_length, max(len(x) for x in ids))
    out = torch.full((len(ids), width), pad_id, dtype=torch.long)  # (batch, seq)
    for row, seq in enumerate(ids):
        out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    mask = torch.arange(width)[None, :] < torch.tensor([len(s) for s in ids])[:, None]  # (batch, seq)
    return out, mask


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of one epoch, a function of (seed, epoch) only, so resume reproduces it exactly."""
    return np.random.default_rng([seed, epoch]).permutation(n)


BUCKET_POOL = 50  # batches per length-sorted pool when bucketing by length


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, bucket: bool) -> list[np.ndarray]:
    """The index batches of one epoch, a function of (lengths, seed, epoch) only (exact resume).

    Without bucketing: consecutive slices of ``epoch_order``. With bucketing: the shuffled order is
    cut into pools of ``BUCKET_POOL`` batches, each pool is sorted by length and cut into batches,
    and the batches are shuffled, so a batch holds texts of similar length (little padding) while
    the epoch stays random (the usual "bucket iterator" of torchtext / AllenNLP)."""
    order = epoch_order(len(lengths), seed, epoch)
    if not bucket:
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    lengths = np.asarray(lengths)
    pool = batch_size * BUCKET_POOL
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    perm = np.random.default_rng([seed, epoch, 1]).permutation(len(batches))
    return [batches[i] for i in perm]


def resolve_precision(precision: str, model, device) -> Optional[torch.dtype]:
    """The autocast dtype for ``train.precision`` (None = plain fp32).

    Raises:
        TextsiftError: fp16 without a CUDA device.
    """
    from textsift.errors import TextsiftError

    device = torch.device(device)
    if precision == "fp32":
        return None
    if precision == "fp16":
        if device.type != "cuda":
            raise TextsiftError("train.precision: fp16 autocast needs a CUDA GPU; on CPU use bf16 "
                                "(fast on CPUs with AVX-512 BF16 or AMX) or fp32")
        return torch.float16
    if precision == "bf16":
        if device.type == "cpu" and not bf16_fast_on_cpu():
            logging.getLogger("textsift").warning(
                "train.precision=bf16: this CPU has no native bf16 matmuls (AVX-512 BF16 / AMX); "
                "it will work but may be slower than fp32")
        return torch.bfloat16
    # auto
    if not getattr(model, "prefers_bf16", False):
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and bf16_fast_on_cpu():
        return torch.bfloat16
    return None


def bf16_fast_on_cpu() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX-512 BF16 or AMX), where bf16 autocast pays off."""
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def autocast(model, device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` with the model's ``amp_dtype``, or a no-op when it has none."""
    dtype = getattr(model, "amp_dtype", None)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Index batches of similar lengths (for inference: less padding, same results)."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def predict_logits(model, encoded: Sequence[Sequence[int]], batch_size: int, pad_id: int,
                   device: torch.device | str = "cpu") -> np.ndarray:
    """Logits ``(n, num_labels)`` for encoded texts, in input order; the model is put in eval mode."""
    model.eval()
    out = np.zeros((len(encoded), model.num_labels), dtype=np.float32)
    for idx in length_sorted_batches([len(x) for x in encoded], batch_size):
        ids, mask = pad_batch([encoded[i] for i in idx], pad_id, model.min_length())
        with autocast(model, device):
            logits = model(ids.to(device), mask.to(device)).logits
        out[idx] = logits.float().cpu().numpy()
    return out
