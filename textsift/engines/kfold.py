"""K-fold training: K ordinary runs on stratified folds, out-of-fold (OOF) predictions, an averaged-logit
ensemble of the K models (text_classifier_torch's "model fusion") and a ranked list of training
examples whose label is most likely wrong.

Run directory of ``train.kfold: K``::

    folds/fold-0 ... fold-K-1   complete run directories (each usable alone); fold i's dev set is
                                the i-th held-out part of train
    model.json                  {"name": "ensemble", "members": ["folds/fold-0", ...], "fusion": "mean_logits"}
    labels.json, config.yaml    shared label order (multi-label thresholds tuned on the OOF predictions)
    calibration.json            single-label with data.dev: the temperature of the averaged logits
                                (each fold run also holds its own, fitted on its held-out part)
    oof.jsonl                   every training example once: fold, gold, predicted, probabilities
    suspect_labels.{csv,jsonl}  training examples ranked by how unlikely their label is out of fold
    reports/oof_*               the OOF classification report, confusion matrix, bad cases
    metrics.json                {"folds": [...], "oof": {...}, "dev": {...}, "test": {...}}

Ranking suspects (Northcutt et al. 2021, "Confident Learning", self-confidence ordering): single-label
examples by the OOF probability of their given label, lowest first; multi-label examples by the mean
absolute gap between their 0/1 labels and the OOF probabilities, largest first. Each example is scored
by a model that never saw it, which is what makes the ranking meaningful.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from torch import nn

from textsift.config.schema import Config
from textsift.errors import TextsiftError
from textsift.rundir import CONFIG, LABELS, METRICS, MODEL_JSON, RUN, create_run_dir, read_json, write_json

log = logging.getLogger("textsift")
FOLDS_DIR = "folds"


class EnsembleModel(nn.Module):
    """K loaded runs whose logits are averaged. Each member keeps its own encoder (fold vocabularies differ),
    so scoring goes through ``textsift.engines.evaluation.score``, which encodes texts once per member."""

    def __init__(self, members: list):
        super().__init__()
        self.members = members  # Bundles
        self.models = nn.ModuleList([m.model for m in members])
        self.num_labels = members[0].model.num_labels

    def member_logits(self, texts, batch_size: int, device="cpu") -> np.ndarray:
        """Logits ``(members, n, num_labels)``."""
        from textsift.engines.batching import predict_logits

        return np.stack([predict_logits(m.model, m.encoder.encode_batch(list(texts), m.max_length), batch_size,
                                        m.encoder.pad_id, device) for m in self.members])

    def logits(self, texts, batch_size: int, device="cpu") -> np.ndarray:
        return self.member_logits(texts, batch_size, device).mean(0)


def fold_indices(examples, k: int, seed: int, multi_label: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, held-out) index pairs: stratified by label for single-label tasks, shuffled for
    multi-label ones (sklearn has no multi-label stratification)."""
    from collections import Counter

    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(examples)
    if n < 2 * k:
        raise TextsiftError(f"train.kfold: {k} folds need at least {2 * k} training examples, found {n}")
    if multi_label:
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed % 2**32)
        return list(splitter.split(np.zeros(n)))
    keys = [ex.labels[0] for ex in examples]
    rare = sorted(label for label, c in Counter(keys).items() if c < k)
    if rare:
        log.warning("train.kfold=%d: %d label(s) have fewer than %d examples (%s); their folds cannot all "
                    "hold one", k, len(rare), k, ", ".join(rare[:5]))
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed % 2**32)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the rare-label case, reported above
        return list(splitter.split(np.zeros(n), keys))


