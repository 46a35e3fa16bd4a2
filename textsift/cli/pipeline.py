from __future__ import annotations

HELP = ("Build a teacher and its compressed candidates (distil, prune, quantize, export) in one resumable "
        "command, measure them all here and write the accuracy / latency / size frontier.")
EXAMPLES = """examples:
  textsift pipeline -c sst2_sentence_pipeline --run-dir runs/p --max-latency-ms 1
  textsift pipeline -c sst2_sentence_pipeline --run-dir runs/p --min-accuracy 0.85   # same DIR: resumes
  textsift pipeline -c my_pipeline.yaml --run-dir runs/mine data.limit=2000 'teacher.overrides=[train.epochs=1]'

exit status: 0 when every stage finished, 1 when a stage failed (the others still ran), 2 on bad input.
"""


def add_arguments(p) -> None:
    p.add_argument("-c", "--config", required=True, help="pipeline YAML file or pipeline preset name "
                                                         "(`textsift ls presets`)")
    p.add_argument("--run-dir", help="the pipeline's directory; running again with the same one resumes "
                                     "(default: runs/pipeline-<config name>)")
    p.add_argument("--max-latency-ms", type=float, help="recommend the most accurate candidate whose p50 "
                                                        "latency at batch 1 is at most this")
    p.add_argument("--min-accuracy", type=float, help="recommend the fastest candidate whose test accuracy "
                                                      "(a fraction, 0.9 = 90%%) is at least this")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="pipeline config overrides, e.g. data.limit=500")


def run(args) -> int:
    from pathlib import Path

    from textsift.config.pipeline import load_pipeline_config
    from textsift.engines.logging_utils import setup_console_logging
    from textsift.engines.pipeline import pipeline
    from textsift.reporting.frontier import summary

    setup_console_logging()
    cfg = load_pipeline_config(args.config, args.overrides)
    run_dir = Path(args.run_dir or f"runs/pipeline-{Path(args.config).stem}")
    report, outcome = pipeline(cfg, run_dir, args.max_latency_ms, args.min_accuracy)
    print(summary(report, run_dir))
    return 1 if outcome.failed else 0
