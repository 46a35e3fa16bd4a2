"""Quantization of a trained run into a new, smaller artefact, with a before/after table.

* ``dynamic``: PyTorch dynamic int8 of the ``nn.Linear`` layers (int8 weights, activations quantized per
  batch). The new run directory stores the int8 weights with their scale and zero point in safetensors,
  so it is smaller on disk, and reloads through every command (``load_bundle`` rebuilds the int8 layers).
* ``onnx-dynamic``: an export directory whose ``model.int8.onnx`` is ONNX Runtime's dynamic quantization.
* ``onnx-static``: ONNX Runtime static quantization (activations too, QDQ format), calibrated on texts
  (``--calibration FILE``, else the run's training texts). Use both ONNX ones with ``--backend onnx-int8``.
"""
from __future__ import annotations

import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from textsift.errors import TextsiftError

log = logging.getLogger("textsift")
METHODS = ("dynamic", "onnx-dynamic", "onnx-static")


# ---------------------------------------------------------------- PyTorch dynamic int8
def _dynamic_linear():
    return torch.ao.nn.quantized.dynamic.Linear


def quantize_dynamic(model: nn.Module) -> nn.Module:
    """``torch.ao.quantization.quantize_dynamic`` on the Linear layers (in place), warnings silenced:
    torch marks the eager API deprecated in favour of torchao, but it is the CPU int8 path shipped here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)


def int8_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Plain tensors for safetensors: the int8 Linear weights as ``int_repr`` + scale + zero point, and
    every other parameter and buffer as is."""
    out, quantized = {}, set()
    for name, module in model.named_modules():
        if isinstance(module, _dynamic_linear()):
            w = module.weight()
            out[f"{name}.int8_weight"] = w.int_repr()
            out[f"{name}.int8_scale"] = torch.tensor(w.q_scale(), dtype=torch.float64)
            out[f"{name}.int8_zero_point"] = torch.tensor(w.q_zero_point(), dtype=torch.int64)
            if module.bias() is not None:
                out[f"{name}.bias"] = module.bias().detach()
            quantized.add(name)
    for key, value in model.state_dict().items():
        if isinstance(value, torch.Tensor) and not any(key.startswith(q + ".") for q in quantized):
            out[key] = value
    return out