def kfold_run(cfg: Config, run_dir: Path | str, resume: bool = False) -> dict:
    """Train ``cfg.train.kfold`` fold models and write the ensemble run directory; returns its metrics.

    Under torchrun every rank trains each fold (DDP); rank 0 alone decides which folds are done, scores
    the held-out parts and writes the ensemble's files."""
    from textsift.config.load import to_yaml
    from textsift.data.labels import LabelScheme
    from textsift.engines import distributed
    from textsift.engines.calibration import calibration_enabled
    from textsift.engines.checkpoint import atomic_write
    from textsift.engines.train_run import _attach_log, load_datasets, main_only, train_run

    distributed.init(cfg.train.device)
    main = distributed.is_main()
    run_dir = Path(run_dir) if resume else main_only(create_run_dir, run_dir, default=Path(run_dir))
    handler = _attach_log(run_dir / "train.log")
    started = time.time()
    try:
        k = cfg.train.kfold
        task, train, dev, test = load_datasets(cfg, split_dev=False)
        scheme = LabelScheme.from_examples(task, train, cfg)
        calibration_enabled(cfg, scheme)  # an explicit method that does not fit the task fails before training
        folds = fold_indices(train, k, cfg.train.seed, scheme.multi_label)
        fold_cfg = cfg.model_copy(deep=True)
        fold_cfg.train.kfold = None
        resolved = cfg.model_copy(update={"task": task})
        if main:
            atomic_write(run_dir / CONFIG, to_yaml(resolved))
            write_json(run_dir / RUN, {"status": "running", "kind": "kfold", "folds": k})
        log.info("%d-fold training on %d examples (%s)", k, len(train), task)
        oof = np.zeros((len(train), scheme.num_labels), dtype=np.float32)
        fold_of = np.full(len(train), -1)
        fold_metrics, members = [], []
        for i, (tr, ho) in enumerate(folds):
            fold_dir = run_dir / FOLDS_DIR / f"fold-{i}"
            done, again = distributed.broadcast_object(_fold_state(fold_dir, resume) if main else None)
            if not done:
                log.info("fold %d/%d: %d train / %d held out", i + 1, k, len(tr), len(ho))
                if main and resume and fold_dir.exists() and not again:  # stopped before its first checkpoint
                    _move_aside(fold_dir)
                train_run(fold_cfg, fold_dir, resume=again,
                          splits=(task, [train[j] for j in tr], [train[j] for j in ho], None), labels=scheme.labels)
            if main:
                fold_metrics.append(_score_fold(cfg, fold_dir, i, tr, ho, train, oof, fold_of))
            members.append(f"{FOLDS_DIR}/fold-{i}")
        if not main:
            return distributed.broadcast_object(None)
        metrics = _ensemble_outputs(cfg, run_dir, scheme, train, dev, test, oof, fold_of, fold_metrics, members)
        metrics["train_seconds"] = round(time.time() - started, 2)
        write_json(run_dir / METRICS, metrics)
        write_json(run_dir / RUN, {"status": "finished", "kind": "kfold", "folds": k,
                                   "updated": time.strftime("%Y-%m-%dT%H:%M:%S")})
        _log_summary(metrics, scheme.multi_label)
        return distributed.broadcast_object(metrics)
    finally:
        if handler is not None:
            logging.getLogger("textsift").removeHandler(handler)
            handler.close()


def _fold_state(fold_dir: Path, resume: bool) -> tuple[bool, bool]:
    """(the fold finished, the fold can resume from a checkpoint)."""
    done = (fold_dir / RUN).is_file() and read_json(fold_dir / RUN).get("status") == "finished"
    return done, resume and (fold_dir / "checkpoints").is_dir()


def _score_fold(cfg: Config, fold_dir: Path, i: int, tr, ho, train, oof: np.ndarray, fold_of: np.ndarray) -> dict:
    """Fold ``i``'s held-out probabilities into ``oof``; returns its dev metrics row."""
    from textsift.engines.evaluation import score
    from textsift.rundir import load_bundle

    bundle = load_bundle(fold_dir)
    held_out = [train[j] for j in ho]
    probs, _ = score(bundle.model, bundle.scheme, bundle.encoder, [ex.text for ex in held_out],
                     bundle.max_length, _eval_batch(cfg))
    oof[ho], fold_of[ho] = probs, i
    return {"fold": i, "n_train": len(tr), "n_held_out": len(ho), **read_json(fold_dir / METRICS)["dev"]}


def _ensemble_outputs(cfg: Config, run_dir: Path, scheme, train, dev, test, oof, fold_of, fold_metrics,
                      members) -> dict:
    """Labels, the ensemble's model.json, OOF outputs and the ensemble's dev/test metrics."""
    from textsift.engines.evaluation import evaluate_examples
    from textsift.engines.train_run import default_metric
    from textsift.rundir import load_bundle

    k = cfg.train.kfold
    if scheme.multi_label:
        _tune_on_oof(cfg, scheme, train, oof)
    write_json(run_dir / LABELS, scheme.to_dict())
    write_json(run_dir / MODEL_JSON, {"name": "ensemble", "members": members, "fusion": "mean_logits",
                                      "num_labels": scheme.num_labels,
                                      "member_model": cfg.model.name})
    metrics = {"kfold": k, "selection_metric": default_metric(cfg, scheme.multi_label), "folds": fold_metrics}
    metrics["oof"] = _oof_outputs(run_dir, cfg, scheme, train, oof, fold_of)
    ensemble = load_bundle(run_dir)
    calibrated = _fit_ensemble_temperature(cfg, ensemble, dev)
    for split, examples in (("dev", dev), ("test", test)):
        if examples:
            metrics[split] = evaluate_examples(ensemble.model, ensemble.scheme, ensemble.encoder, examples,
                                               ensemble.max_length, _eval_batch(cfg), "cpu",
                                               run_dir / "reports", split, cfg.report.bad_cases,
                                               cfg.report.plots)
    if calibrated:
        _write_ensemble_calibration(cfg, run_dir, ensemble, dev, test, metrics)
    return metrics


