"""Turning encoded texts into padded tensor batches."""
from __future__ import annotations

from itertools import islice
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from textsift.precision import autocast


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


class StreamBatches:
    """Global training batches read from a streaming dataset (``data.StreamingExamples``), encoded as they
    come: at most one batch of ids in memory besides the dataset's shuffle buffer.

    Args:
        dataset: an iterable dataset with ``set_epoch`` and ``__len__``.
        encode: texts -> token id lists.
        targets: label lists -> target tensor.
        batch_size: the global ``train.batch_size``.
    """

    def __init__(self, dataset, encode: Callable, targets: Callable, batch_size: int):
        self.dataset, self.encode, self.targets, self.batch_size = dataset, encode, targets, batch_size

    def __len__(self) -> int:
        return len(self.dataset)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[tuple[list[list[int]], torch.Tensor]]:
        """``(ids, targets)`` of each batch of ``epoch`` after the first ``skip`` (resume: the order is a
        function of (seed, epoch), so skipped batches are read again but not encoded)."""
        self.dataset.set_epoch(epoch)
        examples = iter(self.dataset)
        for chunk in iter(lambda: list(islice(examples, self.batch_size)), []):
            if skip:
                skip -= 1
                continue
            yield self.encode([ex.text for ex in chunk]), self.targets([ex.labels for ex in chunk])


def length_sorted_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> Iterator[np.ndarray]:
    """Index batches of similar lengths (for inference: less padding, same results).

    The texts are sorted by length and cut into consecutive batches of at most ``batch_size``; with
    ``max_tokens``, a batch also ends before the next text would take its padded size (texts x its
    longest length) past ``max_tokens``, so short texts go in large batches and long ones in small
    batches. A single text always makes a batch, however long."""
    lengths = np.asarray(lengths)
    order = np.argsort(lengths, kind="stable")
    if max_tokens is None:
        for start in range(0, len(order), batch_size):
            yield order[start:start + batch_size]
        return
    start = 0
    for end, size in enumerate(np.maximum(lengths[order], 1).tolist()):  # ascending: the newest is the longest
        count = end - start + 1
        if count > 1 and (count > batch_size or count * size > max_tokens):
            yield order[start:end]
            start = end
    if start < len(order):
        yield order[start:]


@torch.no_grad()
def predict_logits(model, encoded: Sequence[Sequence[int]], batch_size: int, pad_id: int,
                   device: torch.device | str = "cpu", max_tokens: int | None = None, pooled: bool = False):
    """Logits ``(n, num_labels)`` for encoded texts, in input order; the model is put in eval mode.
    Batches: ``length_sorted_batches(lengths, batch_size, max_tokens)``. ``pooled=True`` returns
    ``(logits, pooled)``, the second the vectors the head read ``(n, width)``, from the same pass."""
    model.eval()
    out = np.zeros((len(encoded), model.num_labels), dtype=np.float32)
    vectors = None
    for idx in length_sorted_batches([len(x) for x in encoded], batch_size, max_tokens):
        ids, mask = pad_batch([encoded[i] for i in idx], pad_id, model.min_length())
        with autocast(model, device):
            result = model(ids.to(device), mask.to(device))
        out[idx] = result.logits.float().cpu().numpy()
        if pooled:
            if vectors is None:
                vectors = np.zeros((len(encoded), result.pooled.shape[-1]), dtype=np.float32)
            vectors[idx] = result.pooled.float().cpu().numpy()
    if pooled:
        return out, (vectors if vectors is not None else np.zeros((0, 0), dtype=np.float32))
    return out
