"""TF-IDF n-gram linear classifier: the strong simple baseline, as an ordinary textsift model.

Input ids are tokens plus hashed n-grams (``tokenizer.ngrams``). The forward pass computes exact
TF-IDF weights (sublinear tf, smooth idf, l2-normalised rows, as scikit-learn's ``TfidfVectorizer``)
and a linear layer over them, so prediction, export and serving use the same torch code as every
other model. Fitting can be done by scikit-learn's liblinear (``solver: svm`` or ``logreg``), which
is hard to beat for linear models and which nothing in torch matches in speed, or by the ordinary
gradient trainer (``solver: sgd``).
"""
from __future__ import annotations

import logging
from typing import Literal, Optional, Sequence, Union

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from textsift.models.base import ModelOutput, ModelParams, TextModel, embedding_bag
from textsift.registry import MODELS


class TfidfLinearParams(ModelParams):
    embedding_dim: int = Field(1, ge=1, description="Unused (the model is linear in its TF-IDF features).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Unused by liblinear solvers.")
    solver: Literal["svm", "logreg", "sgd"] = Field(
        "svm", description="svm = LinearSVC, logreg = logistic regression (both liblinear, one pass); "
                           "sgd = the ordinary gradient trainer.")
    C: Union[float, list[float]] = Field(
        1.0, description="Inverse regularisation strength of the liblinear solvers; a list of candidates "
                         "is tried and the best on dev kept.")
    @field_validator("C")
    @classmethod
    def _positive(cls, v):
        values = v if isinstance(v, list) else [v]
        if not values or any(c <= 0 for c in values):
            raise ValueError("expected a positive number or a non-empty list of positive numbers")
        return v

    sublinear_tf: bool = Field(True, description="Use 1 + log(tf) instead of raw term counts.")
    nb_scale: bool = Field(
        False, description="NBSVM (Wang & Manning 2012): fit one binary classifier per label on TF-IDF features "
                           "scaled by that label's naive-Bayes log-count ratio log((p/|p|1) / (q/|q|1)) (p, q: "
                           "how many of the label's texts and of the others contain each feature, plus nb_alpha). The scale "
                           "is folded into the saved weights, so prediction is unchanged. liblinear solvers only.")
    nb_alpha: float = Field(1.0, gt=0, description="Additive smoothing of the nb_scale feature counts.")
    svm_loss: Literal["squared_hinge", "hinge"] = Field(
        "squared_hinge", description="Loss of solver svm (LinearSVC's loss): squared_hinge (its default) or "
                                     "hinge (the standard SVM loss; +0.08 dev on thucnews_title with nb_scale).")
    max_iter: int = Field(2000, ge=1, description="Iteration cap of the liblinear solvers.")

    @model_validator(mode="after")
    def _nb_needs_liblinear(self):
        if self.nb_scale and self.solver == "sgd":
            raise ValueError("nb_scale needs a liblinear solver (svm or logreg), found solver 'sgd'; "
                             "set solver: svm or remove nb_scale")
        if self.svm_loss != "squared_hinge" and self.solver != "svm":
            raise ValueError(f"svm_loss is the loss of solver 'svm', found solver '{self.solver}' with svm_loss "
                             f"'{self.svm_loss}'; set solver: svm or remove svm_loss")
        return self