def load_int8_state(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Rebuild the int8 layers of a freshly built fp32 ``model`` and load ``int8_state``'s tensors."""
    plain = {k: v for k, v in state.items() if ".int8_" not in k}
    int8_names = {k.rsplit(".int8_weight", 1)[0] for k in state if k.endswith(".int8_weight")}
    biases = {f"{n}.bias": plain.pop(f"{n}.bias") for n in int8_names if f"{n}.bias" in plain}
    # everything else goes in while the model is still fp32 (quantized modules cannot load partial state)
    missing, unexpected = model.load_state_dict(plain, strict=False)
    if unexpected or [k for k in missing if k.rsplit(".", 1)[0] not in int8_names]:
        raise TextsiftError(f"int8 weights: tensors do not match the model ({(unexpected or missing)[:3]}); "
                            "the file belongs to another model")
    quantize_dynamic(model)
    for name, module in model.named_modules():
        if isinstance(module, _dynamic_linear()) and f"{name}.int8_weight" in state:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                w = torch._make_per_tensor_quantized_tensor(state[f"{name}.int8_weight"],
                                                            float(state[f"{name}.int8_scale"]),
                                                            int(state[f"{name}.int8_zero_point"]))
            module.set_weight_bias(w, biases.get(f"{name}.bias"))
    return model


# ---------------------------------------------------------------- the command
def quantize_run(run_dir, out_dir, method: str = "dynamic", calibration: Optional[str] = None,
                 calibration_size: int = 256) -> dict:
    """Quantize ``run_dir`` into ``out_dir`` (a run directory, or an export directory for the ONNX
    methods); returns the before/after report."""
    from textsift.data import iter_texts
    from textsift.engines.evaluation import evaluate_config_splits
    from textsift.engines.measure import format_table, measure
    from textsift.engines.prune import _clf, _split_metrics
    from textsift.rundir import check_run_dir, is_ensemble, load_bundle, write_json

    if method not in METHODS:
        raise TextsiftError(f"--method: expected one of {', '.join(METHODS)}, got {method!r}")
    run_dir, out_dir = check_run_dir(run_dir), Path(out_dir)
    if is_ensemble(run_dir):
        raise TextsiftError(f"{run_dir}: quantize one fold of a K-fold run (e.g. {run_dir}/folds/fold-0)")
    bundle = load_bundle(run_dir)
    files = [calibration] if calibration else [bundle.config.data.train] if bundle.config.data.train else \
        [t.train for t in bundle.config.distill.tasks]  # a multi-task student: every task's texts
    texts_file = ", ".join(files)
    per_file = -(-calibration_size // len(files))
    texts = [t for f in files for _, t in zip(range(per_file), (t for _, t in iter_texts(f, bundle.config.data)))]
    texts = texts[:calibration_size]
    if not texts:
        raise TextsiftError(f"{texts_file}: no texts to calibrate or measure with")
    if method == "dynamic":
        _dynamic_run(run_dir, out_dir, bundle)
        after = load_bundle(out_dir)
        after_metrics = _split_metrics(out_dir)
    else:
        from textsift.engines.export import export_run

        # static QDQ quantization calibrates the plain graph: on a fused one (contrib Attention nodes)
        # ONNX Runtime's calibrator cannot give every tensor a range (the head's bias fails)
        export_run(run_dir, out_dir, int8=method == "onnx-dynamic", fuse=method == "onnx-dynamic")
        if method == "onnx-static":
            _static_onnx(out_dir, bundle, texts)
        after = load_bundle(out_dir, backend="onnx-int8")
        after_metrics = evaluate_config_splits(after.model, after.scheme, after.encoder, after.config,
                                               after.max_length)
    rows = {"before": measure(_clf(load_bundle(run_dir)), texts[:128], run_dir, _split_metrics(run_dir)),
            "after": measure(_clf(after), texts[:128], out_dir, after_metrics)}
    report = {"source": str(run_dir), "method": method, "calibration": texts_file if method == "onnx-static" else None,
              "rows": rows, "table": format_table(rows)}
    write_json(out_dir / "quantize_report.json", report)
    (out_dir / "quantize_report.md").write_text(f"# {method} int8 of {run_dir}\n\n{report['table']}\n", encoding="utf-8")
    return report


def _dynamic_run(run_dir: Path, out_dir: Path, bundle) -> None:
    from textsift.engines.calibration import CALIBRATION
    from textsift.engines.checkpoint import atomic_save_safetensors
    from textsift.engines.evaluation import evaluate_config_splits
    from textsift.rundir import (ASSETS, CONFIG, LABELS, MODEL_FILE, MODEL_JSON, TOKENIZER, create_run_dir,
                                 read_json, write_json)

    out_dir = create_run_dir(out_dir)
    model = quantize_dynamic(bundle.model.float().eval())
    model.amp_dtype = None  # int8 kernels run in fp32 around the int8 matmuls; no autocast
    for name in (CONFIG, LABELS, TOKENIZER):
        shutil.copy2(run_dir / name, out_dir / name)
    if (run_dir / CALIBRATION).is_file():  # int8 weights barely move the logits: keep the fitted temperature
        shutil.copy2(run_dir / CALIBRATION, out_dir / CALIBRATION)
    if (run_dir / ASSETS).is_dir():
        shutil.copytree(run_dir / ASSETS, out_dir / ASSETS)
    meta = read_json(run_dir / MODEL_JSON)
    meta.update(quantization="dynamic", quantized_from=str(run_dir.resolve()))
    write_json(out_dir / MODEL_JSON, meta)
    atomic_save_safetensors(int8_state(model), out_dir / MODEL_FILE, metadata={"format": "textsift-int8"})
    metrics = evaluate_config_splits(model, bundle.scheme, bundle.encoder, bundle.config, bundle.max_length,
                                     out_dir / "reports")
    write_json(out_dir / "metrics.json", metrics)
    write_json(out_dir / "run.json", {"status": "finished", "quantized_from": str(run_dir.resolve()),
                                      "updated": time.strftime("%Y-%m-%dT%H:%M:%S")})


def _static_onnx(out_dir: Path, bundle, texts: list[str]) -> None:
    """``model.int8.onnx`` by ONNX Runtime static quantization, calibrated on ``texts``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from textsift.engines.export import EXPORT_JSON, INPUTS, ONNX_INT8_FILE, shapeless_copy
    from textsift.engines.logging_utils import quiet_root_logger
    from textsift.engines.onnx_backend import OnnxModel
    from textsift.rundir import read_json, write_json

    manifest = read_json(out_dir / EXPORT_JSON)
    fp32 = OnnxModel(out_dir, manifest)
    encoded = bundle.encoder.encode_batch(texts, bundle.max_length)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([fp32.pad(encoded[i:i + 16]) for i in range(0, len(encoded), 16)])

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else dict(zip(INPUTS, batch))

    # Only the matrix products: quantizing everything also quantizes the attention-mask arithmetic
    # (its calibrated range is infinite: accuracy fell 16-19 points) and puts Q/DQ pairs around every
    # op (5x slower). uint8 activations with per-tensor scales is what ORT's CPU int8 GEMMs run fastest.
    with shapeless_copy(out_dir) as staged, quiet_root_logger():  # ORT logs to the root logger
        quantize_static(str(staged), str(out_dir / ONNX_INT8_FILE), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=False,
                        op_types_to_quantize=["MatMul", "Gemm"])
    int8 = OnnxModel(out_dir, {**manifest, "int8_file": ONNX_INT8_FILE}, int8=True)
    a, b = int8.encoded_logits(encoded, 16), fp32.encoded_logits(encoded, 16)
    agree = float((a.argmax(1) == b.argmax(1)).mean())
    manifest.update(int8_file=ONNX_INT8_FILE, int8_method="static",
                    int8_parity={"max_abs_diff_vs_onnx_fp32": float(np.abs(a - b).max()),
                                 "top1_agreement_vs_onnx_fp32": agree, "calibration_texts": len(texts)})
    write_json(out_dir / EXPORT_JSON, manifest)
    if agree < 0.95:
        log.warning("static int8 agrees with fp32 on the top label for only %.1f%% of the calibration texts; "
                    "check its accuracy (textsift evaluate %s --backend onnx-int8) before using it", 100 * agree,
                    out_dir)
