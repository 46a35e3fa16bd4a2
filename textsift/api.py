"""The Python front door: ``TextClassifier``.

    clf = TextClassifier.load("runs/thucnews")
    clf.predict("国足今晚迎战日本")            # -> "sports"
    clf.predict(["...", "..."])                # -> ["sports", "finance"]
    clf.predict_proba("国足今晚迎战日本")      # -> {"sports": 0.97, ...}

Single-label models return one label string per text; multi-label models return a list of labels; a
multi-task student (``textsift distill`` with ``distill.tasks``) returns ``{task: label}``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np

from textsift.errors import NotFittedError, TextsiftError

Texts = Union[str, Sequence[str]]


class TextClassifier:
    """A trained classifier loaded from a run directory (or trained from a config)."""

    def __init__(self, bundle=None, batch_size: int = 64, max_tokens: int | None = None):
        # texts are scored in length-sorted batches of at most batch_size texts and, with max_tokens,
        # at most that many padded token positions (texts x longest) per model call
        self._bundle, self.batch_size, self.max_tokens = bundle, batch_size, max_tokens

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, run_dir: Union[str, Path], device: str = "cpu", backend: str = "torch",
             threads: int = 0, spinning: bool = True, precision: str = "run") -> "TextClassifier":
        """Load a finished run (``backend="torch"``) or an export directory (``backend="onnx"`` or
        ``"onnx-int8"``, run by ONNX Runtime with ``threads`` intra-op threads, 0 = all cores; ``spinning=False``
        lets idle ONNX Runtime threads sleep, as a server wants; ``precision``: ``run``, ``fp32`` or ``bf16``
        forward passes of the torch backend, see ``rundir.load_bundle``).
        Raises ``TextsiftError`` if the folder is not what the backend needs."""
        from textsift.rundir import load_bundle

        return cls(load_bundle(run_dir, device, backend, threads, spinning, precision))

    @classmethod
    def train(cls, config: Union[str, Path, dict], run_dir: Union[str, Path, None] = None,
              overrides: Sequence[str] = ()) -> "TextClassifier":
        """Train from a config file, preset name or dict (plus ``key=value`` overrides); return the model."""
        from textsift.config.load import _expand, apply_overrides, load_config, validate
        from textsift.engines.train_run import train_run
        from textsift.rundir import default_run_dir

        if isinstance(config, dict):
            cfg = validate(_expand(apply_overrides(config, list(overrides))))
        else:
            cfg = load_config(str(config), list(overrides))
        run_dir = Path(run_dir) if run_dir else default_run_dir(cfg.model.name)
        train_run(cfg, run_dir)
        return cls.load(run_dir)

    # ------------------------------------------------------------------ properties
    @property
    def bundle(self):
        if self._bundle is None:
            raise NotFittedError("this TextClassifier is not fitted: use TextClassifier.load(run_dir) "
                                 "or TextClassifier.train(config)")
        return self._bundle

    @property
    def _blocks(self) -> list[range]:
        """A multi-task student's label blocks (index ranges), one per task."""
        return [range(seg[0], seg[-1] + 1) for seg in self.bundle.scheme.segments]

    @property
    def labels(self) -> list[str]:
        return list(self.bundle.scheme.labels)

    @property
    def task(self) -> str:
        return self.bundle.scheme.task

    @property
    def multi_label(self) -> bool:
        return self.bundle.scheme.multi_label

    # ------------------------------------------------------------------ prediction
    def _probs(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        from textsift.engines.evaluation import score

        if not all(isinstance(t, str) for t in texts):
            bad = next(t for t in texts if not isinstance(t, str))
            raise TextsiftError(f"predict: expected text strings, got {type(bad).__name__} {bad!r}")
        b = self.bundle
        return score(b.model, b.scheme, b.encoder, texts, b.max_length, self.batch_size, max_tokens=self.max_tokens)

    def predict(self, texts: Texts):
        """Label (single-label), list of labels (multi-label) or ``{task: label}`` (a multi-task student) for
        one text; a list of those for a list."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        if not batch:
            return []
        _, decisions = self._probs(batch)
        scheme = self.bundle.scheme
        if scheme.multi_task:  # {task: label}
            out = [{t: name.split("/", 1)[1] for t, name in zip(scheme.tasks, scheme.names(d))} for d in decisions]
        else:
            out = [scheme.names(d) if scheme.multi_label else scheme.names(d)[0] for d in decisions]
        return out[0] if single else out

    def predict_proba(self, texts: Texts):
        """``{label: probability}`` for one text; a list of those for a list."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        if not batch:
            return []
        probs, _ = self._probs(batch)
        out = [dict(zip(self.labels, map(float, row))) for row in probs]
        return out[0] if single else out

    def predict_details(self, texts: Sequence[str], top_k: int = 3) -> list[dict]:
        """Full records, as written by ``textsift predict``: label(s), probabilities, top-k."""
        texts = list(texts)
        if not texts:
            return []
        probs, decisions = self._probs(texts)
        return [{"text": text, **rec} for text, rec in zip(texts, self.records(probs, decisions, top_k))]

    def scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``(n, labels)`` and decisions (class indices, or 0/1 rows for multi-label)."""
        return self._probs(list(texts))

    def record(self, probs: np.ndarray, decision, top_k: int = 3, all_probabilities: bool = True) -> dict:
        """One text's record from its ``scores`` row: label(s), probability, top-k (and every probability)."""
        return self.records(np.asarray(probs)[None], np.asarray(decision)[None], top_k, all_probabilities)[0]

    def records(self, probs: np.ndarray, decisions: np.ndarray, top_k: int = 3,
                all_probabilities: bool = True) -> list[dict]:
        """``record`` for every row of ``scores``, ranked for all rows at once."""
        return self.ranked_records(RankedScores(probs, decisions), top_k, all_probabilities)

    def ranked_records(self, ranked: "RankedScores", top_k: int = 3, all_probabilities: bool = True) -> list[dict]:
        """``records`` from scores ranked beforehand: plain Python on lists, no numpy call per row. The
        service ranks each collected batch once in its model thread and builds each request's records
        from its slice (per-request numpy calls cost more than a small model's share of the batch)."""
        scheme, labels = self.bundle.scheme, self.bundle.scheme.labels
        top_k = min(top_k, len(labels))
        out = []
        for row, ranks, decision in zip(ranked.probs, ranked.order, ranked.decisions):
            rec = {}
            if scheme.multi_task:  # one decision per task; top-k within each task's block
                rec["labels"] = [labels[i] for i in decision]
                rec["tasks"] = {t: {"label": labels[i].split("/", 1)[1], "probability": row[i],
                                    "top_k": [{"label": labels[j].split("/", 1)[1], "probability": round(row[j], 6)}
                                              for j in ranks if j in block][:top_k]}
                                for t, i, block in zip(scheme.tasks, decision, self._blocks)}
                if all_probabilities:
                    rec["probabilities"] = {label: round(p, 6) for label, p in zip(labels, row)}
                out.append(rec)
                continue
            if scheme.multi_label:
                rec["labels"] = scheme.names(decision)
            else:
                rec["label"], rec["probability"] = labels[decision], row[decision]
            rec["top_k"] = [{"label": labels[j], "probability": round(row[j], 6)} for j in ranks[:top_k]]
            if all_probabilities:
                rec["probabilities"] = {label: round(p, 6) for label, p in zip(labels, row)}
            out.append(rec)
        return out


class RankedScores:
    """``scores`` output as Python lists, each row's labels ranked by probability (ties by label order);
    slicing gives the rows of one request."""

    __slots__ = ("probs", "order", "decisions")

    def __init__(self, probs, decisions, order=None):
        if order is None:  # from arrays: rank every row at once
            probs, decisions = np.asarray(probs), np.asarray(decisions)
            order = np.argsort(-probs, axis=1, kind="stable").tolist()
            probs, decisions = probs.tolist(), decisions.tolist()
        self.probs, self.order, self.decisions = probs, order, decisions

    def __getitem__(self, rows: slice) -> "RankedScores":
        return RankedScores(self.probs[rows], self.decisions[rows], self.order[rows])

    def __len__(self) -> int:
        return len(self.probs)
