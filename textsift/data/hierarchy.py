"""The label hierarchy of ``task: hierarchical``: a DAG of labels, from label paths or an edges file.

Two sources:

- label paths (``"A/B/C"``, ``data.hierarchy_separator``): the parent of ``A/B/C`` is ``A/B``; the
  hierarchy is whatever the training labels imply (always a tree);
- an edges file (``data.hierarchy: FILE``), one ``parent<TAB>child`` pair per line (``#`` comments and
  blank lines are skipped); a node may have several parents (a DAG), never a cycle.

Every example's labels are closed under ancestors (a label always comes with its parents), so targets,
predictions and metrics all live in the same ancestor-closed label space.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from textsift.errors import DataError


class Hierarchy:
    """A DAG over label names. Args: ``parents``: ``{label: [parent, ...]}`` (roots map to ``[]``).

    Raises ``DataError`` when a parent is not a node or the graph has a cycle (with ``source``/``lines``
    naming the file and the line of an edge on the cycle)."""

    def __init__(self, parents: dict[str, Sequence[str]], source: str | None = None,
                 lines: dict[tuple[str, str], int] | None = None):
        self.parents = {node: list(dict.fromkeys(ps)) for node, ps in parents.items()}
        for node, ps in list(self.parents.items()):
            for p in ps:
                self.parents.setdefault(p, [])
        self.source = source
        self._lines = lines or {}
        self._check_acyclic()
        self._ancestors: dict[str, list[str]] = {}
        self.levels = {node: self._level(node, {}) for node in self.parents}

    # ---------------------------------------------------------------------------------- building
    @staticmethod
    def from_paths(labels: Iterable[str], sep: str = "/") -> "Hierarchy":
        """The tree implied by label paths: ``A/B/C``'s parent is ``A/B`` (missing ancestors are added)."""
        parents: dict[str, list[str]] = {}
        for label in labels:
            parts = label.split(sep)
            for i in range(1, len(parts) + 1):
                parents.setdefault(sep.join(parts[:i]), [sep.join(parts[:i - 1])] if i > 1 else [])
        return Hierarchy(parents)

    @staticmethod
    def from_edges_file(path: str | os.PathLike) -> "Hierarchy":
        """Read ``parent<TAB>child`` lines. Raises ``DataError`` (file and line) for a malformed line or a cycle."""
        p = Path(path)
        if not p.is_file():
            raise DataError("hierarchy edges file not found; data.hierarchy must name a file of "
                            "parent<TAB>child lines", str(path))
        parents: dict[str, list[str]] = {}
        lines: dict[tuple[str, str], int] = {}
        with p.open(encoding="utf-8") as f:
            for number, raw in enumerate(f, 1):
                text = raw.rstrip("\r\n")
                if not text.strip() or text.lstrip().startswith("#"):
                    continue
                fields = [x.strip() for x in text.split("\t")]
                if len(fields) != 2 or not all(fields):
                    raise DataError(f"expected 'parent<TAB>child', found {text!r} ({len(fields)} tab-separated "
                                    "field(s)); separate parent and child by one tab", str(path), number)
                parent, child = fields
                parents.setdefault(parent, [])
                parents.setdefault(child, []).append(parent)
                lines.setdefault((parent, child), number)
        if not parents:
            raise DataError("expected parent<TAB>child lines, found none", str(path))
        return Hierarchy(parents, str(path), lines)

    @staticmethod
    def from_dict(d: dict) -> "Hierarchy":
        return Hierarchy(d["parents"], d.get("source"))

    def to_dict(self) -> dict:
        return {"source": self.source, "parents": self.parents}

    # ---------------------------------------------------------------------------------- queries
    @property
    def nodes(self) -> list[str]:
        return sorted(self.parents)

    def ancestors(self, node: str) -> list[str]:
        """All ancestors of ``node`` (not itself), nearest first."""
        if node not in self._ancestors:
            out: dict[str, None] = {}
            for p in self.parents[node]:
                out[p] = None
                out.update(dict.fromkeys(self.ancestors(p)))
            self._ancestors[node] = list(out)
        return self._ancestors[node]

    def close(self, labels: Iterable[str]) -> list[str]:
        """``labels`` plus all their ancestors (order kept, duplicates dropped)."""
        out: dict[str, None] = {}
        for label in labels:
            out[label] = None
            out.update(dict.fromkeys(self.ancestors(label)))
        return list(out)

    def check_examples(self, examples, split: str = "data") -> None:
        """Raise ``DataError`` (file and line) for the first label that is not a node of the hierarchy."""
        for ex in examples:
            for label in ex.labels:
                if label not in self.parents:
                    where = f" of the edges file {self.source}" if self.source else ""
                    raise DataError(f"label '{label}' is not a node{where}; add a line 'parent<TAB>{label}' "
                                    f"(or fix the {split} label)", ex.source, ex.line)

    def matrices(self, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(descendants, parents)``, both ``(L, L)`` 0/1 in ``labels`` order: ``descendants[i, j] = 1``
        when ``labels[j]`` is ``labels[i]`` or one of its descendants; ``parents[i, j] = 1`` when
        ``labels[j]`` is a parent of ``labels[i]``."""
        index = {label: i for i, label in enumerate(labels)}
        n = len(labels)
        desc, par = np.eye(n, dtype=np.float32), np.zeros((n, n), dtype=np.float32)
        for label in labels:
            i = index[label]
            for p in self.parents.get(label, []):
                if p in index:
                    par[i, index[p]] = 1
            for a in self.ancestors(label) if label in self.parents else []:
                if a in index:
                    desc[index[a], i] = 1
        return desc, par

    # ---------------------------------------------------------------------------------- internals
    def _level(self, node: str, memo: dict) -> int:
        """1 + the longest path from a root (roots are level 1)."""
        if node not in memo:
            memo[node] = 1 + max((self._level(p, memo) for p in self.parents[node]), default=0)
        return memo[node]

    def _check_acyclic(self) -> None:
        state: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for start in sorted(self.parents):
            if state.get(start):
                continue
            stack, path = [(start, iter(self.parents[start]))], [start]
            state[start] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                    path.pop()
                elif state.get(nxt) == 1:
                    self._cycle_error(path[path.index(nxt):] + [nxt])
                elif not state.get(nxt):
                    state[nxt] = 1
                    stack.append((nxt, iter(self.parents[nxt])))
                    path.append(nxt)

    def _cycle_error(self, cycle: list[str]) -> None:
        # ``cycle`` follows child -> parent links; show it parent -> child, as the file writes edges
        shown = list(reversed(cycle))
        line = min((self._lines[(a, b)] for a, b in zip(shown, shown[1:]) if (a, b) in self._lines), default=None)
        raise DataError(f"the hierarchy has a cycle: {' -> '.join(shown)}; a label cannot be its own ancestor, "
                        "remove one of these edges", self.source, line)
