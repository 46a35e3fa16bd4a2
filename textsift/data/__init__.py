"""The data layer: labelled files → ``Example`` records, task inference, dev split, label checks, report.

Typical use (what the trainer does)::

    train, task = load_split(cfg.data.train, cfg.data, cfg.task, limit=cfg.data.limit)
    check_train_labels(train, cfg.data.train)
    if cfg.data.dev:
        dev, _ = load_split(cfg.data.dev, cfg.data, task)
    else:
        train, dev = stratified_split(train, cfg.data.dev_size, split_seed(cfg))
    check_known_labels(dev, sorted({l for e in train for l in e.labels}), "dev", cfg.data.dev)
"""
from textsift.data.readers import (  # noqa: F401
    TASKS, Example, detect_format, infer_task, iter_texts, load_split, read_examples,
)
from textsift.data.split import check_known_labels, check_train_labels, split_seed, stratified_split  # noqa: F401
