from __future__ import annotations

HELP = "Train a model from a YAML config (or preset) and write a run directory."
EXAMPLES = """examples:
  textsift train -c thucnews_title --run-dir runs/thucnews
  textsift train -c my.yaml --run-dir runs/a train.lr=0.001 model.name=textrnn
  textsift train --resume runs/a            # continue a killed run exactly where it stopped
  torchrun --nproc_per_node 2 -m textsift train -c my.yaml --run-dir runs/ddp   # 2 processes (DDP)
"""


def add_arguments(p) -> None:
    p.add_argument("-c", "--config", help="YAML config file or preset name (see `textsift ls`)")
    p.add_argument("--run-dir", help="new directory for the run (default: runs/<model>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.epochs=3")


def run(args) -> int:
    import json
    from pathlib import Path

    from textsift.config.load import load_config
    from textsift.engines import distributed
    from textsift.engines.logging_utils import setup_console_logging
    from textsift.engines.train_run import train_run
    from textsift.errors import TextsiftError
    from textsift.rundir import CONFIG, default_run_dir

    setup_console_logging()
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / CONFIG).is_file():
            raise TextsiftError(f"--resume {run_dir}: not a textsift run directory (no {CONFIG})")
        if args.run_dir and Path(args.run_dir) != run_dir:
            raise TextsiftError("--resume RUN_DIR continues RUN_DIR in place; do not also pass a different --run-dir")
        cfg = load_config(str(run_dir / CONFIG), args.overrides)
        if args.config:
            _check_same(load_config(args.config, args.overrides), cfg, run_dir)
    else:
        if not args.config:
            raise TextsiftError("train: expected -c CONFIG (a YAML file or preset name), or --resume RUN_DIR")
        cfg = load_config(args.config, args.overrides)
        distributed.init(cfg.train.device)  # under torchrun; every rank must use rank 0's default name
        run_dir = Path(args.run_dir) if args.run_dir else distributed.broadcast_object(default_run_dir(cfg.model.name))
    if getattr(args, "require_distill", False) and cfg.distill is None:
        raise TextsiftError("distill: the config has no `distill` section; add `distill: {teacher: RUN_DIR}` "
                            "(see the README's Distillation section)")
    metrics = train_run(cfg, run_dir, resume=bool(args.resume))
    main = distributed.is_main()
    distributed.shutdown(destroy=False)  # the process ends in cli.main (distributed.end_process)
    if not main:  # rank 0 reports
        return 0
    keys = ("accuracy", "macro_f1", "micro_f1")
    summary = {split: {k: round(v, 4) for k, v in metrics[split].items() if k in keys}
               for split in ("dev", "test") if split in metrics}
    if "distill" in metrics:
        summary.update({f"teacher_{split}": {k: round(v, 4) for k, v in metrics["distill"][f"teacher_{split}"].items()
                                             if k in keys}
                        for split in ("dev", "test") if f"teacher_{split}" in metrics["distill"]})
    print(f"run directory: {run_dir}")
    print(json.dumps(summary, ensure_ascii=False))
    return 0


def _check_same(given, saved, run_dir) -> None:
    from textsift.errors import TextsiftError

    a, b = given.model_dump(exclude={"task"}), saved.model_dump(exclude={"task"})
    diff = [f"{section}.{key}" for section in a for key in (a[section] or {}) if isinstance(a[section], dict)
            and a[section].get(key) != (b.get(section) or {}).get(key)]
    if diff:
        raise TextsiftError(f"--resume {run_dir}: the config given differs from the run's own config at "
                            f"{', '.join(diff)}; resume without -c (the run's config.yaml is used)")
