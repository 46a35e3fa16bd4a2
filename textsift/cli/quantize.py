from __future__ import annotations

HELP = "Quantize a run to int8: PyTorch dynamic (a new run) or ONNX Runtime dynamic/static (an export folder)."
EXAMPLES = """examples:
  textsift quantize runs/trec6_textrnn --run-dir runs/trec6_int8                     # PyTorch dynamic int8
  textsift quantize runs/sst2_minilm --run-dir exports/sst2_int8 --method onnx-dynamic
  textsift quantize runs/sst2_minilm --run-dir exports/sst2_static --method onnx-static --calibration texts.txt
  textsift evaluate exports/sst2_int8 --backend onnx-int8 --data ../shared/datasets/sst2_sentence/test.jsonl
"""


def add_arguments(p) -> None:
    from textsift.engines.quantize import METHODS

    p.add_argument("run_dir", help="a finished run")
    p.add_argument("--run-dir", dest="out", required=True,
                   help="the new run (dynamic) or export folder (onnx-dynamic, onnx-static)")
    p.add_argument("--method", default="dynamic", choices=METHODS, help="default: dynamic (PyTorch)")
    p.add_argument("--calibration", help="onnx-static: texts to calibrate on (.txt lines, .jsonl, .csv); "
                                         "default: the run's training file")
    p.add_argument("--calibration-size", type=int, default=256, help="texts used for calibration and timing")


def run(args) -> int:
    from textsift.engines.logging_utils import setup_console_logging
    from textsift.engines.quantize import quantize_run

    setup_console_logging()
    report = quantize_run(args.run_dir, args.out, args.method, args.calibration, args.calibration_size)
    print(f"{args.method} int8: {args.out}\n{report['table']}")
    return 0
