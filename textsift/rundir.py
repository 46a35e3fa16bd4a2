"""The run directory: one folder per run, never silently overwritten, loadable by every command.

Layout::

    config.yaml          resolved config (every default filled in)
    run.json             status (running / finished), versions, timings
    labels.json          task, label order, decision thresholds
    calibration.json     single-label: the softmax temperature fitted on dev, ECE before/after
    tokenizer.json       tokenizer settings + vocabulary (or, for `hf` models, truncation settings)
    hf/                  `hf` models only: the Hugging Face tokenizer files and the encoder's config.json
    model.json           model name, parameters, sizes
    model.safetensors    best weights (safetensors only, never pickle)
    metrics.json         {"dev": {...}, "test": {...}}
    reliability_{split}.png   calibration before vs after (single-label)
    history.json         one row per epoch;  curves.png
    reports/             {split}_report.txt/json, _confusion.png/json, _badcases.csv/jsonl
    train.log  tensorboard/  checkpoints/  README.md (model card)
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textsift.engines.checkpoint import atomic_write
from textsift.errors import TextsiftError
from textsift.tokenizers.hf import HF_DIR as ASSETS  # `hf` models: the encoder's tokenizer files and config.json

MODEL_FILE, MODEL_JSON, LABELS, TOKENIZER, CONFIG, METRICS, RUN = (
    "model.safetensors", "model.json", "labels.json", "tokenizer.json", "config.yaml", "metrics.json", "run.json")


def default_run_dir(model_name: str) -> Path:
    return Path("runs") / f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}"


def create_run_dir(path: Path | str) -> Path:
    """Create a fresh run directory; refuse one that already holds anything."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TextsiftError(f"--run-dir {path}: exists and is a file; choose a directory path")
    if path.is_dir() and any(path.iterdir()):
        hint = f" or continue it with --resume {path}" if (path / "checkpoints").is_dir() else ""
        raise TextsiftError(f"--run-dir {path}: already exists and is not empty; textsift never overwrites a run. "
                            f"Choose a new --run-dir{hint}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_run_dir(path: Path | str, need_weights: bool = True) -> Path:
    """Raise a clear error unless ``path`` is a textsift run directory with trained weights."""
    path = Path(path)
    if not path.is_dir():
        raise TextsiftError(f"{path}: run directory not found; pass the --run-dir of a finished `textsift train`")
    if is_ensemble(path):
        if not (path / LABELS).is_file():
            raise TextsiftError(f"{path}: the K-fold run has not finished (no {LABELS} yet); finish it with "
                                f"`textsift train --resume {path}`")
        return path
    missing = [f for f in (MODEL_JSON, LABELS, TOKENIZER) if not (path / f).is_file()]
    if missing:
        raise TextsiftError(f"{path}: not a textsift run directory (missing {', '.join(missing)}); "
                            "pass the --run-dir of a `textsift train` run")
    if need_weights and not (path / MODEL_FILE).is_file() and (path / "export.json").is_file():
        raise TextsiftError(f"{path}: an export directory holds no PyTorch weights; use it with "
                            "--backend onnx (or onnx-int8), or pass the original run directory")
    if need_weights and not (path / MODEL_FILE).is_file():
        raise TextsiftError(f"{path}: no trained weights yet ({MODEL_FILE} is written after the first epoch); "
                            f"finish the run with `textsift train --resume {path}`")
    return path


def is_ensemble(path: Path) -> bool:
    """A K-fold run directory: its model is the average of its fold runs."""
    try:
        return (Path(path) / MODEL_JSON).is_file() and read_json(Path(path) / MODEL_JSON).get("name") == "ensemble"
    except (ValueError, OSError):
        return False


@dataclass
class Bundle:
    """Everything needed to use a trained model: config, label scheme, text encoder, model."""

    run_dir: Path
    config: Any
    scheme: Any
    encoder: Any
    model: Any
    max_length: int


PRECISIONS = ("run", "fp32", "bf16")


def load_bundle(run_dir: Path | str, device: str = "cpu", backend: str = "torch", threads: int = 0,
                spinning: bool = True, precision: str = "run") -> Bundle:
    """Load a trained run (offline, no training data needed).

    ``backend="onnx"`` / ``"onnx-int8"`` loads an export directory (``textsift export``) instead and
    predicts with ONNX Runtime (``threads``: its intra-op threads, 0 = all cores). ``precision``: the
    autocast of forward passes: ``run`` = as the run trained (its ``train.precision``), or ``fp32`` /
    ``bf16`` whatever it trained in (bf16 inference of an fp32-trained model moves its scores by bf16
    rounding; fast on CPUs with AVX-512 BF16 or AMX)."""
    if precision not in PRECISIONS:
        raise TextsiftError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if backend != "torch":
        if precision != "run":
            raise TextsiftError(f"precision {precision}: only the torch backend has a choice of precision; an "
                                f"ONNX export ({backend}) runs as exported (fp32, or int8 with onnx-int8)")
        return _load_export(run_dir, backend, threads, spinning)
    import yaml
    from safetensors.torch import load_file

    from textsift.config.schema import Config
    from textsift.engines.calibration import load_scheme
    from textsift.precision import resolve_precision
    from textsift.models import build_model
    from textsift.tokenizers import load_encoder

    run_dir = check_run_dir(run_dir)
    if is_ensemble(run_dir):
        return _load_ensemble(run_dir, device, precision)
    config = Config(**yaml.safe_load((run_dir / CONFIG).read_text(encoding="utf-8")))
    scheme = load_scheme(run_dir)
    encoder = load_encoder(run_dir / TOKENIZER)
    meta = read_json(run_dir / MODEL_JSON)
    params = dict(meta["params"])
    if meta.get("assets"):  # rebuild the pretrained encoder from the run's own config.json, offline
        folder = run_dir / meta["assets"]
        if not (folder / "config.json").is_file():
            raise TextsiftError(f"{folder}/config.json: missing; the run directory is incomplete "
                                "(copy the whole run directory)")
        params["pretrained"] = str(folder)
    model = build_model(meta["name"], params, meta["vocab_size"], meta["num_labels"], meta["pad_id"],
                        pretrained_weights=False)
    try:
        if meta.get("quantization") == "dynamic":  # `textsift quantize --method dynamic`: int8 Linear layers
            from textsift.engines.quantize import load_int8_state
            load_int8_state(model, load_file(str(run_dir / MODEL_FILE)))
        else:
            model.load_state_dict(load_file(str(run_dir / MODEL_FILE)))
    except TextsiftError:
        raise
    except Exception as e:  # a corrupt or mismatched file must not crash with a traceback
        raise TextsiftError(f"{run_dir / MODEL_FILE}: cannot load weights ({str(e).splitlines()[0]}); "
                            "the file is damaged or belongs to another model") from None
    model.to(device).eval()
    if meta.get("quantization") and precision == "bf16":
        raise TextsiftError(f"{run_dir}: an int8-quantized run runs in fp32 around its int8 matmuls; "
                            "precision bf16 does not apply (use the run it was quantized from)")
    wanted = config.train.precision if precision == "run" else precision
    model.amp_dtype = None if meta.get("quantization") else resolve_precision(wanted, model, device)
    return Bundle(run_dir, config, scheme, encoder, model, config.train.max_length)


def _load_export(folder: Path | str, backend: str, threads: int, spinning: bool = True) -> Bundle:
    import yaml

    from textsift.config.schema import Config
    from textsift.engines.calibration import load_scheme
    from textsift.engines.onnx_backend import BACKENDS, OnnxModel, find_export
    from textsift.tokenizers import load_encoder

    if backend not in BACKENDS:
        raise TextsiftError(f"--backend: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    folder = find_export(folder)
    config = Config(**yaml.safe_load((folder / CONFIG).read_text(encoding="utf-8")))
    model = OnnxModel(folder, read_json(folder / "export.json"), int8=backend == "onnx-int8", threads=threads,
                      spinning=spinning)
    return Bundle(folder, config, load_scheme(folder), load_encoder(folder / TOKENIZER),
                  model, config.train.max_length)


def _load_ensemble(run_dir: Path, device: str, precision: str = "run") -> Bundle:
    """A K-fold run: every fold's bundle, fused by ``EnsembleModel`` (mean of logits)."""
    import yaml

    from textsift.config.schema import Config
    from textsift.engines.calibration import load_scheme
    from textsift.engines.kfold import EnsembleModel

    meta = read_json(run_dir / MODEL_JSON)
    members = [load_bundle(run_dir / m, device, precision=precision) for m in meta["members"]]
    scheme = load_scheme(run_dir)
    if any(m.scheme.labels != scheme.labels for m in members):
        raise TextsiftError(f"{run_dir}: the fold runs do not share the ensemble's label order; the run directory "
                            "was modified by hand")
    config = Config(**yaml.safe_load((run_dir / CONFIG).read_text(encoding="utf-8")))
    return Bundle(run_dir, config, scheme, members[0].encoder, EnsembleModel(members), members[0].max_length)