def _fit_ensemble_temperature(cfg: Config, ensemble, dev) -> bool:
    """Temperature scaling of the averaged logits on data.dev (each fold model is calibrated on its own
    held-out fold, but averaging changes the scale). Without data.dev the ensemble keeps T = 1."""
    from textsift.engines.calibration import calibration_enabled, fit_and_apply

    if not calibration_enabled(cfg, ensemble.scheme):
        return False
    if not dev:
        log.info("calibration: the K-fold ensemble is calibrated on data.dev, which is not set; it predicts "
                 "with T = 1 (each fold run has its own temperature)")
        return False
    logits = ensemble.model.logits([ex.text for ex in dev], _eval_batch(cfg))  # (n_dev, num_labels)
    fit_and_apply(ensemble.scheme, logits, ensemble.scheme.gold([ex.labels for ex in dev]))
    return True


def _write_ensemble_calibration(cfg: Config, run_dir: Path, ensemble, dev, test, metrics: dict) -> None:
    from textsift.engines.calibration import write_calibration

    splits = {split: (ensemble.model.logits([ex.text for ex in examples], _eval_batch(cfg)),
                      ensemble.scheme.gold([ex.labels for ex in examples]))
              for split, examples in (("dev", dev), ("test", test)) if examples}
    write_calibration(run_dir, ensemble.scheme.temperature, splits, cfg.calibration.bins, cfg.report.plots,
                      metrics)


def _eval_batch(cfg: Config) -> int:
    return cfg.train.eval_batch_size or 4 * cfg.train.batch_size


def _move_aside(folder: Path) -> None:
    """Never delete a user's files: an unusable partial fold directory is renamed, then retrained."""
    target = folder.with_name(folder.name + f".incomplete-{time.strftime('%Y%m%d-%H%M%S')}")
    folder.rename(target)
    log.warning("%s had no checkpoint to resume from; moved to %s and training the fold again", folder, target)


def _tune_on_oof(cfg: Config, scheme, train, oof: np.ndarray) -> None:
    from textsift.reporting.metrics import tune_global_threshold, tune_thresholds

    gold = scheme.gold([ex.labels for ex in train])
    if cfg.train.thresholds == "global":
        scheme.thresholds = np.full(scheme.num_labels, tune_global_threshold(gold, oof))
    else:
        scheme.thresholds = tune_thresholds(gold, oof)


def _oof_outputs(run_dir: Path, cfg: Config, scheme, train, oof: np.ndarray, fold_of: np.ndarray) -> dict:
    """oof.jsonl, the OOF reports and the ranked suspect-label files; returns the OOF metrics."""
    from textsift.engines.checkpoint import atomic_write
    from textsift.reporting.reports import write_records, write_split_reports

    gold = scheme.gold([ex.labels for ex in train])
    pred = scheme.decide(oof)
    rows = []
    for ex, p, d, fold in zip(train, oof, pred, fold_of):
        rows.append({"text": ex.text, "line": ex.line, "fold": int(fold), "gold": ex.labels,
                     "predicted": scheme.names(d),
                     "probabilities": {label: round(float(x), 6) for label, x in zip(scheme.labels, p)}})
    atomic_write(run_dir / "oof.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    report_dir = run_dir / "reports"
    report_dir.mkdir(exist_ok=True)
    metrics = write_split_reports(report_dir, "oof", [ex.text for ex in train], gold, pred, oof, scheme.labels,
                                  scheme.multi_label, cfg.report.bad_cases, cfg.report.plots)
    order, scores = suspect_order(scheme.multi_label, gold, oof)
    keep = order[:max(cfg.report.bad_cases, 1)]
    suspects = [{"rank": r + 1, "line": train[i].line, "text": train[i].text, "given": train[i].labels,
                 "predicted": rows[i]["predicted"], "score": round(float(scores[i]), 6), "fold": rows[i]["fold"]}
                for r, i in enumerate(keep)]
    write_records(run_dir, "suspect_labels", suspects, ("rank", "line", "text", "given", "predicted", "score", "fold"))
    return metrics


def suspect_order(multi_label: bool, gold: np.ndarray, oof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training examples, most likely mislabelled first, and each example's score.

    Single-label (``gold`` = class ids): score = OOF probability of the given label (ascending).
    Multi-label (``gold`` = 0/1 matrix): score = mean |label - probability| (descending)."""
    if multi_label:
        scores = np.abs(gold.astype(np.float32) - oof).mean(1)
        return np.argsort(-scores, kind="stable"), scores
    scores = oof[np.arange(len(gold)), gold]
    return np.argsort(scores, kind="stable"), scores


def _log_summary(metrics: dict, multi_label: bool) -> None:
    key = "micro_f1" if multi_label else "accuracy"
    per_fold = ", ".join(f"{m.get(key, float('nan')):.4f}" for m in metrics["folds"])
    msg = f"folds {key}: {per_fold}; out-of-fold {key} {metrics['oof'].get(key, float('nan')):.4f}"
    if "test" in metrics:
        msg += f"; ensemble test {key} {metrics['test'].get(key, float('nan')):.4f}"
    log.info(msg)
