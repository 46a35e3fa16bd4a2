"""The train recipe: config → data → tokenizer → model → Trainer → reports, in a run directory.

This is the one place where components and engines are assembled for training; the CLI and the Python
API call ``train_run`` and add nothing of their own.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from textsift import __version__
from textsift.config.load import to_yaml
from textsift.config.schema import Config
from textsift.engines import distributed
from textsift.errors import TextsiftError
from textsift.registry import did_you_mean
from textsift.rundir import (CONFIG, LABELS, METRICS, MODEL_FILE, MODEL_JSON, RUN, TOKENIZER, create_run_dir,
                             read_json, write_json)

log = logging.getLogger("textsift")
SINGLE_LABEL_METRICS = ("accuracy", "macro_f1", "micro_f1", "weighted_f1", "macro_precision", "macro_recall")
MULTI_LABEL_METRICS = ("micro_f1", "macro_f1", "weighted_f1", "example_f1", "subset_accuracy", "accuracy",
                       "hamming_loss")


def load_datasets(cfg: Config, split_dev: bool = True):
    """Read train/dev/test, infer the task, split dev from train when absent (unless ``split_dev`` is
    False: dev is then None), check labels."""
    from textsift.data import (check_known_labels, check_train_labels, load_split, read_examples, split_seed,
                               stratified_split)

    task = cfg.task or ("hierarchical" if cfg.data.hierarchy else None)  # an edges file means a hierarchy
    train, task = load_split(cfg.data.train, cfg.data, task=task, limit=cfg.data.limit)
    check_train_labels(train, cfg.data.train)
    if cfg.data.dev:
        dev = read_examples(cfg.data.dev, cfg.data, task=task)
    elif not split_dev:
        dev = None
    else:
        train, dev = stratified_split(train, cfg.data.dev_size, split_seed(cfg))
        log.info("no data.dev: holding out %d of %d training examples as dev (data.dev_size=%s)",
                 len(dev), len(train) + len(dev), cfg.data.dev_size)
    known = sorted({label for ex in train for label in ex.labels})
    if dev is not None:
        check_known_labels(dev, known, "dev", cfg.data.dev or cfg.data.train)
    test = _read_checked(cfg, cfg.data.test, task, known, "test") if cfg.data.test else None
    if task == "hierarchical" and cfg.data.hierarchy:
        _apply_edges_file(cfg, {"train": train, "dev": dev or [], "test": test or []})
    return task, train, dev, test


def _read_checked(cfg: Config, path: str, task: str, known, split: str) -> list:
    """A dev or test file read in memory, every label checked against the training labels ``known``."""
    from textsift.data import check_known_labels, read_examples

    examples = read_examples(path, cfg.data, task=task)
    check_known_labels(examples, known, split, path)
    return examples


def _apply_edges_file(cfg: Config, splits: dict) -> None:
    """An edges file defines the hierarchy: every label must be one of its nodes; ancestors are added."""
    from textsift.data.hierarchy import Hierarchy

    hierarchy = Hierarchy.from_edges_file(cfg.data.hierarchy)
    for split, examples in splits.items():
        hierarchy.check_examples(examples, split)
        for ex in examples:
            ex.labels = hierarchy.close(ex.labels)


def default_metric(cfg: Config, multi_label: bool) -> str:
    return cfg.train.early_stopping.metric or ("micro_f1" if multi_label else "accuracy")


@dataclass
class _Run:
    """Everything one training run assembles, passed between its phases."""

    cfg: Config
    run_dir: Path
    task: str
    train: list
    dev: list
    test: Optional[list]
    scheme: Any
    encoder: Any
    model: Any
    trainer: Any
    train_ids: list
    train_targets: torch.Tensor
    dev_data: tuple
    metric: str

    @property
    def eval_batch_size(self) -> int:
        return self.cfg.train.eval_batch_size or 4 * self.cfg.train.batch_size

    def evaluate(self, model, split: Optional[str] = None, examples=None) -> dict:
        """Dev metrics (``split=None``), or metrics plus report files for ``split``."""
        from textsift.engines.evaluation import evaluate_examples

        cfg = self.cfg
        if split is None:
            return evaluate_examples(model, self.scheme, self.encoder, self.dev, cfg.train.max_length,
                                     self.eval_batch_size, self.trainer.device, encoded=self.dev_data[0])
        return evaluate_examples(model, self.scheme, self.encoder, examples, cfg.train.max_length,
                                 self.eval_batch_size, self.trainer.device, self.run_dir / "reports", split,
                                 cfg.report.bad_cases, cfg.report.plots)


def train_run(cfg: Config, run_dir: Path | str, resume: bool = False, splits: Optional[tuple] = None,
              labels: Optional[list] = None) -> dict:
    """Train a model as configured and write a complete run directory. Returns ``metrics.json``'s content.

    ``splits`` = ``(task, train, dev, test)`` examples instead of reading ``cfg.data``, and ``labels`` a
    fixed label order (K-fold: every fold model scores the same labels in the same order)."""
    if cfg.train.kfold and splits is None:
        from textsift.engines.kfold import kfold_run

        return kfold_run(cfg, run_dir, resume)
    if cfg.distill is not None and splits is None:
        from textsift.engines.distill import distill_run

        return distill_run(cfg, run_dir, resume)
    with run_session(cfg, run_dir, resume) as (run_dir, started):
        run = _assemble(cfg, run_dir, resume, splits, labels)
        main = distributed.is_main()
        if main:
            _write_run_json(run_dir, "running", started)
        run.trainer.clock_start = started
        _fit(run, resume)
        if main:  # reports, final weights and metrics.json: rank 0's alone, the others wait for them
            metrics = _finish(run)
            _write_run_json(run_dir, "finished", started)
        return distributed.broadcast_object(metrics if main else None)


@contextmanager
def run_session(cfg: Config, run_dir, resume: bool):
    """A run's setup and teardown, shared by training and distillation: the (new or resumed) run
    directory with its train.log attached, torch threads, seeds. Yields ``(run_dir, start time)``.

    Under torchrun, joins the process group; only rank 0 creates the directory and writes the log."""
    from textsift.engines.trainer import seed_everything

    distributed.init(cfg.train.device)
    run_dir = Path(run_dir) if resume else main_only(create_run_dir, run_dir, default=Path(run_dir))
    handler = _attach_log(run_dir / "train.log")
    if distributed.enabled():
        log.info(distributed.describe())
    try:
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        seed_everything(cfg.train.seed)
        yield run_dir, time.time()
    finally:
        if handler is not None:
            logging.getLogger("textsift").removeHandler(handler)
            handler.close()


def _attach_log(path: Path):
    from textsift.engines.logging_utils import attach_log_file

    return attach_log_file(path) if distributed.is_main() else None


def main_only(fn, *args, default=None):
    """``fn(*args)`` on rank 0 (``default`` on the others); an error there (e.g. an existing run
    directory) is raised on every rank, so none is left waiting in a collective."""
    result, error = default, None
    if distributed.is_main():
        try:
            result = fn(*args)
        except TextsiftError as e:
            error = str(e)
    error = distributed.broadcast_object(error)
    if error:
        raise TextsiftError(error)
    return result


def _assemble(cfg: Config, run_dir: Path, resume: bool, splits=None, labels=None, extra_texts=(),
              model_factory=None, trainer_factory=None, vocab_texts=None) -> _Run:
    """Data, label scheme, tokenizer, model, loss and trainer; the run's static files on a new run.

    Distillation adds ``extra_texts`` (unlabelled: transfer data, augmented copies) after the training
    texts, a ``model_factory(encoder, scheme, params)`` (a student built from its teacher) and a
    ``trainer_factory(**trainer_kwargs)`` (the ``Distiller``); ``vocab_texts`` (default: training + extra
    texts) build a classic model's vocabulary."""
    from textsift.data.labels import LabelScheme
    from textsift.engines.calibration import calibration_enabled
    from textsift.engines.trainer import Trainer, resolve_device
    from textsift.losses import build_loss
    from textsift.models import build_model
    from textsift.precision import precision_name, resolve_precision
    from textsift.tokenizers import build_encoder
    from textsift.tricks import build_tricks

    device = resolve_device(cfg.train.device)
    streaming = cfg.data.streaming and splits is None
    if streaming:  # the vocabulary, labels and task come from one pass over the file
        if cfg.data.hierarchy:
            raise TextsiftError("data.hierarchy: an edges file cannot be used with data.streaming yet (streamed "
                                "examples are not closed under the file's ancestors); give the labels as paths "
                                "(A/B) or set data.streaming: false")
        task, train, dev, test, encoder = _streaming_datasets(cfg)
        scheme = LabelScheme.from_examples(task, (), cfg, train.labels)
    else:
        task, train, dev, test = splits if splits is not None else load_datasets(cfg)
        scheme = LabelScheme.from_examples(task, train, cfg, labels)
    calibration_enabled(cfg, scheme)  # an explicit method that does not fit the task fails before training
    metric = default_metric(cfg, scheme.multi_label)
    known = MULTI_LABEL_METRICS if scheme.multi_label else SINGLE_LABEL_METRICS
    if metric not in known:
        raise TextsiftError(f"train.early_stopping.metric: '{metric}' is not a dev metric of a {task} task"
                            f"{did_you_mean(metric, known) or '.'} Known: {', '.join(known)}")
    if not streaming:
        encoder = build_encoder(cfg, vocab_texts if vocab_texts is not None else
                                [ex.text for ex in train] + list(extra_texts))
    params = _model_params(cfg)
    if model_factory is not None:
        model = model_factory(encoder, scheme, params)
    else:
        model = build_model(cfg.model.name, params, encoder.vocab_size, scheme.num_labels, encoder.pad_id)
    model.check_max_length(cfg.train.max_length)
    extra = {}
    if params.get("vectors"):
        extra["vectors_coverage"] = _load_vectors(model, encoder, params, [] if streaming else
                                                  [ex.text for ex in train])
    if params.get("freeze_embeddings") and hasattr(model, "embedding"):
        model.embedding.weight.requires_grad_(False)
    model.amp_dtype = resolve_precision(cfg.train.precision, model, device)
    resolved = cfg.model_copy(update={"task": task})
    if not resume and distributed.is_main():
        _write_static_files(run_dir, resolved, scheme, encoder, model, extra)
    log.info("task %s, %d labels, %d train / %d dev%s examples, vocabulary %d, model %s with %s parameters, "
             "precision %s", task, scheme.num_labels, len(train), len(dev), f" / {len(test)} test" if test else "",
             encoder.vocab_size, cfg.model.name, f"{sum(p.numel() for p in model.parameters()):,}",
             precision_name(model.amp_dtype))
    max_len = cfg.train.max_length
    if streaming:  # encoded batch by batch while training; no label counts ('balanced' is rejected)
        from textsift.engines.batching import StreamBatches

        train_ids = StreamBatches(train, lambda texts: encoder.encode_batch(texts, max_len), scheme.targets,
                                  cfg.train.batch_size)
        labelled = train_targets = scheme.targets([])
    else:
        train_ids = encoder.encode_batch([ex.text for ex in train] + list(extra_texts), max_len)
        labelled = scheme.targets([ex.labels for ex in train])
        # unlabelled extra texts get placeholder targets; only a distiller's soft targets train on them
        train_targets = torch.cat([labelled, labelled.new_zeros((len(extra_texts),) + labelled.shape[1:])])
    dev_data = (encoder.encode_batch([ex.text for ex in dev], max_len), scheme.targets([ex.labels for ex in dev]))
    loss_fn = build_loss(cfg.loss.name or scheme.default_loss, cfg.loss.model_dump(exclude={"name"}),
                         scheme.num_labels, labelled)
    _attach_hierarchy(loss_fn, scheme, cfg)
    run = _Run(resolved, run_dir, task, train, dev, test, scheme, encoder, model, None, train_ids, train_targets,
               dev_data, metric)
    run.trainer = (trainer_factory or Trainer)(
        model, loss_fn, train_ids, train_targets, cfg.train, run.evaluate, metric, run_dir, encoder.pad_id,
        on_best=lambda m: _save_weights(m, run_dir), tricks=build_tricks(cfg.train.tricks),
        tensorboard=cfg.report.tensorboard)
    return run


