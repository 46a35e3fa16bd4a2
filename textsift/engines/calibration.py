"""Temperature scaling of a trained run: fitted on dev after training, stored as ``calibration.json``.

The file sits next to ``labels.json`` in a run directory (and is copied into exports and quantized
runs). Whoever loads a run reads it into the label scheme (``SingleLabelScheme.temperature``), whose
``probabilities`` divide the logits by ``T`` before the softmax, so every backend (PyTorch, ONNX,
ONNX int8, K-fold ensembles) and every front door (``TextClassifier``, ``predict``, ``evaluate``,
``serve``) gives calibrated probabilities. A run without the file predicts with ``T = 1``.

``calibration.json``::

    {"method": "temperature", "temperature": 1.83, "bins": 15, "fitted_on": "dev", "n_fit": 1000,
     "dev": {"nll_uncalibrated": .., "nll": .., "ece_uncalibrated": .., "ece": .., "n": ..},
     "test": {...}}
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from textsift.errors import TextsiftError

log = logging.getLogger("textsift")
CALIBRATION = "calibration.json"


def calibration_enabled(cfg, scheme) -> bool:
    """Whether this run fits a temperature: ``calibration.method``, by default on for single-label.

    Raises:
        TextsiftError: ``method: temperature`` set explicitly for a multi-label or hierarchical task
            (a task inferred from the data, which the config schema could not check).
    """
    from textsift.config.schema import calibration_task_error

    method = cfg.calibration.method
    if scheme.multi_label or scheme.multi_task:
        if method == "temperature":
            raise TextsiftError(calibration_task_error(scheme.task))
        if method is None:
            log.info("calibration: skipped for a %s task (temperature scaling applies to single_label models)",
                     scheme.task)
        return False
    return method != "none"


def fit_and_apply(scheme, dev_logits: np.ndarray, dev_gold: np.ndarray) -> float:
    """Fit ``T`` on the dev logits ``(n, L)`` and gold ids ``(n,)``; set it on ``scheme``; return it."""
    from textsift.reporting.calibration import fit_temperature, nll

    scheme.temperature = fit_temperature(dev_logits, dev_gold)
    log.info("calibration: temperature %.4f fitted on %d dev texts (dev NLL %.4f -> %.4f)", scheme.temperature,
             len(dev_gold), nll(dev_logits, dev_gold), nll(dev_logits, dev_gold, scheme.temperature))
    return scheme.temperature


def write_calibration(run_dir: Path, temperature: float, splits: dict, n_bins: int, plots: bool,
                      metrics: dict) -> dict:
    """Write ``calibration.json`` and (with ``plots``) ``reliability_{split}.png`` before vs after, and add
    ``ece``, ``ece_uncalibrated`` and ``temperature`` to ``metrics`` (``metrics.json``'s content).

    Args:
        run_dir: the run directory.
        temperature: the fitted ``T``.
        splits: ``{split: (logits (n, L), gold ids (n,))}``; ``"dev"`` is the split ``T`` was fitted on.
        n_bins: equal-width confidence bins of the ECE and the diagrams.
        plots: also draw the reliability diagrams.
        metrics: ``{split: {...}}``; updated in place.
    Returns:
        The content of ``calibration.json``.
    """
    from textsift.reporting.calibration import nll, reliability_bins, softmax
    from textsift.rundir import write_json

    summary = {"method": "temperature", "temperature": temperature, "bins": n_bins, "fitted_on": "dev",
               "n_fit": int(len(splits["dev"][1]))}
    for split, (logits, gold) in splits.items():
        before = reliability_bins(softmax(logits), gold, n_bins)
        after = reliability_bins(softmax(logits, temperature), gold, n_bins)
        summary[split] = {"nll_uncalibrated": nll(logits, gold), "nll": nll(logits, gold, temperature),
                          "ece_uncalibrated": before["ece"], "ece": after["ece"], "n": int(len(gold)),
                          "bins_uncalibrated": before, "bins": after}
        if split in metrics:
            metrics[split].update(ece=after["ece"], ece_uncalibrated=before["ece"])
        log.info("calibration: %s ECE %.4f -> %.4f (%d bins)", split, before["ece"], after["ece"], n_bins)
        if plots:
            from textsift.reporting.plots import plot_reliability

            plot_reliability({"before (T = 1)": before, f"after (T = {temperature:.3g})": after},
                             Path(run_dir) / f"reliability_{split}.png",
                             title=f"{split}: reliability diagram, {len(gold)} texts")
    metrics["temperature"] = temperature
    write_json(Path(run_dir) / CALIBRATION, summary)
    return summary


def read_temperature(folder: Path) -> float:
    """The temperature stored in ``folder/calibration.json``; 1.0 when the file is absent (runs trained
    before calibration existed, multi-label runs, ``calibration.method: none``).

    Raises:
        TextsiftError: the file is unreadable or holds no positive finite ``temperature``.
    """
    import json

    path = Path(folder) / CALIBRATION
    if not path.is_file():
        return 1.0
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("temperature")
    except (ValueError, AttributeError) as e:
        raise TextsiftError(f"{path}: not a calibration file ({str(e).splitlines()[0]}); delete it to predict "
                            "with uncalibrated probabilities, or train the run again") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise TextsiftError(f"{path}: expected a positive number under \"temperature\", found {value!r}; delete "
                            "the file to predict with uncalibrated probabilities, or train the run again")
    return float(value)


def load_scheme(folder: Path):
    """The label scheme of a run or export directory: ``labels.json`` plus, for single-label runs, the
    temperature in ``calibration.json``."""
    from textsift.data.labels import LabelScheme
    from textsift.rundir import LABELS, read_json

    scheme = LabelScheme.from_dict(read_json(Path(folder) / LABELS))
    if not scheme.multi_label:
        scheme.temperature = read_temperature(folder)
    return scheme
