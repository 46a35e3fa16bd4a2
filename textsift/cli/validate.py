from __future__ import annotations

HELP = "Check a config and report every problem at once, without training."
EXAMPLES = """examples:
  textsift validate my.yaml
  textsift validate thucnews_title train.lr=0.01
"""


def add_arguments(p) -> None:
    p.add_argument("config", help="YAML config file or preset name")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.add_argument("--no-files", action="store_true", help="do not check that data files exist")


def run(args) -> int:
    from textsift.config.load import load_config

    cfg = load_config(args.config, args.overrides, check_files=not args.no_files)
    print(f"{args.config}: OK (model {cfg.model.name}, task {cfg.task or 'inferred from data'})")
    return 0
