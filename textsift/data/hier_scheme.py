"""The hierarchical label scheme: multi-label over the nodes of a label hierarchy, decoded consistently.

``hierarchy.method``:

- ``flat``: sigmoid + binary cross-entropy over every node (PaddleNLP's baseline);
- ``max_constraint``: C-HMCNN (Giunchiglia & Lukasiewicz 2020, "Coherent Hierarchical Multi-Label
  Classification Networks"): a node's probability is the max over its own and its descendants'
  probabilities (MCM), so a child never scores above its parent; trained with MCLoss (``losses/mcloss.py``);
- ``conditional``: each node's sigmoid is the probability of the node GIVEN its parents, trained only on
  the examples whose gold labels hold all its parents (``losses/conditional_bce.py``); a node's probability
  is its own sigmoid times the smallest of its parents' probabilities (the chain rule along a tree path;
  Brust & Denzler 2019, "Integrating Domain Knowledge: Using Hierarchies to Improve Deep Classifiers").

``hierarchy.decoding`` turns thresholded probabilities into ancestor-closed label sets:

- ``top_down``: a node is predicted only if it passes its threshold and all its parents are predicted;
- ``threshold_closure``: threshold, then add every ancestor of each predicted node.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from textsift.data.hierarchy import Hierarchy
from textsift.data.labels import MultiLabelScheme

METHODS = ("flat", "max_constraint", "conditional")
DECODINGS = ("top_down", "threshold_closure")


class HierarchicalScheme(MultiLabelScheme):
    """Args: labels (the hierarchy's nodes in a fixed order); the ``Hierarchy``; method; decoding;
    per-label thresholds."""

    def __init__(self, labels: Sequence[str], hierarchy: Hierarchy, method: str = "flat",
                 decoding: str = "top_down", thresholds: Sequence[float] | None = None):
        if method not in METHODS:
            raise ValueError(f"hierarchy.method: expected one of {METHODS}, got {method!r}")
        if decoding not in DECODINGS:
            raise ValueError(f"hierarchy.decoding: expected one of {DECODINGS}, got {decoding!r}")
        super().__init__("hierarchical", labels, thresholds)
        self.hierarchy, self.method, self.decoding = hierarchy, method, decoding
        desc, par = hierarchy.matrices(self.labels)
        self.descendants = desc  # (L, L): descendants[i, j] = 1 if label j is label i or below it
        self.parent_matrix = par  # (L, L): parent_matrix[i, j] = 1 if label j is a parent of label i
        self.levels = np.array([hierarchy.levels[label] for label in self.labels])
        self._order = np.argsort(self.levels, kind="stable")  # parents before children

    @property
    def default_loss(self) -> str:
        return {"max_constraint": "mcloss", "conditional": "conditional_bce"}.get(self.method, "bce")

    def to_dict(self) -> dict:
        return {**super().to_dict(), "hierarchy": self.hierarchy.to_dict(), "method": self.method,
                "decoding": self.decoding}

    # ---------------------------------------------------------------------------------- scoring
    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        probs = torch.sigmoid(logits.float())  # (batch, L)
        if self.method == "flat":
            return probs
        # both hierarchy-aware scorings build (rows, L, L) tensors: a whole split at once could take GBs
        chunks = probs.split(1024)
        if self.method == "max_constraint":
            descendants = torch.as_tensor(self.descendants, device=probs.device)
            return torch.cat([max_constraint(c, descendants) for c in chunks])
        return torch.cat([self._chain(c) for c in chunks])

    def _chain(self, conditional: torch.Tensor) -> torch.Tensor:
        """``p(node) = p(node | parents) * min over parents of p(parent)``, level by level."""
        out = conditional.clone()  # (batch, L)
        parents = torch.as_tensor(self.parent_matrix, device=out.device).bool()  # (L, L)
        for level in sorted(set(self.levels.tolist()))[1:]:
            cols = torch.as_tensor(np.flatnonzero(self.levels == level), device=out.device)
            mask = parents[cols]  # (k, L)
            lowest = out[:, None, :].masked_fill(~mask[None], float("inf")).amin(dim=-1)  # (batch, k)
            out[:, cols] = conditional[:, cols] * lowest.clamp(max=1.0)
        return out

    def raw_decide(self, probs: np.ndarray) -> np.ndarray:
        """Thresholded, undecoded decisions ``(n, L)`` (may be inconsistent; reported, never returned)."""
        return (probs >= self.thresholds[None, :]).astype(np.int64)

    def decide(self, probs: np.ndarray) -> np.ndarray:
        return self.decode(self.raw_decide(probs))

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """Ancestor-closed decisions from raw 0/1 decisions ``(n, L)``."""
        if self.decoding == "threshold_closure":
            # node i is on when it or any descendant is on: (n, L) @ (L, L)^T
            return ((raw @ self.descendants.T.astype(np.int64)) > 0).astype(np.int64)
        out = raw.copy()
        for i in self._order:  # levels ascending: every parent is final before its children
            parents = np.flatnonzero(self.parent_matrix[i])
            if len(parents):
                out[:, i] &= out[:, parents].min(axis=1)
        return out

    def consistent(self, decisions: np.ndarray) -> np.ndarray:
        """Per row: True when every predicted label comes with all its parents."""
        children_on = decisions @ self.parent_matrix  # (n, L): predicted children of each label
        return (children_on * (1 - decisions)).sum(axis=1) == 0  # no label missing under a predicted child


def max_constraint(values: torch.Tensor, descendants: torch.Tensor) -> torch.Tensor:
    """MCM: ``out[:, i] = max_j values[:, j]`` over ``j`` with ``descendants[i, j] = 1`` (``values`` are
    probabilities or logits: sigmoid is monotonic, so both give the same order). Masked entries count as
    ``-inf``."""
    mask = descendants.bool()[None]  # (1, L, L)
    expanded = values[:, None, :].expand(-1, descendants.shape[0], -1)  # (batch, L, L)
    return expanded.masked_fill(~mask, float("-inf")).amax(dim=-1)  # (batch, L)


def build_hierarchy(data_cfg, labels: Sequence[str]) -> Hierarchy:
    """The run's hierarchy: the edges file ``data.hierarchy`` when set, else the paths of ``labels``."""
    if data_cfg.hierarchy:
        return Hierarchy.from_edges_file(data_cfg.hierarchy)
    return Hierarchy.from_paths(labels, data_cfg.hierarchy_separator)
