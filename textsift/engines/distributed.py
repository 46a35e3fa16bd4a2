"""Multi-process training on PyTorch's own distributed engine (torchrun + DistributedDataParallel).

``torchrun --nproc_per_node N -m textsift train -c CONFIG --run-dir DIR`` starts N copies of textsift with
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (and the rendezvous address) in their environment; ``init()`` joins
them into one process group: gloo on CPU, NCCL when training on CUDA (one process per GPU, the GPU
picked by ``LOCAL_RANK``). Without those variables everything here is a no-op for one process, so the
rest of textsift calls these helpers unconditionally.

Division of labour: every rank reads the data and trains on its slice of each global batch; rank 0
alone writes (run directory, logs, TensorBoard, checkpoints, reports), evaluates, and broadcasts what
the others must agree on (dev metrics, the early-stopping decision, a resumed state).
"""
from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger("textsift")


def env_world_size() -> int:
    """``WORLD_SIZE`` set by torchrun (1 when not launched by it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def enabled() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if enabled() else 0


def world_size() -> int:
    return dist.get_world_size() if enabled() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Rank 0 (or the only process): the one that writes files and logs."""
    return rank() == 0


def init(device: str = "auto") -> bool:
    """Join torchrun's process group when launched by it; returns whether training is distributed.

    ``device`` is ``train.device``: NCCL is used when it resolves to CUDA, gloo otherwise."""
    if env_world_size() <= 1 or enabled():
        return enabled()
    from datetime import timedelta

    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank())
    # rank 0 may spend a while on reports while the others wait in a collective
    dist.init_process_group("nccl" if use_cuda else "gloo", timeout=timedelta(minutes=60))
    if not is_main():  # other ranks keep quiet: warnings and errors only
        logging.getLogger("textsift").setLevel(logging.WARNING)
    return True


def describe() -> str:
    """For the run's log: ``distributed training: N processes, backend B`` (empty for one process)."""
    return f"distributed training: {world_size()} processes, backend {dist.get_backend()}" if enabled() else ""


def shutdown(destroy: bool = True) -> None:
    """Wait for every rank, then leave the process group. ``destroy=False`` is for a process that ends right
    after with ``end_process`` (the CLI under torchrun)."""
    if enabled():
        dist.barrier()
        if destroy:
            dist.destroy_process_group()


def end_process(code: int) -> None:
    """End a torchrun-launched CLI process with ``code`` without the interpreter's teardown. With gloo on
    torch 2.13 a rank sometimes aborted while tearing down ("terminate called without an active
    exception", SIGABRT) after its work was done and every file written, and torchrun then reported the
    finished job as failed; seen twice in 2026-12-05's CI runs, never reproduced alone. Output is
    flushed first. A process not launched by torchrun returns normally."""
    if env_world_size() <= 1:
        return
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def device_for(device: torch.device) -> torch.device:
    """Under DDP on CUDA each process owns the GPU of its ``LOCAL_RANK``."""
    if enabled() and device.type == "cuda":
        return torch.device("cuda", local_rank())
    return device


def barrier() -> None:
    if enabled():
        dist.barrier()


def broadcast_object(obj: Any = None, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; for small things: metrics, decisions, a state)."""
    if not enabled():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce(value: float | torch.Tensor, op: str = "sum") -> float | torch.Tensor:
    """Sum (or max/min) of a number or tensor over ranks; numbers come back as floats."""
    if not enabled():
        return value
    ops = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
    tensor = value.clone() if isinstance(value, torch.Tensor) else torch.tensor(float(value), dtype=torch.float64)
    dist.all_reduce(tensor, op=ops[op])
    return tensor if isinstance(value, torch.Tensor) else float(tensor)


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.parallel.DistributedDataParallel | None:
    """``model`` in DistributedDataParallel (which broadcasts rank 0's weights and buffers to all ranks),
    or None for one process.

    ``find_unused_parameters``: some models leave parameters out of a forward pass (a pretrained
    encoder's pooler, layers frozen for the first epochs by ``model.unfreeze_after``); DDP must not wait
    for their gradients."""
    if not enabled() or not any(p.requires_grad for p in model.parameters()):  # nothing to keep in step
        return None
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)


def average_gradients(params) -> None:
    """Average ``.grad`` over ranks (dense ones in one flat all-reduce, sparse ones one by one).

    Used for steps whose micro-batches ran under ``no_sync()`` through the bare module (tricks that do
    several forward/backward passes, distillation): DDP's reducer expects exactly one forward and one
    backward per synchronised step, so those steps average once here instead."""
    if not enabled():
        return
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    grads = [p.grad for p in params if p.grad is not None]
    dense = [g for g in grads if not g.is_sparse]
    n = world_size()
    if dense:
        flat = _flatten_dense_tensors(dense)
        dist.all_reduce(flat)
        flat /= n
        for g, synced in zip(dense, _unflatten_dense_tensors(flat, dense)):
            g.copy_(synced)
    for g in grads:
        if g.is_sparse:  # gloo reduces sparse tensors; NCCL does not (use dense embeddings on GPUs)
            dist.all_reduce(g)
            g.div_(n)


@contextmanager
def maybe_no_sync(ddp, skip: bool):
    """``ddp.no_sync()`` when ``skip`` (gradient accumulation), otherwise nothing."""
    if ddp is not None and skip:
        with ddp.no_sync():
            yield
    else:
        yield


def rank_slice(n: int) -> tuple[slice, float]:
    """This rank's contiguous share of a global batch of ``n`` examples, and the loss weight that makes
    DDP's gradient average equal the single-process gradient of the whole batch: a rank's mean loss is
    weighted by ``world_size * n_rank / n`` (DDP divides the sum of rank gradients by ``world_size``)."""
    world, r = world_size(), rank()
    if world == 1:
        return slice(0, n), 1.0
    bounds = [n * i // world for i in range(world + 1)]
    share = bounds[r + 1] - bounds[r]
    return slice(bounds[r], bounds[r + 1]), world * share / n
