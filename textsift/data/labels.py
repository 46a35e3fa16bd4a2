"""Label schemes: how gold labels become targets, and how logits become probabilities and decisions.

The scheme (not the model) owns the loss choice and the decoding: single-label uses softmax + argmax,
multi-label uses sigmoid + per-label thresholds tuned on dev; hierarchical (``data/hier_scheme.py``) is
multi-label over the nodes of a label hierarchy, with hierarchy-aware scoring and consistent decoding;
multi-task (a distilled student of several teachers) is one softmax per task over blocks of the logits.
A single-label scheme's softmax can carry a calibration temperature.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


class LabelScheme:
    """Maps label strings to indices for one task. Args: task name; labels in a fixed order."""

    multi_label = False
    multi_task = False
    default_loss = "ce"

    def __init__(self, task: str, labels: Sequence[str], thresholds: Sequence[float] | None = None):
        self.task = task
        self.labels = list(labels)
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.thresholds = np.asarray(thresholds if thresholds is not None else [0.5] * len(self.labels), dtype=float)

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @staticmethod
    def create(task: str, labels: Sequence[str], thresholds=None, hierarchy=None, method: str = "flat",
               decoding: str = "top_down") -> "LabelScheme":
        """A scheme for ``task``; ``hierarchical`` takes a ``Hierarchy`` (default: the labels' paths) and
        the ``hierarchy.method`` / ``hierarchy.decoding`` settings."""
        if task == "hierarchical":
            from textsift.data.hier_scheme import HierarchicalScheme
            from textsift.data.hierarchy import Hierarchy

            return HierarchicalScheme(labels, hierarchy or Hierarchy.from_paths(labels), method, decoding, thresholds)
        if task == "multi_task":
            return MultiTaskScheme(task, labels, thresholds)
        cls = SingleLabelScheme if task == "single_label" else MultiLabelScheme
        return cls(task, labels, thresholds)

    @staticmethod
    def from_examples(task: str, examples, cfg=None, labels: Sequence[str] | None = None) -> "LabelScheme":
        """Labels sorted by name, so the same data always gives the same label order (or ``labels``, a
        fixed order). ``cfg`` (the run's ``Config``) gives a hierarchical task its hierarchy and settings."""
        if labels is None:
            labels = sorted({label for ex in examples for label in ex.labels})
        if task == "hierarchical" and cfg is not None:
            from textsift.data.hier_scheme import build_hierarchy

            hierarchy = build_hierarchy(cfg.data, labels)  # from the label order given, e.g. a K-fold's
            if cfg.data.hierarchy:  # every node of the edges file, even one without training examples
                labels = sorted(set(labels) | set(hierarchy.nodes))
            return LabelScheme.create(task, labels, hierarchy=hierarchy, method=cfg.hierarchy.method,
                                      decoding=cfg.hierarchy.decoding)
        return LabelScheme.create(task, labels)

    def to_dict(self) -> dict:
        return {"task": self.task, "labels": self.labels, "thresholds": [float(t) for t in self.thresholds]}

    @staticmethod
    def from_dict(d: dict) -> "LabelScheme":
        hierarchy = None
        if d.get("hierarchy"):
            from textsift.data.hierarchy import Hierarchy

            hierarchy = Hierarchy.from_dict(d["hierarchy"])
        return LabelScheme.create(d["task"], d["labels"], d.get("thresholds"), hierarchy,
                                  d.get("method", "flat"), d.get("decoding", "top_down"))

    # Implemented by subclasses -------------------------------------------------------------------
    def targets(self, label_lists: Sequence[Sequence[str]]) -> torch.Tensor:
        raise NotImplementedError

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Decisions from probabilities: class indices (n,) or a 0/1 matrix (n, L)."""
        raise NotImplementedError

    def gold(self, label_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Gold labels in the same form as ``decide``'s output."""
        return self.targets(label_lists).numpy()

    def names(self, decision) -> list[str]:
        """Label names of one decision row."""
        raise NotImplementedError


class SingleLabelScheme(LabelScheme):
    # Temperature scaling (calibration.json, fitted on dev after training): logits / T before the softmax.
    # T > 0 rescales every logit of a row alike, so the argmax (the decision) never changes.
    temperature = 1.0

    def targets(self, label_lists):
        return torch.tensor([self.index[labels[0]] for labels in label_lists], dtype=torch.long)  # (batch,)

    def probabilities(self, logits):
        return torch.softmax(logits.float() / self.temperature, dim=-1)

    def decide(self, probs):
        return probs.argmax(axis=-1)

    def names(self, decision):
        return [self.labels[int(decision)]]


class MultiLabelScheme(LabelScheme):
    multi_label = True
    default_loss = "bce"

    def targets(self, label_lists):
        out = torch.zeros(len(label_lists), self.num_labels)  # (batch, num_labels) multi-hot
        for row, labels in enumerate(label_lists):
            for label in labels:
                out[row, self.index[label]] = 1.0
        return out

    def probabilities(self, logits):
        return torch.sigmoid(logits.float())

    def decide(self, probs):
        return (probs >= self.thresholds[None, :]).astype(np.int64)

    def gold(self, label_lists):
        return self.targets(label_lists).numpy().astype(np.int64)

    def names(self, decision):
        return [self.labels[i] for i in np.flatnonzero(decision)]


class MultiTaskScheme(LabelScheme):
    """Several single-label tasks scored by one model (multi-task distillation): labels are ``task/label``,
    each task a contiguous block of the logits with its own softmax (one output head per task). A gold
    example carries one ``task/label`` (the task its file came from); a decision is one label per task.

    Probabilities are per-task softmaxes (each block sums to 1); ``decide`` gives a ``(n, tasks)`` matrix
    of global label indices; ``gold`` the global index of each example's one label."""

    multi_task = True
    default_loss = "ce"

    def __init__(self, task: str, labels: Sequence[str], thresholds: Sequence[float] | None = None):
        super().__init__(task, labels, thresholds)
        self.tasks: list[str] = []
        for label in self.labels:
            name = label.split("/", 1)[0]
            if name not in self.tasks:
                self.tasks.append(name)
        self.segments = [[i for i, label in enumerate(self.labels) if label.split("/", 1)[0] == name]
                         for name in self.tasks]
        if any(seg != list(range(seg[0], seg[-1] + 1)) for seg in self.segments):
            raise ValueError(f"multi-task labels must be grouped by task, got {self.labels[:8]}...")
        self.task_of = torch.tensor([t for t, seg in enumerate(self.segments) for _ in seg])

    @staticmethod
    def build(task_labels: dict[str, Sequence[str]]) -> "MultiTaskScheme":
        """From ``{task: labels}`` in task order (each task's labels sorted by name)."""
        return MultiTaskScheme("multi_task", [f"{t}/{label}" for t, labels in task_labels.items()
                                              for label in sorted(labels)])

    def task_labels(self, t: int) -> list[str]:
        """Task ``t``'s labels without the ``task/`` prefix."""
        return [self.labels[i].split("/", 1)[1] for i in self.segments[t]]

    def targets(self, label_lists):
        return torch.tensor([self.index[labels[0]] for labels in label_lists], dtype=torch.long)

    def probabilities(self, logits):
        logits = logits.float()
        return torch.cat([torch.softmax(logits[:, s[0]:s[-1] + 1], dim=-1) for s in self.segments], dim=-1)

    def decide(self, probs):
        return np.stack([s[0] + probs[:, s[0]:s[-1] + 1].argmax(axis=-1) for s in self.segments], axis=1)

    def names(self, decision):
        return [self.labels[int(i)] for i in decision]

    @staticmethod
    def prefix(examples, task: str) -> list:
        """Single-label examples of ``task`` relabelled as ``task/label`` (in place); returns them."""
        for ex in examples:
            ex.labels = [f"{task}/{ex.labels[0]}"]
        return examples

    def gold_mask(self, targets: torch.Tensor) -> torch.Tensor:
        """``(n, labels)`` bool: True on the block of each row's gold task."""
        return self.task_of[targets][:, None] == self.task_of[None, :]
