"""Prediction with ONNX Runtime from an export directory (``textsift export``).

``OnnxModel`` stands where the PyTorch model stands in a ``Bundle``: the same encoder turns texts into
ids, the same label scheme turns logits into probabilities and decisions, so every front door
(``TextClassifier``, ``predict``, ``evaluate``, ``serve``) gives the same output format with either
backend. Only the logits come from ONNX Runtime.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from textsift.engines.batching import length_sorted_batches
from textsift.engines.export import EXPORT_JSON, INPUTS, OUTPUT, onnx_session
from textsift.errors import TextsiftError

BACKENDS = ("torch", "onnx", "onnx-int8")


def find_export(folder: Path) -> Path:
    """The folder holding ``export.json`` (an export directory, or a Triton repository's assets)."""
    folder = Path(folder)
    for candidate in (folder, folder / "textsift_assets"):
        if (candidate / EXPORT_JSON).is_file():
            return candidate
    raise TextsiftError(f"{folder}: no {EXPORT_JSON} here, so it is not an export directory; the ONNX backends "
                        f"read the output of `textsift export {folder} --format onnx --out EXPORT_DIR` "
                        "(then pass EXPORT_DIR)")


class OnnxModel:
    """Logits from an exported ONNX graph, batch by batch, for encoded texts."""

    members = None  # not an ensemble (see evaluation.score)

    def __init__(self, folder: Path, manifest: dict, int8: bool = False, threads: int = 0, spinning: bool = True):
        key = "int8_file" if int8 else "file"
        if manifest.get("format") not in ("onnx", "triton") or key not in manifest:
            what = "int8 model" if int8 else "ONNX model"
            raise TextsiftError(f"{folder}/{EXPORT_JSON}: this export has no {what} (format "
                                f"{manifest.get('format')!r}). Export again with `textsift export RUN --format onnx"
                                f"{' --int8' if int8 else ''} --out DIR`")
        self.path = (folder / manifest[key]).resolve()
        if not self.path.is_file():
            raise TextsiftError(f"{self.path}: missing; the export directory is incomplete (copy all of it)")
        self.session = onnx_session(self.path, threads, spinning)
        self.num_labels = int(manifest["outputs"][OUTPUT][1])
        self.fixed_length = manifest.get("fixed_length")
        self.min_length = int(manifest.get("min_length", 1))
        self.pad_id = int(manifest["pad_id"])

    def batch_logits(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Logits for one padded batch: ids and 0/1 mask, int64 ``(batch, seq)``."""
        return self.session.run([OUTPUT], {INPUTS[0]: ids, INPUTS[1]: mask})[0]

    def pad(self, encoded: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
        """Right-pad encoded texts to one batch (to the export's fixed length where it has one)."""
        width = self.fixed_length or max(self.min_length, max(len(x) for x in encoded))
        ids = np.full((len(encoded), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for row, seq in enumerate(encoded):
            seq = seq[:width]
            ids[row, :len(seq)], mask[row, :len(seq)] = seq, 1
        return ids, mask

    def encoded_logits(self, encoded: Sequence[Sequence[int]], batch_size: int,
                       max_tokens: int | None = None) -> np.ndarray:
        """Logits ``(n, num_labels)`` in input order; batches of similar lengths, like the torch backend."""
        out = np.zeros((len(encoded), self.num_labels), dtype=np.float32)
        max_tokens = None if self.fixed_length else max_tokens  # every text is padded to the fixed length anyway
        for idx in length_sorted_batches([len(x) for x in encoded], batch_size, max_tokens):
            out[idx] = self.batch_logits(*self.pad([encoded[i] for i in idx]))
        return out

    def eval(self) -> "OnnxModel":  # the Bundle contract: a model ready for inference
        return self
