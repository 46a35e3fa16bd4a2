"""Exporting a trained run: ONNX (with an optional int8 copy), TorchScript, or a Triton model repository,
each checked against PyTorch before it is published.

An export directory is self-contained: besides the model file it holds the run's ``labels.json``
(label order and decision thresholds), ``calibration.json`` when the run has one (softmax temperature),
``tokenizer.json`` (+ ``hf/`` for pretrained encoders),
``config.yaml`` and ``model.json``, and an ``export.json`` manifest with the input/output names, the
axes, and the parity report. ``TextClassifier.load(DIR, backend="onnx")``, ``textsift predict DIR``,
``evaluate`` and ``serve`` read it without the original run.

Graph inputs are ``input_ids`` and ``attention_mask`` (int64, ``(batch, seq)``, 1 at real tokens);
the output is ``logits`` (float32, ``(batch, num_labels)``). Both axes are dynamic, except for models
whose forward pass loops a number of times that depends on the sequence length (DPCNN's pooling
pyramid, windowed encoders): those are exported for a fixed ``seq = train.max_length`` and every
backend pads to it, which gives the same logits because their forward pass is padding-invariant.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from textsift.engines.calibration import CALIBRATION
from textsift.errors import TextsiftError
from textsift.rundir import (ASSETS, CONFIG, LABELS, MODEL_JSON, TOKENIZER, check_run_dir, is_ensemble,
                             write_json)

log = logging.getLogger("textsift")
FORMATS = ("onnx", "torchscript", "triton")
EXPORT_JSON, ONNX_FILE, ONNX_INT8_FILE, TORCHSCRIPT_FILE = "export.json", "model.onnx", "model.int8.onnx", "model.pt"
INPUTS, OUTPUT = ("input_ids", "attention_mask"), "logits"
# bumped when the exported graph of the same run changes (a pipeline re-run then exports again):
# 2 = fused BERT-family encoders, 3 = layer norms as instance norms
GRAPH_REVISION = 3
PARITY_BATCHES, PARITY_LENGTHS = (1, 3, 16), (1, 7, None)  # None = the run's max_length


class LogitsOnly(nn.Module):
    """The exported graph: int64 ids and 0/1 mask in, logits out (the fixed ``ModelOutput`` minus extras)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask.bool()).logits.float()  # (batch, num_labels)


def fixed_length(model) -> int | None:
    """The sequence length a model must be exported (and fed) at, or None when any length works."""
    return None if getattr(model, "export_dynamic_length", True) else int(model.export_length)


