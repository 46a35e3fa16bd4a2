"""Holding out a dev set, and checking that labels make sense across train / dev / test."""
from __future__ import annotations

import math
from collections import Counter

from textsift.data.readers import Example, preview
from textsift.errors import DataError
from textsift.registry import did_you_mean


def split_seed(cfg) -> int:
    """The seed of the held-out dev split: ``data.split_seed``, else ``train.seed``."""
    return cfg.train.seed if cfg.data.split_seed is None else cfg.data.split_seed


def stratified_split(examples: list[Example], dev_size: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Seeded split of ``examples`` into (train, dev), stratified by each example's first label.

    Classes with a single example always stay in train, and a dev example with a label that ended up
    only in dev is moved back to train, so the dev set never has labels train lacks. Both parts keep
    the file order.

    Args:
        examples: the training examples.
        dev_size: fraction held out (0 < dev_size < 1); at least one example.
        seed: random seed; the same seed gives the same split.
    Raises:
        DataError: fewer than 2 examples, or no example can be held out without losing a class.
    """
    from sklearn.model_selection import train_test_split

    n = len(examples)
    source = examples[0].source if examples else None
    if n < 2:
        raise DataError(f"expected at least 2 examples to hold out a dev set, found {n}; "
                        "add examples or give a dev file with data.dev", source)
    keys = [e.labels[0] if e.labels else "" for e in examples]
    counts = Counter(keys)
    pool = [i for i, k in enumerate(keys) if counts[k] > 1]  # singletons can't be stratified: keep in train
    train_idx = [i for i, k in enumerate(keys) if counts[k] == 1]
    n_dev = min(max(1, math.ceil(dev_size * n)), len(pool) - 1)
    if n_dev < 1:
        pool, train_idx = list(range(n)), []
        n_dev = min(max(1, math.ceil(dev_size * n)), n - 1)
    codes = {k: c for c, k in enumerate(sorted(counts))}  # int class codes: much faster than strings for sklearn
    try:
        rest, dev_idx = train_test_split(pool, test_size=n_dev, random_state=seed,
                                         stratify=[codes[keys[i]] for i in pool])
    except ValueError:  # fewer dev (or train) slots than classes: a plain seeded shuffle
        rest, dev_idx = train_test_split(pool, test_size=n_dev, random_state=seed)
    train_idx += rest
    seen = {label for i in train_idx for label in examples[i].labels}
    kept_dev = []
    for i in sorted(dev_idx):
        if all(label in seen for label in examples[i].labels):
            kept_dev.append(i)
        else:  # its label would be unknown to the model
            train_idx.append(i)
            seen.update(examples[i].labels)
    if not kept_dev:
        raise DataError(f"cannot hold out a dev set: almost every class has a single example ({n} examples, "
                        f"{len(counts)} classes); add examples or give a dev file with data.dev", source)
    return [examples[i] for i in sorted(train_idx)], [examples[i] for i in kept_dev]


def check_train_labels(train: list[Example], path: str | None) -> None:
    """Raise ``DataError`` when train has fewer than two classes (nothing to learn)."""
    counts = Counter(label for e in train for label in e.labels)
    if len(counts) >= 2:
        return
    found = f"only 1 class ('{next(iter(counts))}')" if counts else "no labels at all"
    n = f"{len(train)} example" + ("s" if len(train) != 1 else "")
    raise DataError(f"expected at least 2 classes in the training labels, found {found} in {n}; check that the "
                    "file holds every class and that data.label_field names the label field", path)


def check_known_labels(examples: list[Example], known: list[str], split_name: str, path: str | None) -> None:
    """Raise ``DataError`` naming the first label of ``examples`` that is not in ``known`` (train's labels).

    Args:
        examples: dev or test examples.
        known: the labels seen in train.
        split_name: ``"dev"`` or ``"test"``, used in the message.
        path: the file the examples came from.
    """
    known_set = set(known)
    bad = [(e, label) for e in examples for label in e.labels if label not in known_set]
    if not bad:
        return
    e, label = bad[0]
    unseen = list(dict.fromkeys(lab for _, lab in bad))
    records = len({id(x) for x, _ in bad})
    also = f"; other unseen labels: {preview(unseen[1:], 5)}" if len(unseen) > 1 else ""
    where = f"{records} {split_name} records have" if records > 1 else f"1 {split_name} record has"
    raise DataError(f"expected {split_name} labels that occur in train, found '{label}'{did_you_mean(label, known)} "
                    f"({where} labels train never had{also}); known labels: {preview(sorted(known), 20)}; "
                    "fix the label, or add training examples with it", path or e.source, e.line)
