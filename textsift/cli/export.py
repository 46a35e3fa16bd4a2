from __future__ import annotations

HELP = "Export a trained run to ONNX (optionally + int8), TorchScript or a Triton model repository, parity-checked."
EXAMPLES = """examples:
  textsift export runs/thucnews --out exports/thucnews                 # ONNX, opset 17
  textsift export runs/minilm --out exports/minilm --int8              # + model.int8.onnx (dynamic quantization)
  textsift export runs/thucnews --format torchscript --out exports/ts
  textsift export runs/thucnews --format triton --out triton_repo --name news_classifier
  textsift predict exports/thucnews --backend onnx --text "国足客场两球不敌日本队"
"""


def add_arguments(p) -> None:
    from textsift.engines.export import EXPORTERS, FORMATS

    p.add_argument("run_dir", help="a run directory written by `textsift train`")
    p.add_argument("--out", required=True, help="the export folder (must be new or empty unless --overwrite)")
    p.add_argument("--format", default="onnx", choices=FORMATS, help="default: onnx")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17; the dynamo exporter uses >= 18)")
    p.add_argument("--int8", action="store_true", help="also write model.int8.onnx (ONNX Runtime dynamic quantization)")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest |logit difference| to PyTorch the parity check accepts (default 1e-4)")
    p.add_argument("--exporter", default="auto", choices=EXPORTERS,
                   help="torch.onnx exporter: auto tries the TorchScript-based one, then dynamo")
    p.add_argument("--no-fuse", action="store_true",
                   help="keep the graph as PyTorch exports it: no ONNX Runtime transformer fusion (Attention, "
                        "SkipLayerNormalization...) for BERT-family encoders and no rewrite of layer norms as "
                        "instance norms (faster on ONNX Runtime's CPU kernels); for other ONNX runtimes")
    p.add_argument("--name", default="textsift", help="model name in a Triton repository (--format triton)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder (only after success)")


def run(args) -> int:
    from textsift.engines.export import export_run
    m = export_run(args.run_dir, args.out, args.format, args.opset, args.int8, args.tolerance, args.overwrite,
                   args.name, args.exporter, fuse=not args.no_fuse)
    p = m["parity"]
    shapes = ", ".join("x".join(map(str, s)) for s in p["shapes"])
    print(f"exported {args.run_dir} -> {args.out} ({m['format']}"
          + (f", opset {m['opset']}, {m['exporter']} exporter" if "opset" in m else "") + ")")
    axes = f"fixed sequence length {m['fixed_length']}" if m["fixed_length"] else "dynamic batch and sequence axes"
    print(f"  inputs input_ids, attention_mask (int64, {axes}); output logits ({m['outputs']['logits'][1]} labels)")
    print(f"  parity vs PyTorch: max |logit diff| {p['max_abs_diff']:.2e} (tolerance {m['tolerance']:g}), "
          f"top-1 disagreements {p['top1_disagreements']}/{p['texts']}, batch x length {shapes}")
    if m.get("fusion", {}).get("fused"):
        print("  fused by ONNX Runtime's transformer optimizer: "
              + ", ".join(f"{v} {k}" for k, v in m["fusion"]["ops"].items()) + " (runs on ONNX Runtime only)")
    if m.get("layer_norm", {}).get("rewritten"):
        print(f"  {m['layer_norm']['rewritten']} layer norms rewritten as instance norms (ONNX Runtime's faster "
              "CPU kernel; --no-fuse keeps them)")
    if "int8_parity" in m:
        q = m["int8_parity"]
        print(f"  int8 vs PyTorch fp32: max |logit diff| {q['max_abs_diff']:.2e}, top-1 disagreements "
              f"{q['top1_disagreements']}/{q['texts']} on random ids (measure accuracy with "
              f"`textsift evaluate {args.out} --backend onnx-int8 --data ...`)")
    return 0