def _attach_hierarchy(loss_fn, scheme, cfg: Config) -> None:
    """A hierarchy-aware loss (``mcloss``, ``conditional_bce``) needs the label hierarchy, which only the
    scheme knows."""
    if not hasattr(loss_fn, "set_hierarchy"):
        return
    if getattr(scheme, "descendants", None) is None:
        raise TextsiftError(f"loss.name: '{cfg.loss.name}' needs a label hierarchy; use it with task: hierarchical "
                            "or choose another loss")
    loss_fn.set_hierarchy(scheme.descendants, scheme.parent_matrix)


def _streaming_datasets(cfg: Config):
    """``data.streaming``: the training stream, scanned once for its vocabulary, labels and task, and the
    dev/test files in memory. Returns ``(task, train, dev, test, encoder)``."""
    from textsift.data.streaming import StreamingExamples
    from textsift.tokenizers import build_encoder

    train = StreamingExamples(cfg.data.train, cfg.data, cfg.train.seed, task=cfg.task)
    texts = train.scan()
    encoder = build_encoder(cfg, texts)
    for _ in texts:  # a pretrained tokenizer reads no texts: finish the pass for the labels and count
        pass
    dev = _read_checked(cfg, cfg.data.dev, train.task, train.labels, "dev")
    test = _read_checked(cfg, cfg.data.test, train.task, train.labels, "test") if cfg.data.test else None
    return train.task, train, dev, test, encoder


