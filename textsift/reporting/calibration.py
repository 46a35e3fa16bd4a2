"""Calibration of single-label probabilities: temperature scaling, NLL, ECE and reliability bins.

Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks") divides the logits by
one scalar ``T > 0`` before the softmax. ``T`` is fitted on dev by minimising the negative log-likelihood;
``T > 1`` softens an over-confident model, ``T < 1`` sharpens an under-confident one. Every logit of a row
is divided alike, so the argmax, and with it every accuracy/F1 figure, is unchanged.

Pure functions: arrays in, plain Python values out (JSON-serialisable). ``logits`` are ``(n, L)`` floats,
``y_true`` int label ids ``(n,)``, ``probs`` probabilities ``(n, L)``.
"""
from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("textsift")

DEFAULT_BINS = 15  # Guo et al.'s choice
LOG_T_BOUNDS = (-4.0, 4.0)  # T in [0.018, 55]: far beyond any sensible temperature, so never binding


def _check(logits, y_true) -> tuple[np.ndarray, np.ndarray]:
    logits, y_true = np.asarray(logits, dtype=np.float64), np.asarray(y_true).reshape(-1).astype(np.int64)
    if logits.ndim != 2 or len(logits) != len(y_true):
        raise ValueError(f"expected logits (n, L) and y_true (n,); found shapes {logits.shape} and {y_true.shape}")
    if len(y_true) == 0:
        raise ValueError("no examples: y_true is empty")
    if y_true.min() < 0 or y_true.max() >= logits.shape[1]:
        raise ValueError(f"y_true holds label ids outside 0..{logits.shape[1] - 1}")
    return logits, y_true


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (float64)."""
    from scipy.special import softmax as _softmax

    return _softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def nll(logits, y_true, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the gold labels under ``softmax(logits / temperature)``."""
    from scipy.special import log_softmax

    logits, y_true = _check(logits, y_true)
    logp = log_softmax(logits / temperature, axis=1)  # (n, L)
    return float(-logp[np.arange(len(y_true)), y_true].mean())


def fit_temperature(logits, y_true) -> float:
    """The temperature ``T > 0`` minimising the dev NLL of ``softmax(logits / T)``.

    A one-dimensional bounded search (Brent's method, ``scipy.optimize.minimize_scalar``) over ``log T``:
    the NLL is convex in ``1/T``, hence unimodal in ``log T``, so a bracketing search finds the optimum
    without the learning rate, iteration budget or line-search settings a gradient optimiser (LBFGS)
    needs, and searching ``log T`` keeps ``T`` positive. scipy comes with scikit-learn.

    When every dev text is predicted correctly, the NLL keeps falling as ``T -> 0`` (ever more confident)
    and has no minimum; when the model is worse than chance it keeps falling as ``T -> inf``. Neither
    limit is a calibration, so such a search, ending at the edge of ``LOG_T_BOUNDS``, keeps ``T = 1``
    (and logs why).

    Returns:
        ``T`` as a float; ``1.0`` when no temperature does better than the raw logits, or the NLL has no
        minimum inside the bounds.
    Raises:
        ValueError: on empty input, shape mismatch or label ids outside ``0..L-1``.
    """
    from scipy.optimize import minimize_scalar

    logits, y_true = _check(logits, y_true)
    if (logits.argmax(axis=1) == y_true).all():
        log.warning("calibration: every dev text is predicted correctly, so the dev NLL falls without limit "
                    "as T -> 0 and fits no temperature; keeping T = 1")
        return 1.0
    result = minimize_scalar(lambda log_t: nll(logits, y_true, float(np.exp(log_t))), bounds=LOG_T_BOUNDS,
                             method="bounded", options={"xatol": 1e-5})
    if min(abs(result.x - edge) for edge in LOG_T_BOUNDS) < 1e-2:
        log.warning("calibration: the dev NLL has no minimum for T in [%.3g, %.3g]; keeping T = 1",
                    *np.exp(LOG_T_BOUNDS))
        return 1.0
    temperature = float(np.exp(result.x))
    # guard the (tiny-data) case where the search stops above the value at T = 1
    return temperature if nll(logits, y_true, temperature) <= nll(logits, y_true, 1.0) else 1.0


def reliability_bins(probs, y_true, n_bins: int = DEFAULT_BINS) -> dict:
    """Confidence (max probability) against accuracy in ``n_bins`` equal-width bins of ``(0, 1]``.

    Bin ``m`` (0-based) holds confidences in ``(m / n_bins, (m + 1) / n_bins]``. Returns
    ``{"edges", "count", "accuracy", "confidence"}`` (lists; empty bins have accuracy and confidence
    ``None``) and ``"ece"``: the count-weighted mean of ``|accuracy - confidence|`` over the bins.
    """
    probs, y_true = np.asarray(probs, dtype=np.float64), np.asarray(y_true).reshape(-1).astype(np.int64)
    if probs.ndim != 2 or len(probs) != len(y_true) or len(y_true) == 0:
        raise ValueError(f"expected probs (n, L) and y_true (n,) with n > 0; found shapes {probs.shape} and "
                         f"{y_true.shape}")
    if n_bins < 1:
        raise ValueError(f"n_bins: expected a positive count, found {n_bins}")
    confidence = probs.max(axis=1)  # (n,)
    correct = (probs.argmax(axis=1) == y_true).astype(np.float64)  # (n,)
    # ceil puts a confidence exactly on an edge into the lower bin: (m/M, (m+1)/M]
    bins = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    filled = count > 0
    ece = float(np.abs(acc_sum[filled] - conf_sum[filled]).sum() / len(y_true))
    mean = lambda s: [float(s[m] / count[m]) if filled[m] else None for m in range(n_bins)]  # noqa: E731
    return {"edges": np.linspace(0.0, 1.0, n_bins + 1).round(6).tolist(), "count": count.astype(int).tolist(),
            "accuracy": mean(acc_sum), "confidence": mean(conf_sum), "ece": ece}


def expected_calibration_error(probs, y_true, n_bins: int = DEFAULT_BINS) -> float:
    """ECE (Naeini et al. 2015; Guo et al. 2017): ``sum_m |B_m| / n * |acc(B_m) - conf(B_m)|`` over
    ``n_bins`` equal-width confidence bins, confidence = the max probability."""
    return reliability_bins(probs, y_true, n_bins)["ece"]
