"""The autocast precision of forward passes (``train.precision``), shared by the trainer, prediction
and the tricks that run forward passes of their own."""
from __future__ import annotations

import contextlib
import logging
from typing import Optional

import torch


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


def precision_name(dtype: Optional[torch.dtype]) -> str:
    """How logs and banners name a model's ``amp_dtype``: fp32, bf16 autocast or fp16 autocast."""
    return {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}.get(dtype, str(dtype))


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