def _fit(run: _Run, resume: bool) -> None:
    """One-pass fit (e.g. liblinear) or the gradient loop; then multi-label thresholds on dev."""
    cfg, model, trainer = run.cfg, run.model, run.trainer
    one_pass = model.fit_data(run.train_ids, run.train_targets, run.scheme.multi_label, dev=run.dev_data)
    if one_pass and cfg.distill is not None:
        raise TextsiftError(f"distill: model '{cfg.model.name}' was fitted in one pass on the gold labels, so the "
                            "teacher's soft targets cannot train it; use a student trained by gradient steps "
                            "(e.g. tfidf_linear with model.solver: sgd, fasttext or textcnn)")
    if one_pass and cfg.train.tricks:
        raise TextsiftError(f"train.tricks: model '{cfg.model.name}' is fitted in one pass, so training tricks "
                            f"({', '.join(t.name for t in cfg.train.tricks)}) do not apply; remove train.tricks "
                            "or use a model trained by gradient steps")
    if cfg.train.refit and not one_pass:
        raise TextsiftError(f"train.refit: model '{cfg.model.name}' is trained by gradient steps and cannot be "
                            "refitted in one pass (only one-pass models such as tfidf_linear can); "
                            "remove train.refit")
    if one_pass:  # nothing to iterate, checkpoint or resume
        trainer.history = [{"epoch": 1, "step": 0, **{f"dev_{k}": v for k, v in run.evaluate(model).items()}}]
        trainer.best_epoch = 1
    else:
        trainer.fit(resume=resume)
        trainer.load_best()
    model.eval()
    if run.scheme.multi_label and distributed.is_main():  # only rank 0 goes on to the reports
        _tune_thresholds(run)
        write_json(run.run_dir / LABELS, run.scheme.to_dict())


