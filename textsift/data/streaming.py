"""Training data larger than memory (``data.streaming: true``): the training file is read line by line.

``StreamingExamples`` is an iterable dataset over a JSONL/CSV/TSV file: one record at a time (parsed by
``readers.iter_records``, so errors name the file and line exactly as the in-memory reader does), mixed
by a seeded shuffle buffer of ``data.shuffle_buffer`` examples. ``scan`` is the one pass made before
training: it yields the texts (to build the vocabulary from) while it collects the label set, the task
and the example count, so a streaming run learns the same vocabulary and labels as an in-memory run
on the same file.

What a stream cannot give (a held-out dev split, label frequencies for 'balanced' weights, K folds,
teacher logits for every example, a one-pass fit over the corpus) is rejected when the config is
validated (``config/load.py``).
"""
from __future__ import annotations

import logging
import os
import random
from typing import Any, Iterator, Optional

import torch

from textsift.config.schema import DataConfig
from textsift.data.readers import (Example, infer_task, iter_records, no_records_error, parse_labels,
                                   with_ancestors)
from textsift.errors import DataError

log = logging.getLogger("textsift")


class StreamingExamples(torch.utils.data.IterableDataset):
    """Labelled examples of one file, streamed; ``set_epoch`` reseeds the shuffle buffer.

    Args:
        path: the training file.
        cfg: the ``data`` config section (fields, format, ``empty_text``, ``limit``, ``shuffle_buffer``).
        seed: ``train.seed``; an epoch's order is a function of (seed, epoch) only, so resume is exact.
        task: the task, when given in the config; otherwise ``scan`` infers it.
    """

    def __init__(self, path: str | os.PathLike, cfg: DataConfig, seed: int, task: Optional[str] = None):
        super().__init__()
        self.path, self.cfg, self.seed, self.task = str(path), cfg, seed, task
        self.epoch, self.count, self.labels = 0, 0, []

    def __len__(self) -> int:
        """Examples per epoch (known after ``scan``)."""
        return self.count

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _raw(self) -> Iterator[tuple[int, str, Any]]:
        """(line, text, raw label) of the non-empty records, up to ``data.limit``."""
        fmt, records = iter_records(self.path, self.cfg)
        seen = kept = 0
        for line, text, raw in records:
            seen += 1
            if not text:
                if self.cfg.empty_text == "error":
                    raise DataError("expected a non-empty text, found an empty one; remove it or set "
                                    "data.empty_text=skip to drop empty texts", self.path, line)
                continue
            kept += 1
            yield line, text, raw
            if self.cfg.limit is not None and kept >= self.cfg.limit:
                break
        if seen == 0:
            raise no_records_error(self.path, fmt)

    def records(self) -> Iterator[Example]:
        """The examples in file order, labels parsed for ``self.task``."""
        for line, text, raw in self._raw():
            yield Example(text, parse_labels(raw, self.task, self.cfg, (self.path, line)), line, self.path)

    def __iter__(self) -> Iterator[Example]:
        """The examples through a shuffle buffer seeded by (seed, epoch): memory ``data.shuffle_buffer``."""
        rng = random.Random(f"{self.seed}-{self.epoch}")  # str seeds are hashed the same way on every run
        size, buffer = self.cfg.shuffle_buffer, []
        for ex in self.records():
            if len(buffer) < size:
                buffer.append(ex)
                continue
            i = rng.randrange(size)
            yield buffer[i]
            buffer[i] = ex
        rng.shuffle(buffer)
        yield from buffer

    def scan(self) -> Iterator[str]:
        """One pass over the file: yields every training text (for the vocabulary); when exhausted,
        ``count``, ``task`` and ``labels`` (sorted, as ``LabelScheme.from_examples`` orders them) are set.

        Without a configured task, labels are read both ways while streaming (one label per record, and
        split as multi-label) and the task is inferred at the end, as ``readers.infer_task`` does."""
        given, raw_multi, single_error = self.task, False, None
        single, multi, count = set(), set(), 0
        for line, text, raw in self._raw():
            count += 1
            where = (self.path, line)
            if given is not None:
                single.update(parse_labels(raw, given, self.cfg, where))
            else:
                raw_multi = raw_multi or isinstance(raw, list)
                multi.update(parse_labels(raw, "multi_label", self.cfg, where, required=False))
                if not isinstance(raw, list) and single_error is None:
                    try:
                        single.update(parse_labels(raw, "single_label", self.cfg, where))
                    except DataError as e:  # only an error if the file turns out to be single-label
                        single_error = e
            yield text
        self.count = count
        if given is None:
            names = sorted(multi if raw_multi else single)
            self.task = infer_task([Example("", names, 0, self.path)], raw_multi, self.cfg)
            if self.task == "single_label" and single_error is not None:
                raise single_error
            if self.task == "hierarchical":
                names = with_ancestors(names, self.cfg.hierarchy_separator)
            single = set(names)
        self.labels = sorted(single)
        if len(self.labels) < 2:
            found = f"only 1 class ('{self.labels[0]}')" if self.labels else "no labels at all"
            raise DataError(f"expected at least 2 classes in the training labels, found {found} in {count} "
                            "examples; check that data.label_field names the label field", self.path)
        log.info("streamed %s once: %d examples, %d labels (%s)", self.path, count, len(self.labels), self.task)