def export_run(run_dir, out_dir, fmt: str = "onnx", opset: int = 17, int8: bool = False,
               tolerance: float = 1e-4, overwrite: bool = False, name: str = "textsift",
               exporter: str = "auto", fuse: bool = True) -> dict:
    """Export ``run_dir`` to ``out_dir`` in ``fmt``; returns the manifest (also written as ``export.json``).

    Raises:
        TextsiftError: unknown format, a K-fold run, an existing ``out_dir`` without ``overwrite``, or a
            parity check above ``tolerance`` (nothing is published then).
    """
    from textsift.rundir import load_bundle

    if fmt not in FORMATS:
        raise TextsiftError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    run_dir, out_dir = check_run_dir(run_dir), Path(out_dir)
    if is_ensemble(run_dir):
        raise TextsiftError(f"{run_dir}: a K-fold ensemble has one encoder per fold and cannot be one graph; "
                            f"export a fold instead (e.g. `textsift export {run_dir}/folds/fold-0 ...`)")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())) and not overwrite:
        raise TextsiftError(f"--out {out_dir}: exists and is not empty; choose a new folder or pass --overwrite")
    bundle = load_bundle(run_dir)
    model = bundle.model.float().eval()
    model.amp_dtype = None  # export fp32; bf16 autocast is a PyTorch-side runtime choice
    model.export_length = bundle.max_length
    examples = parity_inputs(bundle)
    # Build everything in a sibling temp folder and rename it into place only when parity passed,
    # so a failed export never leaves a half-written or wrong model where a server might load it.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model_dir = staging / name / "1" if fmt == "triton" else staging
        assets = staging / "textsift_assets" if fmt == "triton" else staging
        model_dir.mkdir(parents=True, exist_ok=True)
        manifest = _export_model(model, bundle, fmt, model_dir, opset, examples, tolerance, int8, exporter, fuse)
        _copy_assets(run_dir, assets)
        if fmt == "triton":
            _write_triton(staging / name, name, bundle, manifest)
            manifest["file"] = f"../{name}/1/{manifest['file']}"  # paths are relative to export.json
            if "int8_file" in manifest:
                manifest["int8_file"] = f"../{name}/1/{manifest['int8_file']}"
        manifest.update(source_run=str(run_dir.resolve()), task=bundle.scheme.task, labels=list(bundle.scheme.labels))
        write_json(assets / EXPORT_JSON, manifest)
        if out_dir.exists():
            shutil.rmtree(out_dir) if out_dir.is_dir() else out_dir.unlink()
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the export from a serving user
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _export_model(model, bundle, fmt, folder: Path, opset, examples, tolerance, int8, exporter,
                  fuse: bool = True) -> dict:
    if int8 and fmt == "torchscript":
        raise TextsiftError("--int8: int8 quantization is done with ONNX Runtime; use --format onnx or triton")
    rewrite = fuse and fmt != "torchscript"   # --no-fuse: the graph exactly as PyTorch exported it
    fuse = rewrite and fusable(model)
    if fuse:   # ONNX Runtime's fusions recognise the eager attention's graph, not SDPA's
        model.encoder.set_attn_implementation("eager")
    wrapper = LogitsOnly(model).eval()
    length = fixed_length(model)
    sample = _dummy(bundle, 2, length or max(8, model.min_length()))
    manifest = {"format": fmt, "inputs": {n: ["batch", length or "seq"] for n in INPUTS},
                "outputs": {OUTPUT: ["batch", model.num_labels]}, "fixed_length": length,
                "min_length": model.min_length(), "max_length": bundle.max_length,
                "pad_id": bundle.encoder.pad_id, "tolerance": tolerance}
    if fmt == "torchscript":
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # torch.jit is deprecated upstream, still the portable C++ format
            traced = torch.jit.trace(wrapper, sample, check_trace=False)
        traced.save(str(folder / TORCHSCRIPT_FILE))
        report = check_parity(wrapper, _torchscript_runner(folder / TORCHSCRIPT_FILE), examples, length,
                              tolerance, "torchscript")
        return {**manifest, "file": TORCHSCRIPT_FILE, "parity": report}
    report, used = _onnx_with_fallback(wrapper, sample, folder / ONNX_FILE, opset, length, examples, tolerance,
                                       exporter)
    manifest.update(file=ONNX_FILE, opset=opset, exporter=used, parity=report)
    if fuse:
        manifest["fusion"] = _fuse_transformer(wrapper, folder / ONNX_FILE, examples, length, tolerance)
        if manifest["fusion"].get("parity"):
            manifest["parity"] = manifest["fusion"].pop("parity")
    if rewrite:
        manifest["layer_norm"] = _rewrite_layer_norms(wrapper, folder / ONNX_FILE, examples, length, tolerance)
        if manifest["layer_norm"].get("parity"):
            manifest["parity"] = manifest["layer_norm"].pop("parity")
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        from textsift.engines.logging_utils import quiet_root_logger

        # dynamic quantization: int8 weights, activations quantized per batch at run time (no calibration data)
        import onnx

        # matrix products only: int8 convolutions (ConvInteger) run slower than fp32 ones in ORT on
        # CPU (a TextCNN batch took 3x longer), while int8 MatMul/Gemm are the big win for encoders
        with shapeless_copy(folder) as fp32, quiet_root_logger():  # quantize_dynamic's advice: root logger
            # a fused graph's Attention nodes become QAttention (int8 Q/K/V projections); the type of
            # tensors from contrib ops is unknown to ONNX shape inference, hence DefaultTensorType
            quantize_dynamic(str(fp32), str(folder / ONNX_INT8_FILE),
                             weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm", "Attention"],
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        int8_report = check_parity(wrapper, onnx_runner(folder / ONNX_INT8_FILE), examples, length, None,
                                   "onnx int8")
        manifest.update(int8_file=ONNX_INT8_FILE, int8_parity=int8_report)
    return manifest


@contextmanager
def shapeless_copy(folder: Path):
    """A copy of ``folder``'s fp32 graph without the intermediate shapes recorded at export, deleted after
    the block: the dynamo exporter records the traced sample's shapes, and ONNX Runtime's quantizers
    re-infer shapes and trip over them."""
    import onnx

    graph = onnx.load(str(folder / ONNX_FILE))
    del graph.graph.value_info[:]
    staged = folder / ".fp32-for-int8.onnx"
    onnx.save(graph, str(staged))
    try:
        yield staged
    finally:
        staged.unlink(missing_ok=True)


EXPORTERS = ("auto", "torchscript", "dynamo")
# encoders whose exported graph ONNX Runtime's BERT optimizer fuses (the "bert" model type covers them)
FUSABLE = ("bert", "roberta", "xlm-roberta", "electra", "ernie", "camembert")


def fusable(model) -> bool:
    """A pretrained encoder of a BERT-family architecture (others export unfused)."""
    encoder = getattr(model, "encoder", None)
    config = getattr(encoder, "config", None)
    return getattr(config, "model_type", None) in FUSABLE and hasattr(encoder, "set_attn_implementation")


def attention_shape(model) -> tuple[int, int] | None:
    """(heads, heads x head size) of every layer's attention, which the fusion needs stated; None when
    pruning left layers with different head counts (one Attention shape per graph)."""
    config = model.encoder.config
    structure = getattr(model.params, "structure", None) or {}
    heads = set(structure.get("heads") or [config.num_attention_heads])
    if len(heads) != 1:
        return None
    (n,) = heads
    return n, n * (config.hidden_size // config.num_attention_heads)


def _fuse_transformer(wrapper, path: Path, examples, length, tolerance) -> dict:
    """Rewrite the exported graph with ONNX Runtime's transformer optimizer: one Attention node per layer
    (Q/K/V, scaled scores, mask, softmax and context in one kernel), SkipLayerNormalization, BiasGelu and
    EmbedLayerNormalization. The rewritten graph must pass the same parity check against PyTorch, else the
    plain graph is kept (``fused: false`` and the reason). The fused graph uses ONNX Runtime's contrib ops
    (com.microsoft domain): it runs on ONNX Runtime (and Triton's onnxruntime backend), not on other ONNX
    runtimes; ``textsift export --no-fuse`` writes the portable graph. MiniLM-L6 on this CPU: fp32 1.3x
    faster at batch 1, int8 (QAttention) 1.5x faster than unfused int8."""
    shape = attention_shape(wrapper.model)
    if shape is None:
        return {"fused": False, "reason": "pruned layers keep different numbers of attention heads"}

    def fuse(src: Path, dst: Path):
        from collections import Counter

        from onnxruntime.transformers.optimizer import optimize_model

        from textsift.engines.logging_utils import quiet_root_logger

        with quiet_root_logger(), warnings.catch_warnings():  # the optimizer's progress lines
            warnings.simplefilter("ignore")
            fused = optimize_model(str(src), model_type="bert", num_heads=shape[0], hidden_size=shape[1])
        ops = Counter(n.op_type for n in fused.model.graph.node)
        if not ops["Attention"]:
            return None, "no attention pattern recognised"
        fused.save_model_to_file(str(dst))
        return {k: ops[k] for k in ("Attention", "EmbedLayerNormalization", "SkipLayerNormalization", "BiasGelu",
                                    "FastGelu", "Gelu") if ops[k]}, None

    ops, parity, reason = _checked_rewrite(wrapper, path, examples, length, tolerance, "fused", fuse,
                                           "ONNX Runtime's transformer fusion not applied (%s); the export "
                                           "stays unfused")
    return {"fused": True, "ops": ops, "parity": parity} if parity else {"fused": False, "reason": reason}


def _rewrite_layer_norms(wrapper, path: Path, examples, length, tolerance) -> dict:
    """Layer norms as instance norms (``engines.onnx_rewrite``: ONNX Runtime's layer-norm kernels are the
    slow part of a small encoder on CPU). Kept only when the rewritten graph passes the parity check."""
    def rewrite(src: Path, dst: Path):
        import onnx

        from textsift.engines.onnx_rewrite import layer_norms_as_instance_norm

        graph = onnx.load(str(src))
        count = layer_norms_as_instance_norm(graph)
        if count:
            onnx.save(graph, str(dst))
        return count, None   # no layer norm: nothing to check, and no reason to report

    count, parity, reason = _checked_rewrite(wrapper, path, examples, length, tolerance, "layer norms", rewrite,
                                             "layer norms not rewritten (%s); the export keeps ONNX Runtime's "
                                             "layer-norm kernels")
    if parity:
        return {"rewritten": count, "parity": parity}
    return {"rewritten": 0, **({"reason": reason} if reason else {})}


def _checked_rewrite(wrapper, path: Path, examples, length, tolerance, what: str, rewrite, failed: str):
    """Run ``rewrite(path, staged)``, which writes a new graph to a staged file and returns ``(facts,
    None)``, or ``(falsy, reason or None)`` when it made none. The staged graph replaces ``path`` only
    when it passes the same parity check against PyTorch as the export did. Returns ``(facts, parity
    report, None)`` when it did, else ``(facts, None, reason)``; an error (parity included) is logged with
    ``failed`` and the graph at ``path`` is kept, since it passed its own check."""
    staged = path.with_name(f".{what.replace(' ', '-')}.onnx")
    try:
        facts, reason = rewrite(path, staged)
        if not facts:
            staged.unlink(missing_ok=True)
            return facts, None, reason
        parity = check_parity(wrapper, onnx_runner(staged), examples, length, tolerance, f"onnx ({what})")
    except Exception as e:
        staged.unlink(missing_ok=True)
        reason = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        log.warning(failed, reason)
        return None, None, reason
    staged.replace(path)
    return facts, parity, None


def _onnx_with_fallback(wrapper, sample, path, opset, length, examples, tolerance, exporter):
    """Export with the TorchScript-based exporter, then (``auto``) the dynamo one if that fails or its
    graph does not match PyTorch. The first handles Python control flow at a traced shape (packed RNNs,
    DPCNN, windowed encoders); the second keeps symbolic batch/sequence sizes where the tracer freezes
    them (``nn.MultiheadAttention``). Returns the parity report and the exporter used."""
    if exporter not in EXPORTERS:
        raise TextsiftError(f"--exporter: expected one of {', '.join(EXPORTERS)}, got {exporter!r}")
    errors = []
    for name in (("torchscript", "dynamo") if exporter == "auto" else (exporter,)):
        try:
            _onnx_export(wrapper, sample, path, opset, length is None, name)
            return check_parity(wrapper, onnx_runner(path), examples, length, tolerance, f"onnx ({name})"), name
        except TextsiftError as e:
            errors.append(f"{name} exporter: {e}")
    raise TextsiftError("ONNX export failed; " + " | ".join(errors))


def _onnx_export(wrapper, sample, path: Path, opset: int, dynamic_seq: bool, exporter: str) -> None:
    axes = {0: "batch", 1: "seq"} if dynamic_seq else {0: "batch"}
    if exporter == "dynamo":
        dims = {i: torch.export.Dim.AUTO for i in axes}
        # one self-contained file (ONNX's 2 GB protobuf limit aside): weights inline, not in model.onnx.data
        big = sum(p.numel() * p.element_size() for p in wrapper.parameters()) > 1.8e9
        kwargs = {"dynamic_shapes": {n: dims for n in INPUTS}, "dynamo": True, "opset_version": max(opset, 18),
                  "external_data": big}
    else:
        kwargs = {"dynamic_axes": {**{n: axes for n in INPUTS}, OUTPUT: {0: "batch"}}, "dynamo": False,
                  "opset_version": opset}
    try:
        # nn.TransformerEncoderLayer's inference fast path is one fused op ONNX does not know
        with warnings.catch_warnings(), torch.no_grad(), _mha_fastpath(False), _quiet(exporter == "dynamo"):
            warnings.simplefilter("ignore")  # tracer warnings about Python ints are what parity checks catch
            torch.onnx.export(wrapper, sample, str(path), input_names=list(INPUTS), output_names=[OUTPUT], **kwargs)
    except ModuleNotFoundError as e:
        raise TextsiftError(f"{e}; pip install onnx onnxruntime onnxscript") from None
    except Exception as e:
        raise TextsiftError(f"opset {opset}: {str(e).strip().splitlines()[0][:300]}") from None


@contextmanager
def _quiet(enabled: bool):
    """The dynamo exporter prints progress lines to stdout; keep ``textsift export``'s output readable."""
    if not enabled:
        yield
        return
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        yield


@contextmanager
def _mha_fastpath(enabled: bool):
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def _dummy(bundle, batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((batch, length), bundle.encoder.pad_id, dtype=torch.long)
    ids[:] = _content_ids(bundle, batch * length).view(batch, length)
    return ids, torch.ones(batch, length, dtype=torch.long)


def _content_ids(bundle, n: int) -> torch.Tensor:
    """``n`` ids of real tokens (never the pad id), deterministic."""
    vocab = bundle.model.vocab_size
    ids = torch.randint(0, vocab, (n,), generator=torch.Generator().manual_seed(0))
    return torch.where(ids == bundle.encoder.pad_id, (ids + 1) % vocab, ids)


def parity_inputs(bundle) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ragged batches (batch sizes 1, 3, 16 × longest lengths 1, 7, max_length), right-padded like
    real batches (at least to the model's ``min_length``), so padding handling is checked too."""
    out = []
    for batch in PARITY_BATCHES:
        for length in PARITY_LENGTHS:
            length = length or bundle.max_length
            lengths = np.maximum(1, np.linspace(length, max(1, length // 3), batch).astype(int))
            width = max(length, bundle.model.min_length())
            ids = np.full((batch, width), bundle.encoder.pad_id, dtype=np.int64)
            mask = np.zeros((batch, width), dtype=np.int64)
            content = _content_ids(bundle, batch * width).numpy().reshape(batch, width)
            for row, n in enumerate(lengths):
                ids[row, :n], mask[row, :n] = content[row, :n], 1
            out.append((ids, mask))
    return out


def pad_to(ids: np.ndarray, mask: np.ndarray, length: int | None, pad_id: int):
    """Right-pad a batch to ``length`` columns (a fixed-length export's input width)."""
    if length is None or ids.shape[1] == length:
        return ids, mask
    if ids.shape[1] > length:
        raise TextsiftError(f"input of {ids.shape[1]} tokens is longer than the exported length {length}")
    extra = length - ids.shape[1]
    return (np.pad(ids, ((0, 0), (0, extra)), constant_values=pad_id), np.pad(mask, ((0, 0), (0, extra))))


def check_parity(wrapper, runner, examples, length, tolerance, what: str) -> dict:
    """Max |logit difference| between PyTorch and the exported model over ``examples``; with a
    ``tolerance``, raise when it is exceeded. Also how often the top label differs."""
    worst, flips, total, shapes = 0.0, 0, 0, []
    pad_id = int(wrapper.model.pad_id) if hasattr(wrapper.model, "pad_id") else 0
    for ids, mask in examples:
        with torch.no_grad():
            ref = wrapper(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
        try:
            got = runner(*pad_to(ids, mask, length, pad_id))
        except Exception as e:  # the runtime rejects the graph at a shape the trace did not see
            raise TextsiftError(f"{what} fails on input shape {list(ids.shape)}: {str(e).splitlines()[0][:300]}") from None
        if got.shape != ref.shape:
            raise TextsiftError(f"{what} parity: output shape {got.shape} for input {ids.shape}, "
                                f"PyTorch gives {ref.shape}")
        worst = max(worst, float(np.abs(got - ref).max()))
        flips += int((got.argmax(1) != ref.argmax(1)).sum())
        total += len(ids)
        shapes.append(list(ids.shape))
    report = {"max_abs_diff": worst, "top1_disagreements": flips, "texts": total, "shapes": shapes}
    log.info("%s parity: max |logit diff| %.2e over %d batches (%s)", what, worst, len(examples),
             ", ".join("x".join(map(str, s)) for s in shapes))
    if tolerance is not None and not worst <= tolerance:
        raise TextsiftError(f"{what} parity check failed: max |logit difference| {worst:.3g} > tolerance "
                            f"{tolerance:g}; the exported model would not give PyTorch's results "
                            "(nothing was written). Report this model type, or loosen --tolerance knowingly")
    return report


def onnx_runner(path: Path, threads: int = 0):
    """``(ids, mask) -> logits`` through an ONNX Runtime CPU session."""
    session = onnx_session(path, threads)
    return lambda ids, mask: session.run([OUTPUT], {INPUTS[0]: ids, INPUTS[1]: mask})[0]


def onnx_session(path: Path, threads: int = 0, spinning: bool = True):
    try:
        import onnxruntime as ort
    except ImportError:  # pragma: no cover - a dependency, but keep the hint for trimmed installs
        raise TextsiftError("the ONNX backend needs onnxruntime: pip install onnxruntime") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise TextsiftError(f"{path}: ONNX Runtime cannot load it ({str(e).splitlines()[0]}); "
                            "export it again with `textsift export`") from None


def _torchscript_runner(path: Path):
    module = torch.jit.load(str(path))

    def run(ids, mask):
        with torch.no_grad():
            return module(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    return run


def _copy_assets(run_dir: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in (LABELS, TOKENIZER, CONFIG, MODEL_JSON):
        shutil.copy2(run_dir / name, dest / name)
    if (run_dir / CALIBRATION).is_file():  # the softmax temperature: ONNX probabilities match PyTorch's
        shutil.copy2(run_dir / CALIBRATION, dest / CALIBRATION)
    if (run_dir / ASSETS).is_dir():
        shutil.copytree(run_dir / ASSETS, dest / ASSETS)


def _write_triton(model_root: Path, name: str, bundle, manifest: dict) -> None:
    """``config.pbtxt`` for Triton's ONNX Runtime backend, dynamic batching on, plus ``labels.txt``
    (Triton's ``label_filename``, used by its classification extension)."""
    seq = manifest["fixed_length"] or -1
    num_labels = bundle.model.num_labels
    inputs = "".join(f'  {{\n    name: "{n}"\n    data_type: TYPE_INT64\n    dims: [ {seq} ]\n  }},\n'
                     for n in INPUTS).rstrip(",\n") + "\n"
    text = (f'name: "{name}"\nbackend: "onnxruntime"\nmax_batch_size: 64\n'
            f"input [\n{inputs}]\n"
            f'output [\n  {{\n    name: "{OUTPUT}"\n    data_type: TYPE_FP32\n    dims: [ {num_labels} ]\n'
            f'    label_filename: "labels.txt"\n  }}\n]\n'
            "dynamic_batching {\n  preferred_batch_size: [ 8, 16, 32 ]\n  max_queue_delay_microseconds: 2000\n}\n"
            'instance_group [\n  {\n    count: 1\n    kind: KIND_CPU\n  }\n]\n')
    (model_root / "config.pbtxt").write_text(text, encoding="utf-8")
    (model_root / "labels.txt").write_text("".join(f"{x}\n" for x in bundle.scheme.labels), encoding="utf-8")