def _finish(run: _Run) -> dict:
    """Reports, optional refit, final weights, metrics.json, history, curves and the model card."""
    cfg, run_dir = run.cfg, run.run_dir
    dev_logits = _fit_temperature(run)  # before any refit too, and before the reports use the probabilities
    metrics = {"dev": run.evaluate(run.model, "dev", run.dev)}  # before any refit: a model that never saw dev
    if cfg.train.refit:
        _refit(run.model, run.train_ids + run.dev_data[0], torch.cat([run.train_targets, run.dev_data[1]]),
               run.scheme, cfg)
    _save_weights(run.model, run_dir)
    if run.test:
        metrics["test"] = run.evaluate(run.model, "test", run.test)
    if dev_logits is not None:
        _write_calibration(run, dev_logits, metrics)
    metrics["best_epoch"], metrics["selection_metric"] = run.trainer.best_epoch, run.metric
    metrics["train_seconds"] = round(run.trainer.run_seconds(), 2)   # a resumed run's earlier processes too
    write_json(run_dir / METRICS, metrics)
    write_json(run_dir / "history.json", run.trainer.history)
    if cfg.report.plots:
        from textsift.reporting.plots import plot_training_curves
        plot_training_curves(run.trainer.history, run_dir / "curves.png")
    _write_model_card(run_dir, cfg, run.scheme, run.model, metrics, (run.train, run.dev, run.test))
    return metrics


