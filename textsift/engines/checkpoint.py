"""Atomic files and pickle-free checkpoints.

A checkpoint is a directory ``ckpt-<step>/`` holding ``state.safetensors`` (every tensor: weights,
optimizer moments, RNG states) and ``state.json`` (everything else, with placeholders for tensors).
It is written completely, fsynced, and only then published by atomically replacing the ``latest``
pointer file; a kill at any moment leaves either the old or the new checkpoint, never a broken one.

Why hand-written: ``torch.save`` pickles (unsafe to load from untrusted run directories and banned for
our weights); safetensors stores flat tensor maps only, so the nested optimizer/RNG state is split into
a tensor map plus a JSON skeleton here.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

_TENSOR = "__tensor__"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def _replacing(path: Path):
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write(path: Path | str, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a torn one."""
    with _replacing(Path(path)) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: Path | str, metadata: dict | None = None) -> None:
    """``safetensors.save_file`` through a temporary file and ``os.replace``."""
    with _replacing(Path(path)) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)


def split_tree(tree: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Replace every tensor in a nested dict/list with a placeholder; collect tensors by path."""
    if isinstance(tree, torch.Tensor):
        tensors[prefix] = tree
        return {_TENSOR: prefix}
    if isinstance(tree, dict):
        # JSON objects only have string keys; optimizer state uses int keys, so pairs keep them intact.
        return {"__dict__": [[k, split_tree(v, tensors, f"{prefix}/{k}")] for k, v in tree.items()]}
    if isinstance(tree, (list, tuple)):
        return {"__list__": [split_tree(v, tensors, f"{prefix}/{i}") for i, v in enumerate(tree)],
                "__tuple__": isinstance(tree, tuple)}
    return tree


def join_tree(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict):
        if _TENSOR in tree:
            return tensors[tree[_TENSOR]]
        if "__dict__" in tree:
            return {k: join_tree(v, tensors) for k, v in tree["__dict__"]}
        if "__list__" in tree:
            items = [join_tree(v, tensors) for v in tree["__list__"]]
            return tuple(items) if tree.get("__tuple__") else items
    return tree


class CheckpointDir:
    """Numbered checkpoints under ``root`` with an atomically updated ``latest`` pointer."""

    def __init__(self, root: Path | str, keep: int = 1):
        self.root, self.keep = Path(root), keep

    def save(self, state: dict, step: int) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / f"ckpt-{step:09d}"
        tmp = Path(tempfile.mkdtemp(prefix=".ckpt-", dir=self.root))
        tensors: dict[str, torch.Tensor] = {}
        skeleton = split_tree(state, tensors)
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps(skeleton))
        for name in ("state.safetensors", "state.json"):
            with open(tmp / name, "rb+") as f:
                os.fsync(f.fileno())
        if final.exists():  # a re-run of the same step after a crash: replace the stale copy
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.root)
        atomic_write(self.root / "latest", final.name)
        self._prune(final.name)
        return final

    def _prune(self, current: str) -> None:
        done = sorted(p for p in self.root.glob("ckpt-*") if p.is_dir() and p.name != current)
        for old in done[: max(0, len(done) - (self.keep - 1))]:
            shutil.rmtree(old, ignore_errors=True)
        for junk in self.root.glob(".ckpt-*"):  # half-written leftovers of a killed save
            shutil.rmtree(junk, ignore_errors=True)

    def load_latest(self) -> dict | None:
        pointer = self.root / "latest"
        if not pointer.is_file():
            return None
        path = self.root / pointer.read_text().strip()
        tensors = load_file(str(path / "state.safetensors"))
        return join_tree(json.loads((path / "state.json").read_text()), tensors)