@MODELS.register("tfidf_linear", params=TfidfLinearParams)
class TfidfLinear(TextModel):
    """TF-IDF over tokens + hashed n-grams with a linear classifier (LinearSVC / logistic regression / SGD)."""

    def __init__(self, params: TfidfLinearParams, vocab_size: int, num_labels: int, pad_id: int = 0):
        super().__init__(params, vocab_size, num_labels, pad_id)
        # One weight per (feature, label); a weighted sum over a text's features gives its logits.
        self.weight = nn.EmbeddingBag(vocab_size, num_labels, mode="sum", padding_idx=pad_id)
        self.bias = nn.Parameter(torch.zeros(num_labels))
        self.register_buffer("idf", torch.ones(vocab_size))
        # Margins of a liblinear SVM are not log-odds: a scale (and, multi-label, a shift) fitted on dev
        # turns them into calibrated probabilities without changing any single-label decision.
        self.register_buffer("logit_scale", torch.ones(()))
        self.register_buffer("logit_shift", torch.zeros(()))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.weight.zero_()  # a linear model on normalised features needs no random start
            self.bias.zero_()

    def features(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sorted ids and their TF-IDF weights; every occurrence after the first of an id weighs 0."""
        ids = input_ids.masked_fill(~mask, self.pad_id)
        ids, _ = ids.sort(dim=1)  # (batch, seq): equal ids become neighbours
        first = torch.ones_like(ids, dtype=torch.bool)
        first[:, 1:] = ids[:, 1:] != ids[:, :-1]
        run = first.long().cumsum(1) - 1  # (batch, seq) index of each id's run
        counts = torch.zeros(ids.shape, dtype=torch.float).scatter_add_(1, run, torch.ones(ids.shape))
        tf = counts.gather(1, run)  # (batch, seq) count of the id at this position
        tf = 1.0 + torch.log(tf) if self.params.sublinear_tf else tf
        w = torch.where(first & (ids != self.pad_id), tf * self.idf[ids], torch.zeros(()))  # (batch, seq)
        w = w / w.norm(dim=1, keepdim=True).clamp(min=1e-12)
        return ids, w

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> ModelOutput:
        ids, w = self.features(input_ids, mask)
        scores = embedding_bag(self.weight, ids, w) + self.bias  # (batch, num_labels)
        logits = scores * self.logit_scale + self.logit_shift
        return ModelOutput(logits=logits, pooled=logits, mask=mask)

    # ------------------------------------------------------------------ data-dependent fitting
    def fit_data(self, ids: Sequence[Sequence[int]], targets: torch.Tensor, multi_label: bool,
                 dev: Optional[tuple] = None) -> bool:
        """Set the idf from the training texts; with a liblinear solver also fit the weights, choosing
        ``C`` among the candidates by dev accuracy (micro-F1 for multi-label) when ``dev`` is given.

        Returns True when the model is fully fitted (no gradient training needed).
        """
        x = self._fit_idf(ids)
        if self.params.solver == "sgd":
            return False
        x, y = self._tfidf(x), targets.numpy()
        candidates = self.params.C if isinstance(self.params.C, list) else [self.params.C]
        if dev is None:
            self.chosen_C = candidates[0]
            self._set_weights(*self._fit_liblinear(x, y, multi_label, candidates[0]))
            return True
        x_dev, y_dev = self._tfidf(self._count_matrix(dev[0])), dev[1].numpy()
        best = None
        for c in candidates:
            coef, intercept = self._fit_liblinear(x, y, multi_label, c)
            score = _dev_score(x_dev @ coef.T + intercept, y_dev, multi_label)
            if best is None or score > best[0]:
                best = (score, c, coef, intercept)
        self.chosen_C = best[1]
        self._set_weights(best[2], best[3])
        scale, shift = _calibrate(x_dev @ best[2].T + best[3], y_dev, multi_label)
        self.logit_scale.fill_(scale)
        self.logit_shift.fill_(shift)
        logging.getLogger("textsift").info("tfidf_linear: C=%s chosen on dev (score %.4f) among %s",
                                           best[1], best[0], candidates)
        return True

    def refit(self, ids: Sequence[Sequence[int]], targets: torch.Tensor, multi_label: bool) -> bool:
        """Refit idf and weights on ``ids`` with the C chosen on dev; the dev calibration is kept."""
        if self.params.solver == "sgd" or not hasattr(self, "chosen_C"):
            return False
        x = self._fit_idf(ids)
        self._set_weights(*self._fit_liblinear(self._tfidf(x), targets.numpy(), multi_label, self.chosen_C))
        return True

    def _fit_idf(self, ids: Sequence[Sequence[int]]):
        """Set the idf from ``ids`` (scikit-learn's smooth idf); return their count matrix."""
        x = self._count_matrix(ids)
        df = np.bincount(x.indices, minlength=self.vocab_size)
        self.idf.copy_(torch.from_numpy(np.log((1 + x.shape[0]) / (1 + df)) + 1.0).float())
        return x

    def _count_matrix(self, ids: Sequence[Sequence[int]]):
        from scipy.sparse import csr_matrix

        indptr = np.cumsum([0] + [len(x) for x in ids])
        cols = np.fromiter((t for x in ids for t in x), dtype=np.int64, count=int(indptr[-1]))
        x = csr_matrix((np.ones(len(cols), dtype=np.float32), cols, indptr), shape=(len(ids), self.vocab_size))
        x.sum_duplicates()
        x.data[x.indices == self.pad_id] = 0
        x.eliminate_zeros()
        return x

    def _tfidf(self, x):
        from sklearn.preprocessing import normalize

        x = x.copy()
        if self.params.sublinear_tf:
            x.data = 1.0 + np.log(x.data)
        x = x.multiply(self.idf.numpy()[None, :]).tocsr()
        return normalize(x)

    def _fit_liblinear(self, x, y: np.ndarray, multi_label: bool, C: float) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.svm import LinearSVC

        p = self.params
        if p.solver == "svm":
            base = LinearSVC(C=C, loss=p.svm_loss, max_iter=p.max_iter, random_state=0)
        else:
            base = LogisticRegression(C=C, max_iter=p.max_iter, solver="liblinear", random_state=0)
        if p.nb_scale:
            coef, intercept = self._fit_nb(base, x, y if multi_label else _one_hot(y, self.num_labels))
        elif multi_label:
            clf = OneVsRestClassifier(base).fit(x, y)
            coef = np.vstack([e.coef_ for e in clf.estimators_])  # (labels, features)
            intercept = np.concatenate([e.intercept_ for e in clf.estimators_])
        else:
            clf = base.fit(x, y)
            coef, intercept = clf.coef_, clf.intercept_
            if coef.shape[0] == 1:  # binary: one score f for class 1; logits (-f/2, f/2) decide the same
                coef, intercept = np.vstack([-coef / 2, coef / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
        return coef, intercept

    def _fit_nb(self, base, x, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """NBSVM: per label, scale the features by the log-count ratio r, fit a binary classifier on
        ``x * r`` and return its weights times r (so that ``x @ coef.T`` is the score on scaled features).
        ``y`` is a 0/1 indicator matrix (labels as columns); a binary single-label task fits once."""
        from scipy.sparse import diags
        from sklearn.base import clone

        alpha, present = self.params.nb_alpha, (x > 0).astype(np.float64).tocsr()  # binarized, as the paper
        total = np.asarray(present.sum(0)).ravel()  # texts containing each feature
        binary = y.shape[1] == 2 and bool((y.sum(1) == 1).all())
        columns = [1] if binary else range(y.shape[1])
        coef, intercept = np.zeros((y.shape[1], x.shape[1])), np.zeros(y.shape[1])
        for j in columns:
            pos = y[:, j].astype(bool)
            pos_sum = np.asarray(present[pos].sum(0)).ravel()
            p, q = alpha + pos_sum, alpha + (total - pos_sum)
            r = np.log(p / p.sum()) - np.log(q / q.sum())
            if pos.all() or not pos.any():  # a label without positive (or negative) texts: constant score
                coef[j], intercept[j] = 0.0, 1.0 if pos.all() else -1.0
                continue
            clf = clone(base).fit(x @ diags(r.astype(x.dtype)), pos.astype(int))
            coef[j], intercept[j] = clf.coef_.ravel() * r, clf.intercept_[0]
        if binary:  # as for liblinear's own binary fit: logits (-f/2, f/2)
            coef[1], intercept[1] = coef[1] / 2, intercept[1] / 2
            coef[0], intercept[0] = -coef[1], -intercept[1]
        return coef, intercept

    def _set_weights(self, coef: np.ndarray, intercept: np.ndarray) -> None:
        with torch.no_grad():
            self.weight.weight.copy_(torch.from_numpy(coef.T.astype(np.float32)))
            self.bias.copy_(torch.from_numpy(intercept.astype(np.float32)))


def _one_hot(y: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(y), n), dtype=np.int64)
    out[np.arange(len(y)), y] = 1
    return out


def _dev_score(scores: np.ndarray, y: np.ndarray, multi_label: bool) -> float:
    """Accuracy (single-label), or micro-F1 at the best single decision threshold (multi-label: the
    thresholds are tuned on dev after fitting, so C is chosen by the F1 it can reach then)."""
    if not multi_label:
        return float((scores.argmax(1) == y).mean())
    from textsift.reporting.metrics import best_global_threshold

    return best_global_threshold(y, scores)[1]


def _calibrate(scores: np.ndarray, y: np.ndarray, multi_label: bool) -> tuple[float, float]:
    """Scale (temperature scaling, Guo et al. 2017) or scale + shift (Platt scaling, shared by all
    labels) that minimise the dev log-loss of the decision scores."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_softmax

    def nll(theta):
        z = scores * np.exp(theta[0]) + (theta[1] if multi_label else 0.0)
        if multi_label:
            p = np.clip(expit(z), 1e-7, 1 - 1e-7)
            return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())
        return float(-log_softmax(z, axis=1)[np.arange(len(y)), y].mean())

    theta = minimize(nll, np.zeros(2), method="Nelder-Mead").x
    return float(np.exp(theta[0])), float(theta[1]) if multi_label else 0.0