def _logits(run: _Run, encoded):
    from textsift.engines.batching import predict_logits

    return predict_logits(run.model, encoded, run.eval_batch_size, run.encoder.pad_id, run.trainer.device)


def _fit_temperature(run: _Run):
    """Temperature scaling on dev (``calibration.method``); returns the dev logits, or None when off."""
    from textsift.engines.calibration import calibration_enabled, fit_and_apply

    if not calibration_enabled(run.cfg, run.scheme):
        return None
    logits = _logits(run, run.dev_data[0])  # (n_dev, num_labels), at T = 1
    fit_and_apply(run.scheme, logits, run.dev_data[1].numpy())
    return logits


def _write_calibration(run: _Run, dev_logits, metrics: dict) -> None:
    """calibration.json, reliability diagrams and the ECE entries of metrics.json (test: the final model)."""
    from textsift.engines.calibration import write_calibration

    splits = {"dev": (dev_logits, run.dev_data[1].numpy())}
    if run.test:
        encoded = run.encoder.encode_batch([ex.text for ex in run.test], run.cfg.train.max_length)
        splits["test"] = (_logits(run, encoded), run.scheme.gold([ex.labels for ex in run.test]))
    write_calibration(run.run_dir, run.scheme.temperature, splits, run.cfg.calibration.bins,
                      run.cfg.report.plots, metrics)


def _refit(model, ids, targets, scheme, cfg: Config) -> None:
    """Fit once more on train + dev with the settings chosen on dev (sklearn's ``refit=True``)."""
    if not model.refit(ids, targets, scheme.multi_label):
        raise TextsiftError(f"train.refit: model '{cfg.model.name}' with these parameters cannot be refitted; "
                            "remove train.refit")
    log.info("refitted on train + dev (%d examples) with the settings chosen on dev", len(ids))


def _model_params(cfg: Config) -> dict:
    """The model's parameters; with pretrained ``vectors``, ``embedding_dim`` defaults to their size."""
    params = {k: v for k, v in cfg.model.model_dump().items() if k != "name"}
    if params.get("vectors"):
        from textsift.models.vectors import vectors_dim

        dim = vectors_dim(params["vectors"], params.get("vectors_format", "auto"))
        given = params.get("embedding_dim")
        if given is not None and given != dim:
            raise TextsiftError(f"model.embedding_dim: {given} does not match the {dim}-dimensional vectors in "
                                f"{params['vectors']}; set model.embedding_dim={dim} or leave it out")
        params["embedding_dim"] = dim
    return params


def _load_vectors(model, encoder, params: dict, texts: list[str]) -> dict:
    """Copy pretrained vectors into the model's embedding rows; log and return the coverage report."""
    from collections import Counter

    from textsift.models.vectors import apply_vectors

    embedding = getattr(model, "embedding", None)
    vocab = getattr(encoder, "vocab", None)
    if embedding is None or not hasattr(encoder, "tokenizer") or not hasattr(vocab, "tokens"):
        raise TextsiftError(f"model.vectors: model '{type(model).__name__}' has no token embedding layer to load "
                            "word vectors into; use them with textcnn, textrnn, textrcnn, dpcnn, fasttext or "
                            "transformer")
    counts = Counter(tok for text in texts for tok in encoder.tokenizer.tokenize(text))
    report = apply_vectors(embedding.weight, vocab, params["vectors"], params.get("vectors_format", "auto"),
                           token_counts=counts or None)  # none when streaming
    log.info("vectors %s: %d of %d vocabulary tokens found (%.1f%%), %.1f%% of training tokens covered",
             params["vectors"], report["vocab_found"], report["vocab_size"], 100 * report["vocab_coverage"],
             100 * report.get("token_coverage", 0.0))
    return report


def _save_weights(model, run_dir: Path) -> None:
    from textsift.engines.checkpoint import atomic_save_safetensors

    atomic_save_safetensors(model.state_dict(), run_dir / MODEL_FILE, metadata={"format": "pt"})


def _write_static_files(run_dir, cfg, scheme, encoder, model, extra: dict) -> None:
    """Files that describe the run and never change during training (written before it starts)."""
    from textsift.engines.checkpoint import atomic_write
    from textsift.rundir import ASSETS

    atomic_write(run_dir / CONFIG, to_yaml(cfg))
    write_json(run_dir / LABELS, scheme.to_dict())
    encoder.save(run_dir / TOKENIZER)
    meta = {"name": cfg.model.name, "params": model.params.model_dump(mode="json"),
            "vocab_size": encoder.vocab_size, "num_labels": scheme.num_labels, "pad_id": encoder.pad_id,
            "parameters": sum(p.numel() for p in model.parameters()), **extra}
    if model.pretrained_tokenizer:  # the encoder's config.json sits next to its tokenizer files
        model.save_assets(run_dir / ASSETS)
        meta["assets"] = ASSETS
    write_json(run_dir / MODEL_JSON, meta)


def _write_run_json(run_dir: Path, status: str, started: float) -> None:
    previous = read_json(run_dir / RUN) if (run_dir / RUN).is_file() else {}
    write_json(run_dir / RUN, {**previous, "status": status, "textsift_version": __version__,
                               "torch_version": torch.__version__,
                               "created": previous.get("created", time.strftime("%Y-%m-%dT%H:%M:%S")),
                               "updated": time.strftime("%Y-%m-%dT%H:%M:%S")})


def _tune_thresholds(run: _Run) -> None:
    """Decision thresholds tuned on dev: per label (each label's F1) or one global (micro-F1)."""
    import numpy as np

    from textsift.engines.evaluation import score_encoded
    from textsift.reporting.metrics import tune_global_threshold, tune_thresholds

    cfg, scheme = run.cfg, run.scheme
    probs, _ = score_encoded(run.model, scheme, run.dev_data[0], run.eval_batch_size, run.encoder.pad_id,
                             run.trainer.device)
    gold = scheme.gold([ex.labels for ex in run.dev])
    if cfg.train.thresholds == "global":
        scheme.thresholds = np.full(scheme.num_labels, tune_global_threshold(gold, probs))
    else:
        scheme.thresholds = tune_thresholds(gold, probs)
    log.info("tuned %s thresholds on dev (mean %.2f)", cfg.train.thresholds, scheme.thresholds.mean())


def _write_model_card(run_dir, cfg, scheme, model, metrics, splits) -> None:
    from textsift.reporting.model_card import fingerprint, write_model_card

    paths = {"train": cfg.data.train, "dev": cfg.data.dev, "test": cfg.data.test}
    if scheme.multi_task:  # every task's own files, with the examples of that task
        tasks = cfg.distill.tasks
        data = {f"{t.name} {split}": fingerprint(getattr(t, split) or t.train, examples=sum(
                    ex.labels[0].startswith(f"{t.name}/") for ex in examples))
                for t in tasks for split, examples in zip(("train", "dev", "test"), splits) if examples}
        title = f"multi-task ({', '.join(t.name for t in tasks)}) {cfg.model.name}"
    else:
        # Examples actually used (after data.limit and the dev split), fingerprinted by their source file.
        data = {split: fingerprint(paths[split] or cfg.data.train, examples=len(examples))
                for split, examples in zip(("train", "dev", "test"), splits) if examples}
        title = f"{Path(cfg.data.train).parent.name or 'textsift'} {cfg.model.name}"
    write_model_card(run_dir, {
        "title": title,
        "task": scheme.task, "labels": scheme.labels,
        "model": {"name": cfg.model.name, "params": model.params.model_dump(mode="json"),
                  "num_parameters": sum(p.numel() for p in model.parameters())},
        "data": data,
        "config": cfg.model_dump(mode="json"),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, dict)},
        "training_time": metrics.get("train_seconds"),
    })
